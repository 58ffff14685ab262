"""The fit probe's resolution bound and area bands, on hand-made masks and IoUs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest


@pytest.fixture(scope="module")
def probe(import_benchmark):
    return import_benchmark("probe_fit")


def _clip(*masks: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(masks=np.stack(masks)[None])  # [1, N, H, W]


def test_resolution_bound_is_one_for_aligned_blocks_and_falls_for_thin_shapes(probe):
    block = np.zeros((64, 64), bool)
    block[8:40, 16:48] = True  # edges on the 4-pixel grid: kept but for its 4 corner pixels
    assert probe.resolution_bound([_clip(block)]) == pytest.approx(1 - 4 / (32 * 32))
    line = np.zeros((64, 64), bool)
    line[30, 4:60] = True  # one pixel thick: averaged to 0.25, lost at the 0.5 cut
    assert probe.resolution_bound([_clip(line)]) == pytest.approx(0.0)
    empty = np.zeros((64, 64), bool)  # objects absent from the image are not counted
    assert probe.resolution_bound([_clip(block, empty, line)]) == pytest.approx((1 - 4 / (32 * 32)) / 2)


def test_by_area_bands_the_objects(probe):
    ious = np.array([0.2, 0.4, 0.9, 0.7])
    areas = np.array([0.005, 0.005, 0.05, 0.5])
    assert probe.by_area(ious, areas) == {"0-0.01": [0.3, 2], "0.03-0.1": [0.9, 1], "0.1-1.01": [0.7, 1]}
