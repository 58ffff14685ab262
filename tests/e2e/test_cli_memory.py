"""``--memory``, ``--object-memory`` and ``--lag`` on ``track`` and ``vos-infer``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tiny import moving_clip, write_jpeg_folder

from samstream.cli import main
from samstream.eval.synthetic import make_synthetic_dataset
from samstream.io.writers import read_coco_rle
from samstream.video.predictor import VideoPredictor, VideoPredictorOptions

pytestmark = pytest.mark.usefixtures("one_thread")

FRAMES, H, W = 8, 136, 320
PROMPTS = ["--point", "0:160,74.8", "--box", "0:16,27.2,112,122.4:2"]


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_jpeg_folder(tmp_path_factory.mktemp("video"), moving_clip(FRAMES, H, W))


def _track(video, out, files, *extra) -> int:
    return main(["track", str(video), "--output-dir", str(out), *files.cli_args(), *PROMPTS, "--format", "rle", *extra])


def _masks(out: Path) -> dict[tuple[int, int], np.ndarray]:
    from pycocotools import mask as mask_api

    records = read_coco_rle(out / "masks.rle.jsonl")
    return {
        (r["frame_idx"], r["obj_id"]): mask_api.decode({"size": r["segmentation"]["size"], "counts": r["segmentation"]["counts"].encode()}).astype(bool)
        for r in records
    }


def _library(files, video, memory, lag=0):
    from samstream.build import build_model

    model = build_model(files.config, files.checkpoint, for_video=True)
    predictor = VideoPredictor(model, VideoPredictorOptions(fill_hole_area=8, output_lag=lag), memory=memory)
    session = predictor.open_session(str(video))
    predictor.add_prompt(session, 0, 1, points=[[160, 74.8]], labels=[1])
    predictor.add_prompt(session, 0, 2, box=[16, 27.2, 112, 122.4])
    return {(f, obj): (logits[i, 0] > 0).numpy() for f, ids, logits in predictor.propagate(session, progress=False) for i, obj in enumerate(ids)}


@pytest.mark.parametrize(
    "flags, memory, lag",
    [
        (["--memory", "motion"], "motion", 0),
        (["--memory", "multipath", "--lag", "2"], "multipath", 2),
        (["--memory", "distractor", "--object-memory", "2=multipath"], {1: "distractor", 2: "multipath"}, 0),
        (["--memory", "multipath:pathways=2,certain_pathways=1,memory_iou=0.5"], "multipath:pathways=2,certain_pathways=1,memory_iou=0.5", 0),
    ],
)
def test_track_writes_what_the_strategy_computes(video, tiny_model_files, tmp_path, flags, memory, lag):
    out = tmp_path / "out"
    assert _track(video, out, tiny_model_files, *flags) == 0
    got = _masks(out)
    want = _library(tiny_model_files, video, memory, lag)
    assert sorted(got) == sorted(want) == [(f, o) for f in range(FRAMES) for o in (1, 2)]
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=str(key))


def test_track_stream_with_lag_writes_every_frame_once(video, tiny_model_files, tmp_path):
    out = tmp_path / "stream"
    assert _track(video, out, tiny_model_files, "--stream", "--memory", "multipath", "--lag", "3") == 0
    lines = [json.loads(l) for l in (out / "masks.rle.jsonl").read_text().splitlines()]
    assert [(r["frame_idx"], r["obj_id"]) for r in lines] == [(f, o) for f in range(FRAMES) for o in (1, 2)]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--memory", "nope"], "--memory nope: unknown memory strategy 'nope'"),
        (["--object-memory", "2=nope"], "--object-memory '2=nope': unknown memory strategy 'nope'"),
        (["--object-memory", "2"], "expected the form OBJ=NAME"),
        (["--object-memory", "x=motion"], "OBJ must be an integer"),
        (["--lag", "-1"], "--lag must be >= 0"),
        (["--memory", "multipath:pathways=2x"], "--memory multipath:pathways=2x: option pathways='2x': expected an integer"),
        (["--memory", "motion:speed=2"], "strategy 'motion' has no option speed (its options: stable_frames"),
        (["--memory", "multipath:pathways=0"], "pathways must be >= 1, got 0"),
        (["--object-memory", "2=motion:motion_weight=2"], "--object-memory '2=motion:motion_weight=2': motion_weight must be in [0, 1]"),
    ],
)
def test_bad_memory_flags(video, tiny_model_files, tmp_path, capsys, flags, message):
    assert _track(video, tmp_path / "o", tiny_model_files, *flags) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_vos_infer_with_a_strategy_and_lag(tmp_path, tiny_model_files, capsys):
    make_synthetic_dataset(tmp_path / "DAVIS", "davis")
    args = ["vos-infer", "--input", str(tmp_path / "DAVIS"), *tiny_model_files.cli_args()]
    assert main([*args, "--output-dir", str(tmp_path / "a"), "--memory", "multipath", "--lag", "2"]) == 0
    assert "2 video(s) done" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "a" / "video00").iterdir()) == [f"{t:05d}.png" for t in range(4)]
    assert main([*args, "--output-dir", str(tmp_path / "b"), "--lag", "-2"]) == 2
    assert "--lag must be >= 0" in capsys.readouterr().err


def test_everything_refuses_a_lag(video, tiny_model_files, tmp_path, capsys):
    args = ["track", str(video), "--output-dir", str(tmp_path / "o"), *tiny_model_files.cli_args(), "--everything"]
    assert main([*args, "--lag", "2"]) == 2
    assert "cannot be combined with --lag" in capsys.readouterr().err
