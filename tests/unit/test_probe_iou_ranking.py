"""The IoU-ranking probe's summary, on hand-made predicted and actual IoUs."""

from __future__ import annotations


import numpy as np
import pytest


@pytest.fixture(scope="module")
def probe(import_benchmark):
    return import_benchmark("probe_iou_ranking")


def test_ranking_report_scores_the_pick_against_the_best(probe):
    predicted = np.array([[0.9, 0.5, 0.1], [0.2, 0.3, 0.8], [0.6, 0.7, 0.1]])
    actual = np.array([[0.8, 0.6, 0.2], [0.5, 0.4, 0.3], [0.5, 0.5, 0.9]])
    report = probe.ranking_report(predicted, actual)
    assert report["clicks"] == 3
    assert report["picked (highest predicted IoU)"] == pytest.approx((0.8 + 0.3 + 0.5) / 3, abs=1e-4)
    assert report["best of the candidates"] == pytest.approx((0.8 + 0.5 + 0.9) / 3, abs=1e-4)
    assert report["each candidate always"] == pytest.approx([0.6, 0.5, 0.4667], abs=1e-4)
    assert report["mean |predicted - actual| per candidate"] == pytest.approx([0.1667, 0.1333, 0.4667], abs=1e-4)
    assert report["picked is the best"] == pytest.approx(1 / 3, abs=1e-4)
    assert report["times each candidate is picked"] == [1, 1, 1]


def test_clicks_land_inside_the_mask(probe):
    mask = np.zeros((20, 30), bool)
    mask[5:14, 10:19] = True  # a 9x9 square: its centre is the one deepest pixel
    assert probe.click_for(mask, "deepest", np.random.default_rng(0)) == [14.0, 9.0]
    rng = np.random.default_rng(1)
    for _ in range(20):
        x, y = probe.click_for(mask, "random", rng)
        assert mask[int(y), int(x)]
