"""Mask post-processing that runs on CPU: connected components, filling small holes and
removing small sprinkles.

The reference needs a CUDA extension (predictors) or OpenCV (automatic masks) for the
connected components; here every caller goes through :func:`connected_components`:
OpenCV when it is installed, else scipy, both with 8-connectivity.
"""

from __future__ import annotations

import numpy as np
import torch

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def connected_components(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected components of a bool mask.

    Args:
        binary: bool ``[H, W]``.

    Returns:
        ``labels`` int ``[H, W]`` (0 where ``binary`` is off, components numbered 1..) and
        ``areas`` int ``[count + 1]``, the pixel count of each label (``areas[0]`` counts the
        off pixels).  The components are the same for both back ends, their numbering is
        not: OpenCV (what the reference uses) scans in blocks, scipy row by row.
    """
    binary = np.asarray(binary, dtype=bool)
    if binary.ndim != 2:
        raise ValueError(f"binary must have shape [H, W], got {binary.shape}")
    try:
        import cv2
    except ImportError:
        from scipy import ndimage

        labels, count = ndimage.label(binary, structure=_EIGHT_CONNECTED)
        return labels, np.bincount(labels.ravel(), minlength=count + 1)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    return labels, stats[:, cv2.CC_STAT_AREA]


def component_areas(mask: torch.Tensor) -> torch.Tensor:
    """For a bool mask [N, 1, H, W], the area of the 8-connected component of each
    foreground pixel (0 on background), as an int64 tensor of the same shape."""
    arr = mask.detach().cpu().numpy().astype(bool)
    out = np.zeros(arr.shape, dtype=np.int64)
    for i in range(arr.shape[0]):
        labels, areas = connected_components(arr[i, 0])
        sizes = areas.astype(np.int64)
        sizes[0] = 0  # background pixels get 0
        out[i, 0] = sizes[labels]
    return torch.from_numpy(out).to(mask.device)


def fill_holes(logits: torch.Tensor, max_area: float, threshold: float = 0.0, fill_value: float | None = None) -> torch.Tensor:
    """Background components (logit <= threshold) with area <= max_area become foreground.

    logits [N, 1, H, W]; holes get ``fill_value`` (default threshold + 10, as the image predictor does).
    """
    if max_area <= 0:
        return logits
    areas = component_areas(logits <= threshold)
    hole = (areas > 0) & (areas <= max_area)
    value = threshold + 10.0 if fill_value is None else fill_value
    return torch.where(hole, torch.as_tensor(value, dtype=logits.dtype, device=logits.device), logits)


def remove_sprinkles(logits: torch.Tensor, max_area: float, threshold: float = 0.0) -> torch.Tensor:
    """Foreground components (logit > threshold) with area <= max_area become background (threshold - 10)."""
    if max_area <= 0:
        return logits
    areas = component_areas(logits > threshold)
    small = (areas > 0) & (areas <= max_area)
    return torch.where(small, torch.as_tensor(threshold - 10.0, dtype=logits.dtype, device=logits.device), logits)
