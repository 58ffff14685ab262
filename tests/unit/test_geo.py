"""GeoTIFF in, label GeoTIFF and polygons out: coordinates round-trip (synthetic rasters made here)."""

from __future__ import annotations

import json

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
gpd = pytest.importorskip("geopandas")

from rasterio.crs import CRS  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402

from samstream.geo.outputs import object_polygons, write_label_geotiff, write_polygons  # noqa: E402
from samstream.geo.raster import GeoRasterReader, NoCrsWarning  # noqa: E402
from samstream.io.readers import BandMapping  # noqa: E402
from samstream.tiling.grid import Window  # noqa: E402
from samstream.tiling.run import TileConfig, generate_tiled  # noqa: E402

from highres_data import ComponentsGenerator, disk as _disk  # noqa: E402

UTM = CRS.from_epsg(32633)
TRANSFORM = from_origin(500000.0, 4100000.0, 10.0, 10.0)  # 10 m pixels, north up
HEIGHT, WIDTH = 300, 400
DISCS = [(120, 100, 50), (300, 200, 70)]  # (cx, cy, r) in pixels, the second one crosses tiles


def _scene(path, *, crs=UTM, transform=TRANSFORM):
    """A 4-band uint16 raster: dark noise, bright discs in bands 3, 2 and 1."""
    rng = np.random.default_rng(0)
    bands = rng.integers(200, 800, (4, HEIGHT, WIDTH)).astype(np.uint16)
    truth = np.zeros((HEIGHT, WIDTH), dtype=bool)
    for cx, cy, r in DISCS:
        truth |= _disk(HEIGHT, WIDTH, cx, cy, r)
    bands[:3, truth] = 20000
    profile = {"driver": "GTiff", "height": HEIGHT, "width": WIDTH, "count": 4, "dtype": "uint16"}
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return bands, truth


def test_bands_and_stretch(tmp_path):
    bands, truth = _scene(tmp_path / "scene.tif")
    with GeoRasterReader(tmp_path / "scene.tif", BandMapping(bands=(3, 2, 1))) as reader:
        rgb = reader.read(Window(0, 0, WIDTH, HEIGHT))
        assert reader.georef.crs == UTM and reader.georef.transform == TRANSFORM
    assert rgb.dtype == np.uint8 and rgb.shape == (HEIGHT, WIDTH, 3)
    assert (rgb[truth] == 255).all() and rgb[~truth].max() < 128
    with pytest.raises(ValueError, match="no band 5"):
        GeoRasterReader(tmp_path / "scene.tif", BandMapping(bands=(5,)))


def test_label_geotiff_and_polygons_round_trip(tmp_path):
    _scene(tmp_path / "scene.tif")
    with GeoRasterReader(tmp_path / "scene.tif") as reader:
        objects = generate_tiled(ComponentsGenerator(), reader, TileConfig(tile=256, overlap=64))
        georef = reader.georef
    assert len(objects) == len(DISCS)
    write_label_geotiff(tmp_path / "labels.tif", objects, HEIGHT, WIDTH, georef)
    with rasterio.open(tmp_path / "labels.tif") as src:
        assert src.crs == UTM and src.transform == TRANSFORM and (src.height, src.width) == (HEIGHT, WIDTH)
        labels = src.read(1)
    for obj in objects:
        np.testing.assert_array_equal(labels == obj.id, obj.mask.unpack().crop(Window(0, 0, WIDTH, HEIGHT)))

    write_polygons(tmp_path / "objects.gpkg", objects, georef)
    write_polygons(tmp_path / "objects.geojson", objects, georef)
    frame = gpd.read_file(tmp_path / "objects.gpkg")
    assert frame.crs == UTM and len(frame) == len(DISCS)
    for (cx, cy, r), row in zip(sorted(DISCS, key=lambda d: d[1]), frame.sort_values("id").itertuples()):
        assert row.area == pytest.approx(row.pixels * 100.0)  # 10 m x 10 m pixels
        x, y = TRANSFORM @ (cx + 0.5, cy + 0.5)  # the disc's centre pixel, at its centre
        assert row.geometry.centroid.x == pytest.approx(x, abs=1.0)
        assert row.geometry.centroid.y == pytest.approx(y, abs=1.0)
    doc = json.loads((tmp_path / "objects.geojson").read_text())
    assert len(doc["features"]) == len(DISCS)


def test_raster_without_crs_warns_and_uses_pixel_coordinates(tmp_path):
    _scene(tmp_path / "plain.tif", crs=None)
    with pytest.warns(NoCrsWarning, match="pixel coordinates"):
        reader = GeoRasterReader(tmp_path / "plain.tif")
    with reader:
        objects = generate_tiled(ComponentsGenerator(), reader, TileConfig(tile=512, overlap=64))
        georef = reader.georef
    frame = object_polygons(objects, georef)
    first = frame.sort_values("id").iloc[0]
    cx, cy, r = DISCS[0]
    assert frame.crs is None
    assert first.geometry.centroid.x == pytest.approx(cx + 0.5, abs=0.2)
    assert first.geometry.centroid.y == pytest.approx(cy + 0.5, abs=0.2)
    assert first["area"] == pytest.approx(first["pixels"])


def test_geographic_crs_gets_area_in_square_metres(tmp_path):
    transform = from_origin(10.0, 45.0, 0.0001, 0.0001)  # about 11 m x 8 m pixels at 45 degrees north
    _scene(tmp_path / "wgs84.tif", crs=CRS.from_epsg(4326), transform=transform)
    with GeoRasterReader(tmp_path / "wgs84.tif") as reader:
        objects = generate_tiled(ComponentsGenerator(), reader, TileConfig(tile=512, overlap=64))
        frame = object_polygons(objects, reader.georef)
    per_pixel = frame["area_m2"] / frame["pixels"]
    assert ((per_pixel > 80) & (per_pixel < 95)).all()  # 11.1 km per degree of latitude x 7.9 of longitude
