"""Joining the masks of overlapping tiles into objects.

A mask found in a tile is the same object as an earlier one when, inside the pixels both
tiles saw, the two masks agree: their IoU there is at least ``merge_iou``. Matched masks are
united (the object's mask is the union of its pieces), so an object cut by tile borders
becomes one mask; a mask seen whole by two tiles (a duplicate) is united with itself.
Masks nested in one another disagree in the shared pixels and stay separate objects.

Ids are stable: an object takes the id of its first piece, numbered in tile order
(row-major) and, within a tile, in the generator's order; a merge keeps the smallest id.
Objects that no later tile can reach are finished early (see :meth:`TileMerger.finish_above`),
which keeps memory to about two rows of tiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .grid import Tile, Window
from .sparse import PackedMask, SparseMask


@dataclass(frozen=True)
class TileMask:
    """One mask found in one tile: image-pixel mask, predicted IoU, stability, prompt point (x, y)."""

    mask: SparseMask
    predicted_iou: float
    stability_score: float
    point: tuple[float, float]


@dataclass
class _Object:
    id: int
    mask: SparseMask
    predicted_iou: float
    stability_score: float
    point: tuple[float, float]
    tiles: list[Window] = field(default_factory=list)


@dataclass(frozen=True)
class MergedMask:
    """An object of the whole image.

    id: stable id (see the module doc). segmentation: COCO RLE of the whole image.
    area: pixels. bbox: [x, y, w, h] (w, h = last - first pixel index). predicted_iou and
    stability_score: the best of its pieces; point_coords: [[x, y]] of the best piece's prompt.
    tiles: the tile windows [x0, y0, x1, y1] it was found in; crop_box: [x, y, w, h] of their union.
    mask: the pixels of its box, one bit each (``mask.unpack()`` gives a :class:`SparseMask`);
    None when the merger was told not to keep them (``keep_pixels=False``: the RLE alone).
    """

    id: int
    segmentation: dict[str, Any]
    area: int
    bbox: list[float]
    predicted_iou: float
    stability_score: float
    point_coords: list[list[float]]
    tiles: list[list[int]]
    crop_box: list[float]
    mask: PackedMask | None


def _region(tiles: list[Window], box: Window) -> np.ndarray:
    """bool [box.height, box.width]: the pixels of ``box`` inside any of ``tiles``."""
    inside = np.zeros((box.height, box.width), dtype=bool)
    for tile in tiles:
        common = tile.intersect(box)
        if common is not None:
            inside[common.y0 - box.y0 : common.y1 - box.y0, common.x0 - box.x0 : common.x1 - box.x0] = True
    return inside


def shared_iou(new: SparseMask, new_tile: Window, old: SparseMask, old_tiles: list[Window]) -> float:
    """IoU of two masks counted only where ``new_tile`` and one of ``old_tiles`` both saw the image."""
    box = new.window.union(old.window).intersect(new_tile)
    if box is None:
        return 0.0
    seen = _region(old_tiles, box)
    a = new.crop(box) & seen
    b = old.crop(box) & seen
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b)) / union if union else 0.0


class TileMerger:
    """Collects the masks of tiles given in row-major order and merges those that match."""

    def __init__(self, height: int, width: int, *, merge_iou: float = 0.5, keep_pixels: bool = True) -> None:
        if not 0.0 < float(merge_iou) <= 1.0:
            raise ValueError(f"merge_iou must be in (0, 1], got {merge_iou!r}")
        self.height, self.width = int(height), int(width)
        self.merge_iou = float(merge_iou)
        self.keep_pixels = bool(keep_pixels)
        self._open: dict[int, _Object] = {}
        self._done: list[MergedMask] = []
        self._next_id = 1

    @property
    def open_objects(self) -> int:
        """Objects still held with their pixels (a later tile may reach them)."""
        return len(self._open)

    def add_tile(self, tile: Tile, masks: list[TileMask]) -> None:
        """Merge the masks of ``tile`` (image coordinates) into the objects found so far."""
        window = tile.window
        pairs = []  # (iou, new index, old id)
        for j, piece in enumerate(masks):
            for obj in self._open.values():
                if obj.mask.window.intersect(piece.mask.window) is None:
                    continue
                iou = shared_iou(piece.mask, window, obj.mask, obj.tiles)
                if iou >= self.merge_iou:
                    pairs.append((iou, j, obj.id))
        # each earlier object joins at most one mask of this tile, the one it agrees with best
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        joined: dict[int, list[int]] = {}
        taken: set[int] = set()
        for _, j, old_id in pairs:
            if old_id not in taken:
                taken.add(old_id)
                joined.setdefault(j, []).append(old_id)
        for j, piece in enumerate(masks):
            olds = [self._open.pop(i) for i in sorted(joined.get(j, []))]
            if not olds:
                obj = _Object(self._next_id, piece.mask, piece.predicted_iou, piece.stability_score, piece.point)
                self._next_id += 1
            else:
                obj = olds[0]
                for other in olds[1:]:
                    self._absorb(obj, other.mask, other.predicted_iou, other.stability_score, other.point)
                    obj.tiles += [t for t in other.tiles if t not in obj.tiles]
                self._absorb(obj, piece.mask, piece.predicted_iou, piece.stability_score, piece.point)
            if window not in obj.tiles:
                obj.tiles.append(window)
            self._open[obj.id] = obj

    @staticmethod
    def _absorb(obj: _Object, mask: SparseMask, iou: float, stability: float, point: tuple[float, float]) -> None:
        obj.mask = obj.mask.union(mask)
        if iou > obj.predicted_iou:
            obj.predicted_iou, obj.point = iou, point
        obj.stability_score = max(obj.stability_score, stability)

    def finish_above(self, y: int) -> None:
        """Finish the objects lying wholly above row ``y`` (no tile starting at or below ``y`` reaches them)."""
        for obj_id in [i for i, o in self._open.items() if o.mask.window.y1 <= y]:
            self._done.append(self._finish(self._open.pop(obj_id)))

    def _finish(self, obj: _Object) -> MergedMask:
        reach = obj.tiles[0]
        for t in obj.tiles[1:]:
            reach = reach.union(t)
        return MergedMask(
            id=obj.id,
            segmentation=obj.mask.to_coco_rle(self.height, self.width),
            area=obj.mask.area,
            bbox=obj.mask.bbox_xywh,
            predicted_iou=float(obj.predicted_iou),
            stability_score=float(obj.stability_score),
            point_coords=[[float(obj.point[0]), float(obj.point[1])]],
            tiles=[list(t) for t in obj.tiles],
            crop_box=[float(reach.x0), float(reach.y0), float(reach.width), float(reach.height)],
            mask=PackedMask.pack(obj.mask) if self.keep_pixels else None,
        )

    def results(self) -> list[MergedMask]:
        """Every object, ids renumbered 1..N in the order of their first appearance."""
        self.finish_above(self.height + 1)
        done = sorted(self._done, key=lambda m: m.id)
        self._done = done
        return [
            MergedMask(**{**m.__dict__, "id": k}) for k, m in enumerate(done, start=1)
        ]
