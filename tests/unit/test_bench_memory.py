"""The memory benchmark's hard categories, derived from the generator's ground truth."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from samstream.training.synthetic import SyntheticClip

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_memory.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_memory", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _clip(masks: np.ndarray, full_areas: np.ndarray) -> SyntheticClip:
    t, n = masks.shape[:2]
    visible = masks.reshape(t, n, -1).any(axis=2)
    return SyntheticClip(np.zeros((t, 4, 4, 3), np.uint8), masks, visible, tuple(range(1, n + 1)), 0, full_areas)


def test_after_occlusion(bench):
    t = 20
    masks = np.zeros((t, 1, 4, 4), dtype=bool)
    masks[:, 0, :2, :2] = True  # 4 pixels visible ...
    masks[3:7, 0] = False  # ... hidden on frames 3..6 (4 frames)
    masks[8, 0, 0, 0] = False  # frame 8: 3 of 4 visible, not occluded
    masks[10, 0] = False  # frame 10: a 1-frame occlusion: too short
    full = np.full((t, 1), 4)
    got = bench.after_occlusion(_clip(masks, full))[:, 0]
    want = np.zeros(t, dtype=bool)
    want[7:17] = True  # the 10 frames after frame 6 ...
    want[10] = False  # ... where the object is visible
    np.testing.assert_array_equal(got, want)
    # out of the frame (full area 0) is not an occlusion
    assert not bench.after_occlusion(_clip(masks, np.where(masks.reshape(t, 1, -1).any(2), 4, 0))).any()


def test_distractor_nearby(bench):
    t = np.zeros((3, 1, 40, 40), dtype=bool)
    t[:, 0, 10:20, 10:20] = True  # a 10x10 object: grown by 5 px it spans 5..25
    d = np.zeros((3, 1, 40, 40), dtype=bool)
    d[0, 0, 10:20, 24:30] = True  # starts at x=24: touches
    d[1, 0, 10:20, 26:30] = True  # starts at x=26: does not
    got = bench.distractor_nearby(t, d)[:, 0]
    np.testing.assert_array_equal(got, [True, False, False])  # frame 2: no look-alike in view
    assert not bench.distractor_nearby(t, d[:, :0]).any()


def test_videos_and_scores_on_the_tiny_model(bench, tiny_model_files):
    from samstream.build import build_model

    videos = bench.make_videos(1, 6, 64, ["reentry", "crossing"])
    assert [v.scenario for v in videos] == ["crossing", "reentry"]
    for v in videos:
        assert set(v.categories) == set(bench.CATEGORIES)
        assert all(c.shape == v.clip.visible.shape for c in v.categories.values())
    assert videos[1].categories["after re-entry"].any()  # in that scenario every object leaves and comes back
    model = build_model(tiny_model_files.config, tiny_model_files.checkpoint, for_video=True, apply_postprocessing=False)
    row = bench.evaluate(model, "multipath", videos)
    assert 0 <= row["J&F"] <= 100 and row["seconds per frame"] > 0
    assert row["objects"] == sum(int(v.clip.masks[0].reshape(v.clip.masks.shape[1], -1).any(1).sum()) for v in videos)
    both = bench.evaluate_all(model, ["default", "multipath"], videos)  # interleaved: same scores
    assert list(both) == ["default", "multipath"]
    for key in ("J&F", *[f"J&F {c}" for c in bench.CATEGORIES], "objects"):
        assert both["multipath"][key] == row[key]
    assert both["default"]["J&F"] == bench.evaluate(model, "default", videos)["J&F"]


def test_strategies_with_options_split(bench):
    assert bench.split_strategies("default,multipath:pathways=2,memory_iou=0.4,motion,") == [
        "default", "multipath:pathways=2,memory_iou=0.4", "motion",
    ]
    assert bench.split_strategies(",".join(bench.STRATEGIES)) == list(bench.STRATEGIES)
