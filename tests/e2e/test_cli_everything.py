"""``samstream everything`` end to end on a folder of two small images, with the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_api

from samstream.cli import main


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from skimage import data

    folder = tmp_path_factory.mktemp("images")
    Image.fromarray(data.coffee()[::5, ::5]).save(folder / "coffee.png")  # 80 x 120
    Image.fromarray(data.astronaut()[::6, ::6]).save(folder / "astronaut.jpg")  # 86 x 86
    (folder / "notes.txt").write_text("not an image")
    return folder


FAST = ["--points-per-side", "3", "--pred-iou-thresh", "0", "--stability-score-thresh", "0"]


def test_folder_to_coco_json_pngs_and_overlays(images, tmp_path, tiny_model_files, capsys):
    out = tmp_path / "out"
    code = main(["everything", str(images), "--output-dir", str(out), "--png", "--overlay", *FAST, *tiny_model_files.cli_args()])
    assert code == 0
    assert "annotations.json" in capsys.readouterr().out

    doc = json.loads((out / "annotations.json").read_text())
    assert {"info", "images", "annotations", "categories"} <= set(doc)
    assert [Path(i["file_name"]).name for i in doc["images"]] == ["astronaut.jpg", "coffee.png"]
    sizes = {i["id"]: (i["height"], i["width"]) for i in doc["images"]}
    assert sizes == {1: (86, 86), 2: (80, 120)}
    assert doc["annotations"], "expected masks with the filters off"
    assert doc["info"]["options"]["points_per_side"] == 3

    per_image: dict[int, int] = {}
    for ann in doc["annotations"]:
        height, width = sizes[ann["image_id"]]
        rle = ann["segmentation"]
        assert rle["size"] == [height, width] and isinstance(rle["counts"], str)
        mask = mask_api.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)
        assert mask.shape == (height, width)
        assert ann["area"] == int(mask.sum())
        x, y, w, h = ann["bbox"]
        if ann["area"]:
            ys, xs = np.nonzero(mask)
            assert [x, y, x + w, y + h] == [xs.min(), ys.min(), xs.max(), ys.max()]
        assert ann["category_id"] == 1 and ann["iscrowd"] == 0
        k = per_image.get(ann["image_id"], 0)
        per_image[ann["image_id"]] = k + 1
        stem = "astronaut" if ann["image_id"] == 1 else "coffee"
        png = np.array(Image.open(out / "masks" / stem / f"{k:04d}.png"))
        np.testing.assert_array_equal(png > 0, mask)
    assert len({a["id"] for a in doc["annotations"]}) == len(doc["annotations"])

    for stem, hw in (("astronaut", (86, 86)), ("coffee", (80, 120))):
        overlay = np.array(Image.open(out / "overlays" / f"{stem}.png"))
        assert overlay.shape == (*hw, 3)
    assert not list(out.rglob("*.tmp")), "atomic writes leave no temporary files"


def test_single_image_without_extras(images, tmp_path, tiny_model_files):
    out = tmp_path / "single"
    code = main(["everything", str(images / "coffee.png"), "--output-dir", str(out), *FAST, "--points-per-side", "2",
                 "--single-mask", *tiny_model_files.cli_args()])
    assert code == 0
    doc = json.loads((out / "annotations.json").read_text())
    assert len(doc["images"]) == 1 and len(doc["annotations"]) <= 4
    assert not (out / "masks").exists() and not (out / "overlays").exists()


def test_errors(images, tmp_path, tiny_model_files, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["everything", str(empty), "--output-dir", str(tmp_path / "o1"), *tiny_model_files.cli_args()]) == 2
    assert "no images" in capsys.readouterr().err

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.png").write_bytes(b"not a png")
    assert main(["everything", str(broken), "--output-dir", str(tmp_path / "o2"), *tiny_model_files.cli_args()]) == 2
    assert "bad.png" in capsys.readouterr().err

    assert main(["everything", str(tmp_path / "missing.png"), "--output-dir", str(tmp_path / "o3")]) == 2
    assert "not found" in capsys.readouterr().err

    code = main(["everything", str(images), "--output-dir", str(tmp_path / "o4"), "--pred-iou-thresh", "2"])
    assert code == 2
    assert "--pred-iou-thresh" in capsys.readouterr().err


def test_no_mask_passing_the_filters_is_said(images, tmp_path, tiny_model_files, capsys):
    """A predicted IoU is at most 1, so a threshold of 1 keeps nothing: said on stderr, with the
    thresholds that did it, and the (empty) annotations still written."""
    out = tmp_path / "out"
    args = ["--points-per-side", "3", "--pred-iou-thresh", "1.0", "--stability-score-thresh", "0.5"]
    code = main(["everything", str(images / "coffee.png"), "--output-dir", str(out), *args, *tiny_model_files.cli_args()])
    assert code == 0
    err = capsys.readouterr().err
    assert "no mask passed the filters (--pred-iou-thresh 1.0, --stability-score-thresh 0.5)" in err
    doc = json.loads((out / "annotations.json").read_text())
    assert doc["annotations"] == [] and len(doc["images"]) == 1
    code = main(["everything", str(images / "coffee.png"), "--output-dir", str(out), "--overwrite", *FAST, *tiny_model_files.cli_args()])
    assert code == 0 and "no mask passed" not in capsys.readouterr().err
