"""Mask post-processing that runs on CPU: filling small holes and removing small sprinkles.

The reference needs a CUDA extension for the connected components; here they come from
scipy with the same 8-connectivity.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def component_areas(mask: torch.Tensor) -> torch.Tensor:
    """For a bool mask [N, 1, H, W], the area of the 8-connected component of each
    foreground pixel (0 on background), as an int64 tensor of the same shape."""
    arr = mask.detach().cpu().numpy().astype(bool)
    out = np.zeros(arr.shape, dtype=np.int64)
    for i in range(arr.shape[0]):
        labels, count = ndimage.label(arr[i, 0], structure=_EIGHT_CONNECTED)
        if count == 0:
            continue
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
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
