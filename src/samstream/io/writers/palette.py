"""One indexed (palette) PNG per frame, pixel value = object id (the DAVIS layout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_save_png
from .base import MaskWriter, PathLike

__all__ = ["DAVIS_PALETTE", "PalettePngWriter"]


def _voc_palette() -> bytes:
    """The 256-colour PASCAL VOC / DAVIS palette: bits of the index spread over R, G, B."""
    values = bytearray()
    for index in range(256):
        red = green = blue = 0
        code = index
        for bit in range(8):
            red |= ((code >> 0) & 1) << (7 - bit)
            green |= ((code >> 1) & 1) << (7 - bit)
            blue |= ((code >> 2) & 1) << (7 - bit)
            code >>= 3
        values += bytes((red, green, blue))
    return bytes(values)


#: 768 bytes, RGB for indices 0..255 (0 = black background, 1 = (128, 0, 0), 2 = (0, 128, 0), ...)
DAVIS_PALETTE: bytes = _voc_palette()


class PalettePngWriter(MaskWriter):
    """DAVIS layout: ``out_dir/<frame_idx:05d>.png``, one indexed PNG per frame.

    Pixel value = object id (1..255; 0 is background), colors from
    :data:`DAVIS_PALETTE`.  Objects are painted in the order given, so later
    entries of ``obj_ids`` win where masks overlap (with ids sorted ascending,
    the larger id wins).
    """

    def __init__(self, out_dir: PathLike) -> None:
        super().__init__()
        self.out_dir = Path(out_dir)
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ValueError(f"out_dir '{self.out_dir}' exists and is not a folder")
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, frame_idx: int) -> Path:
        """File that holds frame ``frame_idx``."""
        return self.out_dir / f"{frame_idx:05d}.png"

    def _write(self, frame_idx: int, obj_ids: list[int], masks: np.ndarray) -> None:
        bad = [obj_id for obj_id in obj_ids if not 1 <= obj_id <= 255]
        if bad:
            raise ValueError(f"palette PNGs store object ids 1..255 (0 is background), got {bad}")
        labels = np.zeros(masks.shape[1:], dtype=np.uint8)
        for obj_id, mask in zip(obj_ids, masks):
            labels[mask] = obj_id
        atomic_save_png(self.path_for(frame_idx), labels, palette=DAVIS_PALETTE)
