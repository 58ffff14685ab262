"""One binary PNG per object and frame (the SA-V layout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_save_png
from .base import MaskWriter, PathLike

__all__ = ["PerObjectPngWriter"]


class PerObjectPngWriter(MaskWriter):
    """SA-V layout: ``out_dir/<obj_id:03d>/<frame_idx:05d>.png``, grayscale 0 / 255, one file per object and frame."""

    def __init__(self, out_dir: PathLike) -> None:
        super().__init__()
        self.out_dir = Path(out_dir)
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ValueError(f"out_dir '{self.out_dir}' exists and is not a folder")
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, frame_idx: int, obj_id: int) -> Path:
        """File that holds object ``obj_id`` at frame ``frame_idx``."""
        return self.out_dir / f"{obj_id:03d}" / f"{frame_idx:05d}.png"

    def _write(self, frame_idx: int, obj_ids: list[int], masks: np.ndarray) -> None:
        for obj_id, mask in zip(obj_ids, masks):
            atomic_save_png(self.path_for(frame_idx, obj_id), mask)
