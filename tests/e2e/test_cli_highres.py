"""``everything --tile`` and ``segment --window`` end to end on images above --max-pixels, tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image
from pycocotools import mask as mask_api
from tiny import sample_image

from samstream.cli import main

FAST = ["--points-per-side", "3", "--pred-iou-thresh", "0", "--stability-score-thresh", "0"]


@pytest.fixture(scope="module")
def big_tiff(tmp_path_factory):
    """A 600 x 760 tiled TIFF made of sample photographs."""
    image = np.zeros((600, 760, 3), dtype=np.uint8)
    image[:512, :512] = sample_image("astronaut")
    coffee = sample_image("coffee")[:, :248]
    image[200:600, 512:760] = coffee
    path = tmp_path_factory.mktemp("big") / "scene.tif"
    tifffile.imwrite(path, image, tile=(128, 128), compression="zlib", photometric="rgb")
    return path, image


def _decode(doc):
    return [mask_api.decode({"size": a["segmentation"]["size"], "counts": a["segmentation"]["counts"].encode()}) for a in doc["annotations"]]


def test_everything_tiled_above_max_pixels(big_tiff, tmp_path, tiny_model_files, capsys):
    path, _ = big_tiff
    small_limit = ["--max-pixels", "200000"]  # the image has 456,000 pixels
    assert main(["everything", str(path), "--output-dir", str(tmp_path / "refused"), *small_limit, *FAST, *tiny_model_files.cli_args()]) == 2
    assert "megapixels" in capsys.readouterr().err
    out = tmp_path / "tiled"
    args = ["everything", str(path), "--output-dir", str(out), "--tile", "256", "--tile-overlap", "64", *small_limit]
    assert main([*args, *FAST, *tiny_model_files.cli_args()]) == 0
    doc = json.loads((out / "annotations.json").read_text())
    assert doc["images"][0]["width"] == 760 and doc["images"][0]["height"] == 600
    assert doc["tiling"] == {"tile": 256, "overlap": 64, "merge_iou": 0.5}
    assert doc["annotations"] and [a["id"] for a in doc["annotations"]] == list(range(1, len(doc["annotations"]) + 1))
    for annotation, mask in zip(doc["annotations"], _decode(doc)):
        assert mask.shape == (600, 760) and int(mask.sum()) == annotation["area"]
    # the same run again gives the same ids and masks
    again = tmp_path / "again"
    assert main(["everything", str(path), "--output-dir", str(again), "--tile", "256", "--tile-overlap", "64", *small_limit, *FAST, *tiny_model_files.cli_args()]) == 0
    doc2 = json.loads((again / "annotations.json").read_text())
    assert [a["segmentation"] for a in doc2["annotations"]] == [a["segmentation"] for a in doc["annotations"]]


def test_tile_larger_than_image_equals_the_untiled_run(big_tiff, tmp_path, tiny_model_files):
    path, _ = big_tiff
    plain, tiled = tmp_path / "plain", tmp_path / "one_tile"
    assert main(["everything", str(path), "--output-dir", str(plain), *FAST, *tiny_model_files.cli_args()]) == 0
    assert main(["everything", str(path), "--output-dir", str(tiled), "--tile", "4096", *FAST, *tiny_model_files.cli_args()]) == 0
    a = json.loads((plain / "annotations.json").read_text())["annotations"]
    b = json.loads((tiled / "annotations.json").read_text())["annotations"]
    assert len(a) == len(b) > 0
    assert sorted(x["segmentation"]["counts"] for x in a) == sorted(x["segmentation"]["counts"] for x in b)


def test_everything_tile_errors(big_tiff, tmp_path, tiny_model_files, capsys):
    path, _ = big_tiff
    base = ["everything", str(path), "--output-dir", str(tmp_path / "x"), *tiny_model_files.cli_args()]
    assert main([*base, "--tile", "256", "--tile-overlap", "256"]) == 2
    assert "--tile-overlap" in capsys.readouterr().err
    assert main([*base, "--bands", "1,2,3"]) == 2
    assert "--bands needs --tile" in capsys.readouterr().err
    assert main([*base, "--tile", "256", "--stretch", "90,10"]) == 2
    assert "--stretch" in capsys.readouterr().err


def test_segment_window_on_a_large_image(big_tiff, tmp_path, tiny_model_files, capsys):
    path, image = big_tiff
    out = tmp_path / "seg"
    args = ["segment", str(path), "--point", "650,400", "--window", "256", "--max-pixels", "100000"]
    assert main([*args, "--out", str(out), *tiny_model_files.cli_args()]) == 0
    scores = json.loads((out / "scores.json").read_text())
    x0, y0, x1, y1 = scores["window"]
    assert (x1 - x0, y1 - y0) == (256, 256) and x0 <= 650 < x1 and y0 <= 400 < y1
    assert scores["points"] == [[650.0, 400.0]] and scores["image_size"] == [600, 760]
    crop = np.array(Image.open(out / "mask_0.png")) > 0
    assert crop.shape == (256, 256)
    full = json.loads((out / "masks.rle.json").read_text())["masks"]
    whole = mask_api.decode({"size": full[0]["size"], "counts": full[0]["counts"].encode()}).astype(bool)
    assert whole.shape == (600, 760) and whole.sum() == crop.sum()
    np.testing.assert_array_equal(whole[y0:y1, x0:x1], crop)
    # the model saw exactly the window: same masks as segmenting the cropped window itself
    Image.fromarray(image[y0:y1, x0:x1]).save(tmp_path / "window.png")
    ref = tmp_path / "ref"
    assert main(["segment", str(tmp_path / "window.png"), "--point", f"{650 - x0},{400 - y0}", "--out", str(ref), *tiny_model_files.cli_args()]) == 0
    np.testing.assert_array_equal(np.array(Image.open(ref / "mask_0.png")) > 0, crop)
    # without --window the image is refused by the pixel limit
    assert main(["segment", str(path), "--point", "650,400", "--max-pixels", "100000", "--out", str(tmp_path / "no"), *tiny_model_files.cli_args()]) == 2
    assert "megapixels" in capsys.readouterr().err


def test_segment_scale_and_box_window(big_tiff, tmp_path, tiny_model_files):
    path, _ = big_tiff
    out = tmp_path / "box"
    assert main(["segment", str(path), "--box", "100,100,500,420", "--scale", "1", "--out", str(out), *tiny_model_files.cli_args()]) == 0
    x0, y0, x1, y1 = json.loads((out / "scores.json").read_text())["window"]
    assert x0 <= 100 and y0 <= 100 and x1 >= 500 and y1 >= 420  # the window grew to hold the box


def _coffee_geotiff(tmp_path):
    """(path, image [3, 300, 400] uint16, crs, transform): a 16-bit 3-band GeoTIFF in EPSG:3857, 0.5 m pixels."""
    rasterio = pytest.importorskip("rasterio")
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    image = np.moveaxis(sample_image("coffee")[:300, :400], 2, 0).astype(np.uint16) * 200
    crs, transform = CRS.from_epsg(3857), from_origin(1_000_000.0, 6_000_000.0, 0.5, 0.5)
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", height=300, width=400, count=3, dtype="uint16", crs=crs, transform=transform) as dst:
        dst.write(image)
    return path, image, crs, transform


def test_everything_geo_outputs_in_the_input_crs(tmp_path, tiny_model_files, capsys):
    rasterio = pytest.importorskip("rasterio")
    gpd = pytest.importorskip("geopandas")
    path, image, crs, transform = _coffee_geotiff(tmp_path)
    out = tmp_path / "out"
    args = ["everything", str(path), "--output-dir", str(out), "--tile", "256", "--geo", "--vector-format", "gpkg", "--bands", "3,2,1"]
    assert main([*args, *FAST, *tiny_model_files.cli_args()]) == 0
    doc = json.loads((out / "annotations.json").read_text())
    with rasterio.open(out / "scene_labels.tif") as src:
        assert src.crs == crs and src.transform == transform
        labels = src.read(1)
    frame = gpd.read_file(out / "scene_polygons.gpkg")
    assert frame.crs == crs and len(frame) == len(doc["annotations"]) > 0
    assert set(np.unique(labels)) <= {0} | {a["id"] for a in doc["annotations"]}
    assert frame["area"].to_numpy() == pytest.approx(frame["pixels"].to_numpy() * 0.25)

    # the same raster without a CRS: a warning, pixel coordinates
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", height=300, width=400, count=3, dtype="uint16") as dst:
        dst.write(image)
    capsys.readouterr()
    assert main(["everything", str(plain), "--output-dir", str(tmp_path / "o2"), "--tile", "512", "--geo", *FAST, *tiny_model_files.cli_args()]) == 0
    assert "no coordinate reference system" in capsys.readouterr().err
    frame = gpd.read_file(tmp_path / "o2" / "plain_polygons.geojson")
    assert frame.total_bounds[2] <= 400 and frame.total_bounds[3] <= 300


def test_segment_geo_outputs_in_the_input_crs(tmp_path, tiny_model_files, capsys):
    rasterio = pytest.importorskip("rasterio")
    gpd = pytest.importorskip("geopandas")
    path, image, crs, transform = _coffee_geotiff(tmp_path)
    for extra in (["--window", "128"], []):  # a window around the click, then the whole raster
        out = tmp_path / f"out{len(extra)}"
        args = ["segment", str(path), "--point", "250,150", "--out", str(out), "--geo", "--vector-format", "gpkg", *extra]
        assert main([*args, "--bands", "3,2,1", *tiny_model_files.cli_args()]) == 0
        scores = json.loads((out / "scores.json").read_text())
        best = np.asarray(Image.open(out / f"mask_{scores['best']}.png")) > 0
        x0, y0, x1, y1 = scores.get("window", [0, 0, 400, 300])
        with rasterio.open(out / "labels.tif") as src:
            assert src.crs == crs and src.transform == transform and (src.height, src.width) == (300, 400)
            labels = src.read(1)
        expected = np.zeros((300, 400), dtype=bool)
        expected[y0:y1, x0:x1] = best
        np.testing.assert_array_equal(labels == 1, expected)
        assert set(np.unique(labels)) <= {0, 1}
        frame = gpd.read_file(out / "polygons.gpkg").sort_values("id")
        assert frame.crs == crs and len(frame) == len(scores["masks"])
        assert frame["predicted_iou"].to_numpy() == pytest.approx(scores["scores"], abs=1e-6)
        assert frame["area"].to_numpy() == pytest.approx(frame["pixels"].to_numpy() * 0.25)  # 0.5 m pixels
        assert int(frame["pixels"].iloc[scores["best"]]) == int(best.sum())
    assert main(["segment", str(path), "--point", "250,150", "--out", str(tmp_path / "x"), "--bands", "1", *tiny_model_files.cli_args()]) == 2
    assert "--bands and --stretch go with --geo" in capsys.readouterr().err


def test_segment_and_track_refine(tmp_path, tiny_model_files, tiny_file_model):
    from samstream.image.predictor import ImagePredictor
    from samstream.image.refine import MaskRefiner

    image = sample_image("coffee")
    Image.fromarray(image).save(tmp_path / "coffee.png")
    out = tmp_path / "refined"
    args = ["segment", str(tmp_path / "coffee.png"), "--box", "200,100,330,220", "--refine"]
    assert main([*args, "--out", str(out), *tiny_model_files.cli_args()]) == 0
    scores = json.loads((out / "scores.json").read_text())
    assert len(scores["refined"]) == 1
    predictor = ImagePredictor(tiny_file_model)
    predictor.set_image(image)
    coarse = predictor.predict(box=[200, 100, 330, 220], multimask_output=False).masks[0]
    expected = MaskRefiner(tiny_file_model).refine(image, coarse, box=np.array([200.0, 100.0, 330.0, 220.0]))
    assert scores["refined"] == [expected.accepted]
    np.testing.assert_array_equal(np.array(Image.open(out / "mask_0.png")) > 0, expected.mask)

    frames = tmp_path / "frames"
    frames.mkdir()
    for t in range(3):
        Image.fromarray(np.roll(image, 4 * t, axis=1)).save(frames / f"{t:05d}.jpg")
    plain, fine = tmp_path / "plain", tmp_path / "fine"
    track = ["track", str(frames), "--box", "0:200,100,330,220", *tiny_model_files.cli_args()]
    assert main([*track, "--output-dir", str(plain)]) == 0
    assert main([*track, "--refine", "--output-dir", str(fine)]) == 0
    for t in range(3):
        a = np.array(Image.open(plain / "001" / f"{t:05d}.png")) > 0
        b = np.array(Image.open(fine / "001" / f"{t:05d}.png")) > 0
        frame = np.array(Image.open(frames / f"{t:05d}.jpg").convert("RGB"))
        np.testing.assert_array_equal(b, MaskRefiner(tiny_file_model).refine(frame, a).mask)
