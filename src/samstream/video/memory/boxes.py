"""Boxes of masks and their overlaps: what motion and distractor rules compare."""

from __future__ import annotations

import numpy as np
import torch


def mask_boxes(low_res: torch.Tensor) -> torch.Tensor:
    """Boxes [B, 4] (x0, y0, x1, y1) in [0, 1] of masks given as logits [B, 1, h, w] (> 0 is the
    mask); zeros for an empty mask."""
    fg = low_res[:, 0] > 0  # [B, h, w]
    b, h, w = fg.shape
    cols = fg.any(dim=1)  # [B, w]
    rows = fg.any(dim=2)  # [B, h]
    xs = torch.arange(w, device=fg.device)
    ys = torch.arange(h, device=fg.device)
    x0 = torch.where(cols, xs, w).amin(dim=1)
    x1 = torch.where(cols, xs + 1, 0).amax(dim=1)
    y0 = torch.where(rows, ys, h).amin(dim=1)
    y1 = torch.where(rows, ys + 1, 0).amax(dim=1)
    present = cols.any(dim=1)
    box = torch.stack([x0 / w, y0 / h, x1 / w, y1 / h], dim=1).float()
    return torch.where(present[:, None], box, torch.zeros_like(box))


def box_is_empty(box) -> bool:
    """Whether a box (x0, y0, x1, y1) covers no area (the box of an empty mask is all zeros)."""
    x0, y0, x1, y1 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    return x1 <= x0 or y1 <= y0


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU [N] of one box [4] with boxes [N, 4], all (x0, y0, x1, y1); 0 where either is empty."""
    box = np.asarray(box, dtype=np.float64).reshape(4)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0.0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0.0, None)
    inter = iw * ih
    area = max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0.0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0.0, None)
    union = area + areas - inter
    return np.where((union > 0) & (area > 0) & (areas > 0), inter / np.where(union > 0, union, 1.0), 0.0)
