"""Region similarity J, boundary accuracy F and their per-sequence statistics.

Conventions of the DAVIS 2017 semi-supervised evaluation:

* J is intersection over union, 1 when both masks are empty;
* F is the F-measure of boundary pixels matched within ``r = ceil(0.008 * diagonal)``
  pixels, i.e. a boundary pixel of one mask is matched when a boundary pixel of the other
  lies in the disk ``dx**2 + dy**2 <= r**2`` around it (what a dilation with
  ``skimage.morphology.disk(r)`` tests); 1 when both boundaries are empty, 0 when only
  one is;
* a pixel is on a mask's boundary when it differs from its right, lower or lower-right
  neighbour (neighbours outside the image are not compared);
* per sequence: mean, recall (fraction of frames above 0.5) and decay (mean of the first
  of 4 frame bins minus mean of the last).

Everything works on stacks ``[..., H, W]`` of masks at once. Matching within the disk is
done with one k-d tree query per stack (``scipy.spatial.cKDTree``) over the boundary
pixels only, which gives exactly the disk-dilation result at a cost proportional to the
boundary length rather than to ``H * W * r**2``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.spatial import cKDTree

__all__ = [
    "BOUNDARY_THRESHOLD",
    "DECAY_BINS",
    "SequenceStats",
    "boundary_radius",
    "jaccard",
    "boundaries",
    "boundary_f",
    "decay_bin_edges",
    "sequence_stats",
]

BOUNDARY_THRESHOLD = 0.008  # fraction of the image diagonal
DECAY_BINS = 4


def _check_pair(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape:
        raise ValueError(f"gt and pred must have the same shape, got {gt.shape} and {pred.shape}")
    if gt.ndim < 2:
        raise ValueError(f"masks must be [..., H, W], got shape {gt.shape}")
    return gt, pred


def boundary_radius(height: int, width: int, bound_th: float = BOUNDARY_THRESHOLD) -> int:
    """Matching distance in pixels: ``bound_th`` itself when >= 1, else ``ceil(bound_th * diagonal)``."""
    if bound_th <= 0:
        raise ValueError(f"bound_th must be > 0, got {bound_th}")
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.hypot(height, width)))


def jaccard(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Intersection over union of masks ``[..., H, W]`` -> ``[...]`` float64 (1 where both are empty)."""
    gt, pred = _check_pair(gt, pred)
    inter = np.count_nonzero(gt & pred, axis=(-2, -1))
    union = np.count_nonzero(gt | pred, axis=(-2, -1))
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def boundaries(masks: np.ndarray) -> np.ndarray:
    """Boundary pixels of masks ``[..., H, W]`` bool -> ``[..., H, W]`` bool."""
    m = np.asarray(masks, dtype=bool)
    b = np.zeros_like(m)
    b[..., :, :-1] |= m[..., :, :-1] ^ m[..., :, 1:]  # right neighbour
    b[..., :-1, :] |= m[..., :-1, :] ^ m[..., 1:, :]  # lower neighbour
    b[..., :-1, :-1] |= m[..., :-1, :-1] ^ m[..., 1:, 1:]  # lower-right neighbour
    return b


def _matched_counts(source: np.ndarray, target: np.ndarray, radius: int) -> np.ndarray:
    """For stacks [N, H, W]: how many ``source`` pixels of each slice have a ``target`` pixel
    of the same slice within ``radius`` (Euclidean) -> [N] int."""
    n, h, w = source.shape
    counts = np.zeros(n, dtype=np.int64)
    src = np.nonzero(source)
    tgt = np.nonzero(target)
    if src[0].size == 0 or tgt[0].size == 0:
        return counts
    # slices far apart along a third axis, so no match crosses slices
    spacing = float(2 * radius + h + w + 2)
    tree = cKDTree(np.stack([tgt[0] * spacing, tgt[1], tgt[2]], axis=1).astype(np.float64))
    queries = np.stack([src[0] * spacing, src[1], src[2]], axis=1).astype(np.float64)
    # squared distances are integers: r + 0.5 / (2r + 1) separates r**2 from r**2 + 1
    bound = radius + 0.5 / (2 * radius + 1)
    dist, _ = tree.query(queries, k=1, distance_upper_bound=bound)
    hit = np.isfinite(dist)
    np.add.at(counts, src[0][hit], 1)
    return counts


def boundary_f(
    gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUNDARY_THRESHOLD, *, radius: int | None = None
) -> np.ndarray:
    """Boundary F-measure of masks ``[..., H, W]`` -> ``[...]`` float64.

    ``radius``: matching distance in pixels; default :func:`boundary_radius` of these masks'
    size (give it when the masks are a crop of larger images).
    """
    gt, pred = _check_pair(gt, pred)
    lead, (h, w) = gt.shape[:-2], gt.shape[-2:]
    if radius is None:
        radius = boundary_radius(h, w, bound_th)
    bg = boundaries(gt.reshape(-1, h, w))
    bp = boundaries(pred.reshape(-1, h, w))
    n_gt = np.count_nonzero(bg, axis=(1, 2))
    n_pred = np.count_nonzero(bp, axis=(1, 2))
    hit_pred = _matched_counts(bp, bg, radius)  # predicted boundary near the true one
    hit_gt = _matched_counts(bg, bp, radius)  # true boundary found by the prediction
    # an empty boundary has precision (or recall) 1; the other side then scores 0 by itself
    precision = np.where(n_pred > 0, hit_pred / np.maximum(n_pred, 1), 1.0)
    recall = np.where(n_gt > 0, hit_gt / np.maximum(n_gt, 1), 1.0)
    total = precision + recall
    f = np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1.0), 0.0)
    return f.reshape(lead)


class SequenceStats(NamedTuple):
    """Statistics of one per-frame score sequence (NaN when there are no frames)."""

    mean: float
    recall: float  # fraction of frames scoring above 0.5
    decay: float  # mean of the first of DECAY_BINS frame bins minus that of the last


def decay_bin_edges(num_frames: int, bins: int = DECAY_BINS) -> np.ndarray:
    """Bin boundaries (frame positions) of the DAVIS decay: bin i covers
    ``values[e[i] : e[i + 1] + 1]`` (neighbouring bins share their boundary frame)."""
    return (np.round(np.linspace(1, num_frames, bins + 1) + 1e-10) - 1).astype(np.int64)


def sequence_stats(values: np.ndarray, bins: int = DECAY_BINS) -> SequenceStats:
    """Mean, recall and decay of per-frame scores ``[T]``."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return SequenceStats(math.nan, math.nan, math.nan)
    edges = decay_bin_edges(v.size, bins)
    first = v[edges[0] : edges[1] + 1]
    last = v[edges[-2] : edges[-1] + 1]
    decay = float(first.mean() - last.mean()) if first.size and last.size else math.nan
    return SequenceStats(mean=float(v.mean()), recall=float(np.mean(v > 0.5)), decay=decay)
