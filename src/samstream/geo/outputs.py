"""Georeferenced outputs of segmented objects: a label GeoTIFF and polygons with their area.

Both take the objects as :class:`~samstream.tiling.merge.MergedMask` (their packed box
pixels), never a full-size mask, and work one block of rows (label raster) or one object
(polygons) at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..io.atomic import atomic_output
from ..tiling.grid import Window
from ..tiling.merge import MergedMask
from .raster import GeoReference

VECTOR_DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG"}
_BLOCK = 512


def write_label_geotiff(
    path: str | Path, objects: Sequence[MergedMask], height: int, width: int, georef: GeoReference
) -> None:
    """A tiled, deflate-compressed uint32 GeoTIFF: 0 = background, else the object's id; where
    objects overlap the smaller one is on top. Same CRS and transform as the input (none and
    the identity for pixel coordinates). Written block of rows by block of rows, atomically."""
    import rasterio
    from rasterio.windows import Window as RioWindow

    order = sorted(objects, key=lambda o: -o.area)  # large first, small painted over them
    profile = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": 1,
        "dtype": "uint32",
        "tiled": True,
        "blockxsize": _BLOCK,
        "blockysize": _BLOCK,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
        "transform": georef.transform,
    }
    if georef.crs is not None:
        profile["crs"] = georef.crs
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    with atomic_output(path) as temp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # no CRS: pixel coordinates, said by the reader
        with rasterio.open(temp, "w", **profile) as dst:
            for y0 in range(0, height, _BLOCK):
                rows = Window(0, y0, width, min(y0 + _BLOCK, height))
                labels = np.zeros((rows.height, width), dtype=np.uint32)
                for obj in order:
                    box = obj.mask.window
                    common = box.intersect(rows)
                    if common is None:
                        continue
                    pixels = obj.mask.unpack().crop(common)
                    view = labels[common.y0 - y0 : common.y1 - y0, common.x0 : common.x1]
                    view[pixels] = obj.id
                dst.write(labels, 1, window=RioWindow(0, y0, width, rows.height))


SCORE_FIELDS = ("predicted_iou", "stability_score")


def object_polygons(objects: Sequence[MergedMask], georef: GeoReference, *, fields: Sequence[str] = SCORE_FIELDS):
    """A GeoDataFrame, one row per object: ``id``, ``pixels``, ``area`` (in the CRS's units
    squared, or pixels without a CRS), ``area_m2`` on the ellipsoid for geographic CRSs, the
    score ``fields`` (of :data:`SCORE_FIELDS`) and the (multi)polygon in map coordinates
    (pixel corners: a pixel is a unit square)."""
    import geopandas as gpd
    from rasterio.features import shapes
    from shapely.geometry import Polygon, shape
    from shapely.ops import unary_union

    rows, geometries = [], []
    for obj in objects:
        sparse = obj.mask.unpack()
        box = sparse.window
        if box.area == 0:  # the generator can keep an empty mask; it has an empty polygon
            geometries.append(Polygon())
        else:
            transform = georef.transform * georef.transform.translation(box.x0, box.y0)
            pixels = sparse.pixels.astype(np.uint8)
            parts = [shape(g) for g, v in shapes(pixels, mask=sparse.pixels, transform=transform) if v]
            geometries.append(unary_union(parts))
        rows.append({"id": obj.id, "pixels": obj.area, **{name: getattr(obj, name) for name in fields}})
    frame = gpd.GeoDataFrame(rows, geometry=geometries, crs=georef.crs)
    if len(frame) == 0:
        frame = gpd.GeoDataFrame({"id": [], "pixels": [], **{name: [] for name in fields}}, geometry=[], crs=georef.crs)
    frame["area"] = [g.area for g in frame.geometry]  # in the CRS's own units, as documented
    if georef.crs is not None and georef.crs.is_geographic and len(frame):
        from pyproj import Geod

        geod = Geod(ellps="WGS84")
        frame["area_m2"] = [abs(geod.geometry_area_perimeter(g)[0]) for g in frame.geometry]
    return frame


def write_polygons(
    path: str | Path, objects: Sequence[MergedMask], georef: GeoReference, *, fields: Sequence[str] = SCORE_FIELDS
) -> None:
    """The objects' polygons as GeoJSON (``.geojson``/``.json``) or GeoPackage (``.gpkg``), atomically."""
    path = Path(path)
    driver = VECTOR_DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise ValueError(f"{path}: polygons are written as {', '.join(VECTOR_DRIVERS)}")
    frame = object_polygons(objects, georef, fields=fields)
    with atomic_output(path) as temp:
        frame.to_file(temp, driver=driver, layer="objects" if driver == "GPKG" else None)
