"""Pure helpers of the automatic mask generator: point grids, crops, scores, boxes, small regions.

Every function here is stateless and works on whole batches: boxes are [N, 4] XYXY in
pixels unless a name says XYWH, masks are [N, H, W] bool, logits [N, H, W] float.
Run-length encoding lives in :mod:`samstream.io.rle`, connected components in
:func:`samstream.image.postprocess.connected_components`.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from .postprocess import connected_components

__all__ = [
    "build_point_grid",
    "build_layer_point_grids",
    "generate_crop_boxes",
    "batch_iterator",
    "stability_score",
    "masks_to_boxes_xyxy",
    "box_xyxy_to_xywh",
    "is_box_near_crop_edge",
    "uncrop_boxes_xyxy",
    "uncrop_points",
    "uncrop_masks",
    "remove_small_regions",
]

Box = Sequence[int]  # x0, y0, x1, y1 in pixels


# --------------------------------------------------------------------------- point grids


def build_point_grid(n_per_side: int) -> np.ndarray:
    """Cell centres of an ``n_per_side`` x ``n_per_side`` grid over the unit square.

    Returns float64 [n_per_side**2, 2] as (x, y) in [0, 1]; x varies fastest (row by row).
    """
    if n_per_side < 1:
        raise ValueError(f"n_per_side must be >= 1, got {n_per_side}")
    half_cell = 1.0 / (2 * n_per_side)
    ticks = np.linspace(half_cell, 1.0 - half_cell, n_per_side)
    xs, ys = np.meshgrid(ticks, ticks, indexing="xy")  # each [n, n]; xs varies along columns
    return np.stack([xs.ravel(), ys.ravel()], axis=-1)


def build_layer_point_grids(*, n_per_side: int, n_layers: int, scale_per_layer: int) -> list[np.ndarray]:
    """One normalized grid per crop layer (layer 0 = the whole image, then ``n_layers``
    layers of crops); layer i has ``int(n_per_side / scale_per_layer**i)`` points per side."""
    grids = []
    for layer in range(n_layers + 1):
        grids.append(build_point_grid(int(n_per_side / (scale_per_layer**layer))))
    return grids


# --------------------------------------------------------------------------- crops


def generate_crop_boxes(
    image_hw: tuple[int, int], *, n_layers: int, overlap_ratio: float
) -> tuple[list[list[int]], list[int]]:
    """Crop boxes of every layer, XYXY in pixels, with the layer of each.

    Layer 0 is the whole image; layer i >= 1 tiles the image with (2**i) x (2**i)
    overlapping crops, the overlap being ``overlap_ratio`` of the short side scaled
    by 2 / 2**i. Crops of one layer are listed column by column (x outer, y inner).
    """
    height, width = image_hw
    boxes: list[list[int]] = [[0, 0, width, height]]
    layers: list[int] = [0]
    short_side = min(height, width)
    for layer in range(1, n_layers + 1):
        per_side = 2**layer
        overlap = int(overlap_ratio * short_side * (2 / per_side))
        crop_w = int(math.ceil((overlap * (per_side - 1) + width) / per_side))
        crop_h = int(math.ceil((overlap * (per_side - 1) + height) / per_side))
        starts_x = [int((crop_w - overlap) * i) for i in range(per_side)]
        starts_y = [int((crop_h - overlap) * i) for i in range(per_side)]
        for x0 in starts_x:
            for y0 in starts_y:
                boxes.append([x0, y0, min(x0 + crop_w, width), min(y0 + crop_h, height)])
                layers.append(layer)
    return boxes, layers


def batch_iterator(batch_size: int, *arrays: Any) -> Iterator[list[Any]]:
    """Yield aligned slices ``[a[i:i+batch_size] for a in arrays]`` until all are consumed."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not arrays:
        raise ValueError("batch_iterator needs at least one array")
    length = len(arrays[0])
    if any(len(a) != length for a in arrays):
        raise ValueError(f"batch_iterator got arrays of different lengths: {[len(a) for a in arrays]}")
    for start in range(0, length, batch_size):
        yield [a[start : start + batch_size] for a in arrays]


# --------------------------------------------------------------------------- scores and boxes


def _count_above(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    # Per-row counts in int16, then per-mask totals in int32: exact while a row is
    # shorter than 32768 pixels, and the same arithmetic as the reference (which
    # overflows past that width in the same way). Also the fastest reduction on CPU.
    return (logits > threshold).sum(-1, dtype=torch.int16).sum(-1, dtype=torch.int32)


def stability_score(logits: torch.Tensor, *, mask_threshold: float, offset: float) -> torch.Tensor:
    """IoU between the masks cut at ``mask_threshold + offset`` and ``mask_threshold - offset``.

    logits [..., H, W] -> float32 [...]. The high cut is inside the low one, so the
    IoU is a ratio of pixel counts (NaN where the low cut is empty, as in the reference).
    """
    high = _count_above(logits, mask_threshold + offset)
    low = _count_above(logits, mask_threshold - offset)
    return high / low


def masks_to_boxes_xyxy(masks: torch.Tensor) -> torch.Tensor:
    """Tight boxes around bool masks [..., H, W] -> int64 [..., 4] as (x0, y0, x1, y1),
    inclusive pixel indices; [0, 0, 0, 0] for an empty mask."""
    if masks.dim() < 2:
        raise ValueError(f"masks must have shape [..., H, W], got {tuple(masks.shape)}")
    lead = masks.shape[:-2]
    height, width = masks.shape[-2:]
    if masks.numel() == 0:
        return torch.zeros(*lead, 4, dtype=torch.int64, device=masks.device)
    flat = masks.reshape(-1, height, width)
    rows = flat.amax(dim=-1).to(torch.uint8)  # [N, H]: row has foreground
    cols = flat.amax(dim=-2).to(torch.uint8)  # [N, W]: column has foreground
    # argmax returns the first maximal index: first foreground row/column from each side
    top = rows.argmax(dim=-1)
    bottom = (height - 1) - rows.flip(-1).argmax(dim=-1)
    left = cols.argmax(dim=-1)
    right = (width - 1) - cols.flip(-1).argmax(dim=-1)
    boxes = torch.stack([left, top, right, bottom], dim=-1)  # [N, 4]
    boxes = boxes * rows.amax(dim=-1, keepdim=True).to(torch.int64)  # zero the empty masks
    return boxes.reshape(*lead, 4)


def box_xyxy_to_xywh(boxes: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """[..., 4] (x0, y0, x1, y1) -> (x0, y0, x1 - x0, y1 - y0); a new array/tensor."""
    out = boxes.clone() if isinstance(boxes, torch.Tensor) else np.array(boxes, copy=True)
    out[..., 2] = out[..., 2] - out[..., 0]
    out[..., 3] = out[..., 3] - out[..., 1]
    return out


def uncrop_boxes_xyxy(boxes: torch.Tensor, crop_box: Box) -> torch.Tensor:
    """Boxes [..., 4] in a crop's frame -> the image's frame."""
    x0, y0 = int(crop_box[0]), int(crop_box[1])
    return boxes + torch.tensor([x0, y0, x0, y0], device=boxes.device, dtype=boxes.dtype)


def uncrop_points(points: torch.Tensor, crop_box: Box) -> torch.Tensor:
    """Points [..., 2] (x, y) in a crop's frame -> the image's frame."""
    x0, y0 = int(crop_box[0]), int(crop_box[1])
    return points + torch.tensor([x0, y0], device=points.device, dtype=points.dtype)


def uncrop_masks(masks: torch.Tensor, crop_box: Box, image_hw: tuple[int, int]) -> torch.Tensor:
    """Masks [..., h, w] of a crop -> [..., H, W] of the image, zero outside the crop."""
    x0, y0, x1, y1 = (int(v) for v in crop_box)
    height, width = image_hw
    if (x0, y0, x1, y1) == (0, 0, width, height):
        return masks
    pad = (x0, width - x1, y0, height - y1)  # left, right, top, bottom
    return torch.nn.functional.pad(masks, pad, value=0)


def is_box_near_crop_edge(
    boxes: torch.Tensor, *, crop_box: Box, image_box: Box, atol: float = 20.0
) -> torch.Tensor:
    """For boxes [N, 4] in the crop's frame: True where a side lies within ``atol`` pixels
    of the crop's border without also lying that close to the image's border -> bool [N]."""
    crop = torch.as_tensor(crop_box, dtype=torch.float32, device=boxes.device)
    image = torch.as_tensor(image_box, dtype=torch.float32, device=boxes.device)
    in_image = uncrop_boxes_xyxy(boxes, crop_box).float()
    near_crop = (in_image - crop).abs() <= atol
    near_image = (in_image - image).abs() <= atol
    return (near_crop & ~near_image).any(dim=-1)


# --------------------------------------------------------------------------- small regions


def remove_small_regions(mask: np.ndarray, *, area_thresh: float, mode: str) -> tuple[np.ndarray, bool]:
    """Fill small holes (``mode="holes"``) or drop small islands (``mode="islands"``) of a bool [H, W].

    A region is small when its 8-connected area is below ``area_thresh``. When every
    island is small, the largest one is kept. Returns the new mask and whether it changed.
    """
    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands', got {mode!r}")
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must have shape [H, W], got {mask.shape}")
    fill_holes = mode == "holes"
    labels, areas = connected_components(~mask if fill_holes else mask)
    sizes = areas[1:]
    small = sizes < area_thresh
    if not small.any():
        return mask, False
    if fill_holes:
        keep = np.concatenate([[True], small])  # label 0 (the mask itself) plus the small holes
    else:
        keep = np.concatenate([[False], ~small])  # the large islands
        if not keep.any():
            keep[int(np.argmax(sizes)) + 1] = True
    return keep[labels], True
