"""Masks kept as their tight bounding box and the pixels inside it.

A mask of a 20,000 x 20,000 image costs the area of its box, not 400 MB; COCO RLE of the
whole image is computed from the box without ever building the full-size mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..io.rle import coco_rle_from_uncompressed
from .grid import Window


@dataclass(frozen=True)
class SparseMask:
    """A bool mask of an image: ``pixels`` [h, w] holds the rows ``window.y0:y1`` and columns
    ``window.x0:x1`` of the image (image pixels), everything outside is background.
    ``window`` is the tight box of the foreground (an empty mask has an empty window)."""

    window: Window
    pixels: np.ndarray

    def __post_init__(self) -> None:
        if self.pixels.dtype != np.bool_ or self.pixels.shape != (self.window.height, self.window.width):
            raise ValueError(
                f"pixels must be bool of shape {(self.window.height, self.window.width)}, "
                f"got {self.pixels.dtype} {self.pixels.shape}"
            )

    @classmethod
    def from_dense(cls, mask: np.ndarray, *, x0: int = 0, y0: int = 0) -> "SparseMask":
        """A bool [h, w] mask whose top-left pixel is image pixel (x0, y0), cut to its tight box."""
        mask = np.asarray(mask, dtype=bool)
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            return cls(Window(x0, y0, x0, y0), np.zeros((0, 0), dtype=bool))
        cols = np.flatnonzero(mask.any(axis=0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        pixels = np.ascontiguousarray(mask[r0:r1, c0:c1])
        return cls(Window(x0 + c0, y0 + r0, x0 + c1, y0 + r1), pixels)

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.pixels))

    @property
    def bbox_xywh(self) -> list[float]:
        """[x, y, w, h] with w, h = last - first pixel index (the automatic generator's convention)."""
        w = self.window
        if w.area == 0:
            return [0.0, 0.0, 0.0, 0.0]
        return [float(w.x0), float(w.y0), float(w.width - 1), float(w.height - 1)]

    def crop(self, window: Window) -> np.ndarray:
        """The mask inside ``window`` as a dense bool [window.height, window.width]."""
        out = np.zeros((window.height, window.width), dtype=bool)
        common = self.window.intersect(window)
        if common is not None:
            out[common.y0 - window.y0 : common.y1 - window.y0, common.x0 - window.x0 : common.x1 - window.x0] = (
                self.pixels[
                    common.y0 - self.window.y0 : common.y1 - self.window.y0,
                    common.x0 - self.window.x0 : common.x1 - self.window.x0,
                ]
            )
        return out

    def area_in(self, window: Window) -> int:
        """Foreground pixels inside ``window``."""
        common = self.window.intersect(window)
        if common is None:
            return 0
        return int(np.count_nonzero(self.crop(common)))

    def intersection_area(self, other: "SparseMask") -> int:
        common = self.window.intersect(other.window)
        if common is None:
            return 0
        return int(np.count_nonzero(self.crop(common) & other.crop(common)))

    def union(self, other: "SparseMask") -> "SparseMask":
        """The pixels of either mask."""
        if other.window.area == 0:
            return self
        if self.window.area == 0:
            return other
        box = self.window.union(other.window)
        return SparseMask(box, self.crop(box) | other.crop(box))

    def to_uncompressed_rle(self, height: int, width: int) -> dict[str, Any]:
        """Uncompressed COCO RLE of the whole ``height`` x ``width`` image (column-major runs)."""
        box = self.window
        if box.area and (box.x0 < 0 or box.y0 < 0 or box.x1 > width or box.y1 > height):
            raise ValueError(f"mask box {tuple(box)} lies outside the {width}x{height} image")
        total = height * width
        if box.area == 0 or not self.pixels.any():
            return {"size": [height, width], "counts": [total]}
        # rises and falls along each column of the box, padded with background above and below
        padded = np.zeros((box.height + 2, box.width), dtype=np.int8)
        padded[1:-1] = self.pixels
        steps = np.diff(padded, axis=0)  # [h + 1, w]: +1 where a run starts, -1 where it ends
        cols, rows = np.nonzero(steps.T)  # column-major order
        positions = (cols.astype(np.int64) + box.x0) * height + rows + box.y0
        # an end at the bottom of one column and a start at the top of the next are the same
        # position and cancel: the run goes on
        positions, counts = np.unique(positions, return_counts=True)
        positions = positions[(counts % 2 == 1) & (positions < total)]  # a run ending the image ends nothing
        bounds = np.concatenate([[0], positions, [total]])
        runs = np.diff(bounds)
        return {"size": [height, width], "counts": runs.tolist()}

    def to_coco_rle(self, height: int, width: int) -> dict[str, Any]:
        """COCO RLE (string counts) of the whole ``height`` x ``width`` image."""
        return coco_rle_from_uncompressed(self.to_uncompressed_rle(height, width))


@dataclass(frozen=True)
class PackedMask:
    """A :class:`SparseMask` at one bit per pixel of its box (what finished objects keep)."""

    window: Window
    bits: np.ndarray  # uint8, np.packbits of the box's pixels in row-major order

    @classmethod
    def pack(cls, mask: SparseMask) -> "PackedMask":
        return cls(mask.window, np.packbits(mask.pixels, axis=None))

    def unpack(self) -> SparseMask:
        count = self.window.height * self.window.width
        pixels = np.unpackbits(self.bits, count=count).astype(bool).reshape(self.window.height, self.window.width)
        return SparseMask(self.window, pixels)
