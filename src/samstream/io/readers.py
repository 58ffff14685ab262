"""Reading windows of images too large to decode whole.

:func:`open_raster` gives a :class:`RasterReader` whose :meth:`~RasterReader.read` returns one
window as RGB uint8 [h, w, 3]:

* TIFF (``.tif``/``.tiff``, BigTIFF, tiled or striped, any compression tifffile decodes) is read
  through tifffile's Zarr view: a window decodes only the tiles (or strips) it touches, so
  memory stays bounded by the window, whatever the image size;
* other formats (PNG, JPEG, ...) are decoded once by PIL (their compression is sequential, a
  window cannot be read alone), then windows are cut from memory: 3 bytes per pixel.

Bands and bit depth (:class:`BandMapping`): ``bands`` picks 1 or 3 bands (1-based, like GDAL;
one band is shown as gray); by default the first three bands of a raster with 3 or more,
else the first. uint8 rasters are used as they are. Rasters of other types (16-bit, float)
get a percentile stretch: each chosen band is mapped linearly from its ``low``-th to its
``high``-th percentile (default 2 and 98) to 0..255 and clipped; the percentiles are computed
once from a regular subsample of at most about a million pixels per band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..tiling.grid import Window

__all__ = ["BandMapping", "RasterReader", "TiffReader", "PillowReader", "open_raster", "TIFF_SUFFIXES"]

TIFF_SUFFIXES = (".tif", ".tiff")
_SAMPLE_PIXELS = 1 << 20


@dataclass(frozen=True)
class BandMapping:
    """How raster bands become RGB: ``bands`` (1-based, 1 or 3 of them, None = default) and
    the percentile stretch ``(low, high)`` used for rasters that are not uint8."""

    bands: tuple[int, ...] | None = None
    stretch: tuple[float, float] = (2.0, 98.0)

    def __post_init__(self) -> None:
        if self.bands is not None:
            if len(self.bands) not in (1, 3) or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in self.bands):
                raise ValueError(f"bands must be 1 or 3 band numbers >= 1 (1-based), got {self.bands!r}")
        low, high = self.stretch
        if not 0.0 <= low < high <= 100.0:
            raise ValueError(f"stretch must be two percentiles 0 <= low < high <= 100, got {self.stretch!r}")

    def choose(self, band_count: int, name: str) -> tuple[int, ...]:
        """The 0-based bands to read from a raster with ``band_count`` bands."""
        if self.bands is None:
            return (0, 1, 2) if band_count >= 3 else (0,)
        missing = [b for b in self.bands if b > band_count]
        if missing:
            raise ValueError(f"bands {list(self.bands)}: {name} has {band_count} band(s), no band {missing[0]}")
        return tuple(b - 1 for b in self.bands)


class _Stretch:
    """Per-band linear map [lo, hi] -> [0, 255] (identity for uint8 data)."""

    def __init__(self, lo: np.ndarray | None, hi: np.ndarray | None) -> None:
        self.lo, self.hi = lo, hi

    @classmethod
    def from_sample(cls, sample: np.ndarray, mapping: BandMapping) -> "_Stretch":
        """``sample`` [h, w, bands] of the raster's own type."""
        if sample.dtype == np.uint8:
            return cls(None, None)
        flat = sample.reshape(-1, sample.shape[-1]).astype(np.float64)
        flat = flat[np.isfinite(flat).all(axis=1)]
        if flat.size == 0:
            return cls(np.zeros(sample.shape[-1]), np.ones(sample.shape[-1]))
        lo, hi = np.percentile(flat, mapping.stretch, axis=0)
        hi = np.where(hi > lo, hi, lo + 1.0)  # a flat band maps to black
        return cls(lo, hi)

    def apply(self, data: np.ndarray) -> np.ndarray:
        """[h, w, bands] raster values -> RGB uint8 [h, w, 3]."""
        if self.lo is None:
            out = data.astype(np.uint8, copy=False)
        else:
            scaled = (data.astype(np.float32) - self.lo.astype(np.float32)) * (255.0 / (self.hi - self.lo)).astype(np.float32)
            out = np.clip(np.nan_to_num(scaled, nan=0.0), 0.0, 255.0).round().astype(np.uint8)
        if out.shape[-1] == 1:
            out = np.repeat(out, 3, axis=-1)
        return np.ascontiguousarray(out)


class RasterReader(Protocol):
    """Windows of an image as RGB uint8."""

    name: str
    height: int
    width: int

    def read(self, window: Window) -> np.ndarray:
        """RGB uint8 [window.height, window.width, 3]."""
        ...

    def close(self) -> None: ...


class _ReaderBase:
    name: str
    height: int
    width: int

    def _check(self, window: Window) -> None:
        if not (0 <= window.x0 < window.x1 <= self.width and 0 <= window.y0 < window.y1 <= self.height):
            raise ValueError(f"window {tuple(window)} is not inside the {self.width}x{self.height} image {self.name}")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pass


class TiffReader(_ReaderBase):
    """A TIFF read window by window (tifffile + zarr): only the touched tiles are decoded."""

    def __init__(self, path: str | Path, mapping: BandMapping = BandMapping()) -> None:
        try:
            import tifffile
            import zarr
        except ImportError as exc:
            raise ImportError(f"reading TIFF windows needs {exc.name}: pip install 'samstream[highres]'") from None

        self.name = str(path)
        try:
            with tifffile.TiffFile(path) as tif:
                axes = tif.series[0].axes
        except (tifffile.TiffFileError, OSError, ValueError, IndexError) as exc:
            raise ValueError(f"cannot read TIFF file {path}: {exc}") from None
        self._store = tifffile.imread(path, aszarr=True, series=0, level=0)
        self._array = zarr.open(self._store, mode="r")
        shape = self._array.shape
        # bring the axes to (Y, X, bands); other axes (pages, time) take their first entry
        band_axis = next((axes.index(a) for a in "SC" if a in axes), None)
        if "Y" not in axes or "X" not in axes:
            self.close()
            raise ValueError(f"{path}: a TIFF with axes {axes!r} has no image plane (Y and X)")
        self._y, self._x, self._band_axis = axes.index("Y"), axes.index("X"), band_axis
        self.height, self.width = int(shape[self._y]), int(shape[self._x])
        band_count = 1 if band_axis is None else int(shape[band_axis])
        self.dtype = np.dtype(self._array.dtype)
        self._bands = mapping.choose(band_count, self.name)
        self._stretch = _Stretch.from_sample(self._sample(), mapping)

    def _raw(self, rows: slice, cols: slice) -> np.ndarray:
        """Raster values [h, w, chosen bands]."""
        index: list[object] = [0] * self._array.ndim
        index[self._y], index[self._x] = rows, cols
        if self._band_axis is not None:
            index[self._band_axis] = slice(None)
        data = np.asarray(self._array[tuple(index)])
        kept = sorted(a for a in (self._y, self._x, self._band_axis) if a is not None)
        order = [kept.index(self._y), kept.index(self._x)]
        if self._band_axis is not None:
            order.append(kept.index(self._band_axis))
            data = data.transpose(order)
        else:
            data = data.transpose(order)[:, :, None]
        return data[:, :, list(self._bands)]

    def _sample(self) -> np.ndarray:
        step = max(1, math.ceil(math.sqrt(self.height * self.width / _SAMPLE_PIXELS)))
        if self.dtype == np.uint8:
            return np.zeros((1, 1, len(self._bands)), dtype=np.uint8)
        return self._raw(slice(0, self.height, step), slice(0, self.width, step))

    def read(self, window: Window) -> np.ndarray:
        self._check(window)
        return self._stretch.apply(self._raw(slice(window.y0, window.y1), slice(window.x0, window.x1)))

    def close(self) -> None:
        store = getattr(self, "_store", None)
        if store is not None:
            store.close()
            self._store = None


class PillowReader(_ReaderBase):
    """An image PIL decodes (PNG, JPEG, ...), decoded once, windows cut from memory."""

    def __init__(self, path: str | Path, mapping: BandMapping = BandMapping(), *, max_pixels: int | None = None) -> None:
        from ..image.transforms import load_image

        self.name = str(path)
        limit = max_pixels if max_pixels is not None else 1 << 62
        image = load_image(path, max_pixels=limit)
        if mapping.bands is not None and mapping.bands != (1, 2, 3):
            raise ValueError(f"bands {list(mapping.bands)}: {path} is read as RGB; band selection needs a TIFF")
        if image.dtype != np.uint8:  # 16-bit PNG: stretch like any non-8-bit raster
            image = _Stretch.from_sample(image[:: max(1, image.shape[0] // 1024), :: max(1, image.shape[1] // 1024)], mapping).apply(image)
        self._image = image
        self.height, self.width = image.shape[:2]

    def read(self, window: Window) -> np.ndarray:
        self._check(window)
        return np.ascontiguousarray(self._image[window.y0 : window.y1, window.x0 : window.x1])

    def close(self) -> None:
        self._image = None


def open_raster(
    path: str | Path, mapping: BandMapping = BandMapping(), *, max_pixels: int | None = None
) -> TiffReader | PillowReader:
    """A reader for ``path``: TIFFs window by window, other formats through PIL
    (``max_pixels`` limits those, which are decoded whole; None = no limit)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    if path.suffix.lower() in TIFF_SUFFIXES:
        return TiffReader(path, mapping)
    return PillowReader(path, mapping, max_pixels=max_pixels)


def read_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header, any size (TIFFs through tifffile, others through PIL)."""
    path = Path(path)
    if path.suffix.lower() in TIFF_SUFFIXES:
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                axes, shape = series.axes, series.shape
        except (tifffile.TiffFileError, OSError, ValueError, IndexError) as exc:
            raise ValueError(f"cannot read TIFF file {path}: {exc}") from None
        return int(shape[axes.index("X")]), int(shape[axes.index("Y")])
    from ..image.transforms import read_image_size

    return read_image_size(path, max_pixels=1 << 62)


