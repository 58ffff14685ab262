"""A grid of overlapping square tiles over an image."""

from __future__ import annotations

from typing import NamedTuple


class Window(NamedTuple):
    """A rectangle of pixels, half-open: columns x0 <= x < x1, rows y0 <= y < y1."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    def intersect(self, other: "Window") -> "Window | None":
        """The common rectangle, or None when the two do not overlap."""
        x0, y0 = max(self.x0, other.x0), max(self.y0, other.y0)
        x1, y1 = min(self.x1, other.x1), min(self.y1, other.y1)
        if x0 >= x1 or y0 >= y1:
            return None
        return Window(x0, y0, x1, y1)

    def union(self, other: "Window") -> "Window":
        """The smallest rectangle holding both."""
        return Window(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))


class Tile(NamedTuple):
    """One tile: its position in the grid (row, col), its index in row-major order, its pixels."""

    index: int
    row: int
    col: int
    window: Window


def _starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile starts along one axis: every ``stride`` pixels, the last one flush with the end."""
    if tile >= length:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def tile_grid(height: int, width: int, *, tile: int, overlap: int) -> list[Tile]:
    """Tiles of ``tile`` x ``tile`` pixels covering a ``height`` x ``width`` image, neighbours
    sharing at least ``overlap`` pixels, row-major. The last row and column are moved back so
    that they end at the image's edge (their overlap is then larger). A tile larger than the
    image gives one tile, the whole image (clipped on each side that is too short).
    """
    for name, value in (("height", height), ("width", width), ("tile", tile)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < tile:
        raise ValueError(f"overlap must be an int in [0, tile={tile}), got {overlap!r}")
    stride = tile - overlap
    rows = _starts(height, tile, stride)
    cols = _starts(width, tile, stride)
    tiles = []
    for r, y0 in enumerate(rows):
        for c, x0 in enumerate(cols):
            window = Window(x0, y0, min(x0 + tile, width), min(y0 + tile, height))
            tiles.append(Tile(len(tiles), r, c, window))
    return tiles
