"""Text prompts end to end: ``segment --text``, ``everything --text`` and ``track --text`` with
the tiny SAM model and tiny random-weight detectors written by the test (no hub)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny import moving_clip, sample_image, write_jpeg_folder

from samstream.cli import main
from samstream.io.labels import read_object_labels
from samstream.io.writers import read_coco_rle

pytestmark = pytest.mark.usefixtures("one_thread")

PHRASES = ["cat", "red car"]


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "coffee.png"
    Image.fromarray(sample_image("coffee")).save(path)  # 600 x 400
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_jpeg_folder(tmp_path_factory.mktemp("clip"), moving_clip(5))  # 5 frames, 320 x 136


def test_segment_text_writes_labelled_masks(tmp_path, photo, tiny_model_files, tiny_grounding_dino_dir, capsys):
    out = tmp_path / "out"
    code = main(["segment", str(photo), "--text", "Cat. Red  car.", "--detector", str(tiny_grounding_dino_dir),
                 "--box-threshold", "0.3", "--out", str(out), *tiny_model_files.cli_args()])
    assert code == 0
    scores = json.loads((out / "scores.json").read_text())
    assert scores["phrases"] == PHRASES and scores["detector"] == str(tiny_grounding_dino_dir)
    objects = scores["objects"]
    assert objects and {o["label"] for o in objects} <= set(PHRASES)
    assert [o["score"] for o in objects] == sorted((o["score"] for o in objects), reverse=True)
    assert all(o["score"] > 0.3 for o in objects)
    for i, o in enumerate(objects):
        assert o["mask"] == f"mask_{i}.png"
        with Image.open(out / o["mask"]) as img:
            assert img.size == (600, 400)
        x0, y0, x1, y1 = o["box"]
        assert 0 <= x0 <= x1 <= 600 and 0 <= y0 <= y1 <= 400
    assert len(list(out.glob("mask_*.png"))) == len(objects)
    with Image.open(out / "overlay.png") as img:
        assert img.size == (600, 400)
    assert objects[0]["label"] in capsys.readouterr().out


def test_segment_text_errors(tmp_path, photo, tiny_model_files, tiny_owlv2_dir, monkeypatch, capsys):
    args = [str(photo), "--out", str(tmp_path / "o"), *tiny_model_files.cli_args()]
    assert main(["segment", *args, "--text", "cat", "--point", "10,10"]) == 2
    assert "takes no --point" in capsys.readouterr().err
    assert main(["segment", *args, "--text", " . "]) == 2
    assert "--text: give at least one phrase" in capsys.readouterr().err
    assert main(["segment", *args, "--text", "cat", "--box-threshold", "1.5"]) == 2
    assert "--box-threshold must be in [0, 1]" in capsys.readouterr().err
    assert main(["segment", *args, "--text", "cat", "--detector", str(tmp_path / "missing" / "folder")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["segment", *args, "--text", "cat", "--detector", str(tiny_owlv2_dir), "--text-threshold", "0.2"]) == 2
    assert "--text-threshold applies to Grounding DINO" in capsys.readouterr().err
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    assert main(["segment", *args, "--text", "cat"]) == 3  # the default detector, not cached
    err = capsys.readouterr().err
    assert "IDEA-Research/grounding-dino-tiny" in err and str(tmp_path / "empty_cache") in err and err.count("\n") == 1
    # a detector that finds nothing: exit 4, nothing written
    assert main(["segment", *args, "--text", "cat", "--detector", str(tiny_owlv2_dir), "--box-threshold", "1"]) == 4
    assert "found nothing" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_everything_text_has_the_phrases_as_categories(tmp_path, photo, tiny_model_files, tiny_owlv2_dir):
    out = tmp_path / "out"
    code = main(["everything", str(photo), "--text", "cat. red car.", "--detector", str(tiny_owlv2_dir), "--box-threshold", "0",
                 "--output-dir", str(out), "--png", "--overlay", *tiny_model_files.cli_args()])
    assert code == 0
    document = json.loads((out / "annotations.json").read_text())
    assert document["categories"] == [{"id": 1, "name": "cat"}, {"id": 2, "name": "red car"}]
    assert document["info"]["phrases"] == PHRASES
    annotations = document["annotations"]
    assert annotations and {a["category_id"] for a in annotations} <= {1, 2}
    for a in annotations:
        assert {"score", "predicted_iou", "detector_box", "segmentation", "bbox", "area"} <= set(a)
    assert len(list((out / "masks" / "coffee").glob("*.png"))) == len(annotations)
    assert (out / "overlays" / "coffee.png").is_file()


@pytest.mark.parametrize("fmt", ["png", "rle", "mp4"])
def test_track_text_carries_labels(tmp_path, clip, tiny_model_files, tiny_owlv2_dir, fmt):
    out = tmp_path / "out"
    code = main(["track", str(clip), "--text", "cat. red car.", "--detector", str(tiny_owlv2_dir), "--box-threshold", "0.3",
                 "--detect-every", "2", "--format", fmt, "--output-dir", str(out), *tiny_model_files.cli_args()])
    assert code == 0
    objects = read_object_labels(out / "objects.json")
    assert objects and {o.label for o in objects.values()} <= set(PHRASES)
    assert {o.first_frame for o in objects.values()} <= {0, 2, 4}
    assert min(o.first_frame for o in objects.values()) == 0
    if fmt == "png":
        assert sorted(int(p.name) for p in out.iterdir() if p.is_dir()) == sorted(objects)
        for obj_id, o in objects.items():
            frames = sorted(int(p.stem) for p in (out / f"{obj_id:03d}").glob("*.png"))
            assert frames == list(range(o.first_frame, 5))  # tracked from the frame it was found on
    elif fmt == "mp4":
        import av

        with av.open(str(out / "overlay.mp4")) as container:
            assert sum(1 for _ in container.decode(video=0)) == 5  # objects from frame 0: every frame written
    else:
        records = read_coco_rle(out / "masks.rle.jsonl")
        assert {r["obj_id"] for r in records} == set(objects)
        assert all(r["label"] == objects[r["obj_id"]].label for r in records)
        assert min(r["frame_idx"] for r in records if r["obj_id"] == max(objects)) == objects[max(objects)].first_frame


def test_track_text_stream_with_dropping(tmp_path, clip, tiny_model_files, tiny_grounding_dino_dir):
    out = tmp_path / "out"
    code = main(["track", str(clip), "--text", "cat", "--detector", str(tiny_grounding_dino_dir), "--box-threshold", "0.3",
                 "--stream", "--detect-every", "1", "--drop-after", "1", "--match-iou", "1", "--max-objects", "3",
                 "--format", "rle", "--output-dir", str(out), *tiny_model_files.cli_args()])
    assert code == 0
    objects = read_object_labels(out / "objects.json")
    records = read_coco_rle(out / "masks.rle.jsonl")
    assert objects and all(o.label == "cat" for o in objects.values())
    # --match-iou 1: no found mask equals a tracked one, so each object is dropped on the next detection frame
    assert all(o.dropped_frame == o.first_frame + 1 for o in objects.values() if o.first_frame < 4)
    for obj_id, o in objects.items():
        frames = sorted(r["frame_idx"] for r in records if r["obj_id"] == obj_id)
        end = o.dropped_frame if o.dropped_frame is not None else 5
        assert frames == list(range(o.first_frame, end))  # written from its first frame until it was dropped


def test_track_text_bad_combinations(tmp_path, clip, tiny_model_files, capsys):
    base = ["track", str(clip), "--output-dir", str(tmp_path / "o"), *tiny_model_files.cli_args(), "--text", "cat"]
    assert main([*base, "--everything"]) == 2
    assert "give one of them" in capsys.readouterr().err
    assert main([*base, "--point", "0:10,10"]) == 2
    assert "--text finds the objects itself" in capsys.readouterr().err
    assert main([*base, "--drop-after", "3"]) == 2
    assert "--drop-after needs --detect-every" in capsys.readouterr().err
    no_text = [a for a in base if a not in ("--text", "cat")]
    assert main([*no_text, "--point", "0:10,10", "--detector", "owlv2", "--box-threshold", "0.2"]) == 2
    assert "--detector, --box-threshold only apply to text prompts" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_without_transformers_the_error_says_what_to_install(tmp_path, photo, tiny_model_files, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "transformers", None)  # as if it were not installed
    code = main(["segment", str(photo), "--text", "cat", "--detector", "owlv2", "--out", str(tmp_path / "o"), *tiny_model_files.cli_args()])
    assert code == 1
    assert "pip install 'samstream[text]'" in capsys.readouterr().err
