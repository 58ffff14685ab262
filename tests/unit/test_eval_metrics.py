"""J, F and decay: cases worked out by hand, and a loop-based reference on random masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import binary_dilation
from skimage.morphology import disk

from samstream.eval.metrics import (
    boundaries,
    boundary_f,
    boundary_radius,
    decay_bin_edges,
    jaccard,
    sequence_stats,
)


def square(size: int, top: int, left: int, side: int) -> np.ndarray:
    m = np.zeros((size, size), dtype=bool)
    m[top : top + side, left : left + side] = True
    return m


def test_jaccard_of_two_squares_offset_by_two_pixels():
    # 10x10 squares, one moved 2 px right: overlap 10x8 = 80, union 100 + 100 - 80 = 120
    a = square(64, 10, 10, 10)
    b = square(64, 10, 12, 10)
    assert jaccard(a, b) == pytest.approx(80 / 120)


def test_jaccard_both_empty_is_one_and_one_empty_is_zero():
    empty = np.zeros((8, 8), dtype=bool)
    assert jaccard(empty, empty) == 1.0
    assert jaccard(square(8, 1, 1, 3), empty) == 0.0


def test_boundary_of_a_square_has_four_times_its_side():
    # right column and bottom row inside the square (10 + 10 - 1 shared corner), left column
    # and top row just outside it (10 + 10), and the pixel diagonally above-left (1): 40
    b = boundaries(square(64, 10, 10, 10))
    assert b.sum() == 40
    assert b[9, 9] and b[10, 9] and b[9, 10] and b[19, 19] and not b[20, 20]


def test_boundary_radius_is_ceil_of_a_fraction_of_the_diagonal():
    assert boundary_radius(64, 64) == 1  # 0.008 * 90.5 = 0.72
    assert boundary_radius(480, 854) == 8  # 0.008 * 979.6 = 7.84
    assert boundary_radius(10, 10, bound_th=3) == 3


def test_f_of_a_square_and_the_same_square_with_a_far_blob():
    # prediction = the square (40 boundary px, all matched) + a 4x4 blob far away
    # (16 boundary px, none matched): precision 40/56, recall 1, F = 2*40/(40+56) = 5/6
    gt = square(64, 10, 10, 10)
    pred = gt | square(64, 40, 40, 4)
    assert boundary_f(gt, pred) == pytest.approx(5 / 6)
    assert boundary_f(pred, gt) == pytest.approx(5 / 6)  # symmetric


def test_f_matches_within_the_radius_only():
    # 64x64: radius 1. Shifted by 1 px every boundary pixel has a partner 1 px away: F = 1;
    # shifted by 3 px, the left/right edges are 3 px apart and unmatched, top/bottom rows keep
    # 10 - 3 + 1 (within 1 px) overlapping positions.
    gt = square(64, 10, 10, 10)
    assert boundary_f(gt, square(64, 10, 11, 10)) == pytest.approx(1.0)
    assert boundary_f(gt, square(64, 10, 13, 10)) < 0.6


def test_f_empty_cases():
    empty = np.zeros((16, 16), dtype=bool)
    assert boundary_f(empty, empty) == 1.0
    assert boundary_f(square(16, 2, 2, 5), empty) == 0.0
    assert boundary_f(empty, square(16, 2, 2, 5)) == 0.0


def test_metrics_keep_leading_axes():
    rng = np.random.default_rng(0)
    gt = rng.random((3, 2, 20, 24)) > 0.5
    pred = rng.random((3, 2, 20, 24)) > 0.5
    assert jaccard(gt, pred).shape == (3, 2)
    assert boundary_f(gt, pred).shape == (3, 2)
    with pytest.raises(ValueError, match="same shape"):
        jaccard(gt, pred[:1])


def test_decay_bins_and_stats_by_hand():
    # 9 frames: linspace(1, 9, 5) = 1, 3, 5, 7, 9 -> edges 0, 2, 4, 6, 8
    assert decay_bin_edges(9).tolist() == [0, 2, 4, 6, 8]
    values = np.arange(9) / 8  # first bin frames 0..2 (mean 1/8), last bin 6..8 (mean 7/8)
    stats = sequence_stats(values)
    assert stats.mean == pytest.approx(0.5)
    assert stats.decay == pytest.approx(1 / 8 - 7 / 8)
    assert stats.recall == pytest.approx(4 / 9)  # 5/8, 6/8, 7/8, 8/8 are above 0.5
    assert math.isnan(sequence_stats(np.array([])).mean)


# --------------------------------------------------------------------------- independent reference


def reference_boundary(mask: np.ndarray) -> np.ndarray:
    """Pixel by pixel: differs from the right, lower or lower-right neighbour inside the image."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    for y in range(h):
        for x in range(w):
            for dy, dx in ((0, 1), (1, 0), (1, 1)):
                yy, xx = y + dy, x + dx
                if yy < h and xx < w and mask[y, x] != mask[yy, xx]:
                    out[y, x] = True
    return out


def reference_f(gt: np.ndarray, pred: np.ndarray) -> float:
    """Dilate each boundary with a disk (scikit-image footprint) and count matches."""
    r = math.ceil(0.008 * math.hypot(*gt.shape))
    bg, bp = reference_boundary(gt), reference_boundary(pred)
    ng, np_ = int(bg.sum()), int(bp.sum())
    if ng == 0 and np_ == 0:
        return 1.0
    if ng == 0 or np_ == 0:
        return 0.0
    precision = (bp & binary_dilation(bg, structure=disk(r))).sum() / np_
    recall = (bg & binary_dilation(bp, structure=disk(r))).sum() / ng
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def reference_j(gt: np.ndarray, pred: np.ndarray) -> float:
    union = int((gt | pred).sum())
    return 1.0 if union == 0 else int((gt & pred).sum()) / union


@pytest.mark.parametrize("shape", [(40, 50), (150, 180)])  # radius 1 and radius 2
def test_vectorized_metrics_equal_a_loop_reference_on_random_masks(shape):
    rng = np.random.default_rng(3)
    frames = []
    for i in range(6):
        # blobby masks: smoothed noise thresholded, plus an empty and a full-frame case
        noise = rng.random(shape)
        smooth = binary_dilation(noise > 0.995, structure=disk(3 + i))
        frames.append(smooth)
    frames.append(np.zeros(shape, dtype=bool))
    gt = np.stack(frames)
    pred = np.stack([np.roll(f, (i % 3, -(i % 2)), axis=(0, 1)) ^ (rng.random(shape) > 0.999) for i, f in enumerate(frames)])
    pred[-1] = False  # both empty on the last frame
    j = jaccard(gt, pred)
    f = boundary_f(gt, pred)
    for t in range(len(frames)):
        assert j[t] == pytest.approx(reference_j(gt[t], pred[t]), abs=1e-12)
        assert f[t] == pytest.approx(reference_f(gt[t], pred[t]), abs=1e-12)
    assert f[-1] == 1.0
