"""GeoTIFFs (and any raster GDAL reads) read window by window through rasterio."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io.readers import BandMapping, _ReaderBase, _Stretch
from ..tiling.grid import Window

_SAMPLE_SIDE = 1024


class NoCrsWarning(UserWarning):
    """A raster without a coordinate reference system: outputs are in pixel coordinates."""


@dataclass(frozen=True)
class GeoReference:
    """Where the raster lies: ``crs`` (a rasterio CRS, None for pixel coordinates) and the
    affine ``transform`` from (col, row) to map (x, y); the identity when there is no CRS."""

    crs: Any
    transform: Any

    @property
    def is_georeferenced(self) -> bool:
        return self.crs is not None


def require_geo() -> None:
    """ImportError saying which extra to install when rasterio, shapely or geopandas are missing."""
    for package in ("rasterio", "shapely", "geopandas"):
        try:
            __import__(package)
        except ImportError:
            raise ImportError(f"georeferenced input/output needs {package}: pip install 'samstream[geo]'") from None


class GeoRasterReader(_ReaderBase):
    """RGB uint8 windows of a raster (see :class:`~samstream.io.readers.BandMapping`), and its
    :class:`GeoReference`. Percentiles for the stretch come from a decimated read (GDAL uses
    the overviews when the file has them) of at most about 1024 x 1024 pixels."""

    def __init__(self, path: str | Path, mapping: BandMapping = BandMapping()) -> None:
        import rasterio
        from rasterio.errors import RasterioIOError

        self.name = str(path)
        from rasterio.errors import NotGeoreferencedWarning

        try:
            with warnings.catch_warnings():  # said below, in samstream's words
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._dataset = rasterio.open(path)
        except RasterioIOError as exc:
            raise ValueError(f"cannot read raster {path}: {exc}") from None
        ds = self._dataset
        self.height, self.width = int(ds.height), int(ds.width)
        self._bands = [b + 1 for b in mapping.choose(ds.count, self.name)]
        self.dtype = np.dtype(ds.dtypes[self._bands[0] - 1])
        if ds.crs is None:
            warnings.warn(
                f"{path} has no coordinate reference system: outputs use pixel coordinates (column, row)",
                NoCrsWarning,
                stacklevel=2,
            )
            from affine import Affine

            self.georef = GeoReference(None, Affine.identity())
        else:
            self.georef = GeoReference(ds.crs, ds.transform)
        self._stretch = _Stretch.from_sample(self._sample(), mapping) if self.dtype != np.uint8 else _Stretch(None, None)

    def _sample(self) -> np.ndarray:
        step = max(1.0, math.sqrt(self.height * self.width) / _SAMPLE_SIDE)
        shape = (len(self._bands), max(1, int(self.height / step)), max(1, int(self.width / step)))
        data = self._dataset.read(self._bands, out_shape=shape, masked=True)
        values = np.moveaxis(data.filled(np.nan).astype(np.float64), 0, -1)  # nodata left out of the percentiles
        return values

    def read(self, window: Window) -> np.ndarray:
        from rasterio.windows import Window as RioWindow

        self._check(window)
        data = self._dataset.read(self._bands, window=RioWindow(window.x0, window.y0, window.width, window.height))
        return self._stretch.apply(np.moveaxis(data, 0, -1))

    def close(self) -> None:
        dataset = getattr(self, "_dataset", None)
        if dataset is not None:
            dataset.close()
            self._dataset = None
