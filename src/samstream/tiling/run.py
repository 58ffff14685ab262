"""Segment everything in an image of any size, one tile at a time.

Each tile is read from the :class:`~samstream.io.readers.RasterReader` on its own, run through
the automatic mask generator as an image, its masks kept as :class:`SparseMask` and merged
across tile borders (:class:`TileMerger`). What is held at any time: one tile's pixels and
proposals, plus the objects of about two rows of tiles; finished objects are COCO RLE strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..io.rle import decode_coco_rle
from .grid import Tile, tile_grid
from .merge import MergedMask, TileMask, TileMerger
from .sparse import SparseMask


@dataclass(frozen=True)
class TileConfig:
    """tile: side of a tile in image pixels; overlap: pixels shared by neighbouring tiles;
    merge_iou: IoU in the shared pixels above which two pieces are one object."""

    tile: int = 1024
    overlap: int = 128
    merge_iou: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.tile, bool) or not isinstance(self.tile, int) or self.tile < 16:
            raise ValueError(f"tile must be an int >= 16, got {self.tile!r}")
        if isinstance(self.overlap, bool) or not isinstance(self.overlap, int) or not 0 <= self.overlap < self.tile:
            raise ValueError(f"tile_overlap must be an int in [0, tile={self.tile}), got {self.overlap!r}")
        if not 0.0 < float(self.merge_iou) <= 1.0:
            raise ValueError(f"merge_iou must be in (0, 1], got {self.merge_iou!r}")


def tile_masks(generator, image: np.ndarray, tile: Tile) -> list[TileMask]:
    """The generator's masks of one tile image, in image coordinates, one mask decoded at a time."""
    found = generator.generate_proposals(image)
    x0, y0 = tile.window.x0, tile.window.y0
    out = []
    for k, rle in enumerate(found.rles):
        dense = decode_coco_rle([rle])[0]
        point = found.points[k].tolist()
        out.append(
            TileMask(
                mask=SparseMask.from_dense(dense, x0=x0, y0=y0),
                predicted_iou=float(found.iou[k]),
                stability_score=float(found.stability[k]),
                point=(point[0] + x0, point[1] + y0),
            )
        )
    return out


@torch.inference_mode()
def generate_tiled(
    generator,
    reader,
    config: TileConfig = TileConfig(),
    *,
    on_tile: Callable[[Tile, int], None] | None = None,
    keep_pixels: bool = True,
) -> list[MergedMask]:
    """All objects of the image behind ``reader`` (see :mod:`samstream.io.readers`), tile by tile.

    ``generator`` is an :class:`~samstream.image.automatic.AutomaticMaskGenerator`;
    ``on_tile(tile, open_objects)`` is called after each tile (progress, memory checks);
    ``keep_pixels=False`` keeps finished objects as RLE only (``MergedMask.mask`` is None), so
    memory does not grow with the objects found, only with their RLE strings.
    """
    tiles = tile_grid(reader.height, reader.width, tile=config.tile, overlap=config.overlap)
    merger = TileMerger(reader.height, reader.width, merge_iou=config.merge_iou, keep_pixels=keep_pixels)
    row_start = None
    for tile in tiles:
        if tile.window.y0 != row_start:  # a new row: what lies above it is finished
            row_start = tile.window.y0
            merger.finish_above(row_start)
        pixels = reader.read(tile.window)
        merger.add_tile(tile, tile_masks(generator, pixels, tile))
        del pixels
        if on_tile is not None:
            on_tile(tile, merger.open_objects)
    return merger.results()
