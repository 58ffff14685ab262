"""One validator for prompts: points, labels, boxes and masks, for every entry point.

The image predictor, the video predictor, the streaming tracker and the command line all
check their prompts here, once, and get the same messages (the checks themselves, in numpy,
are :mod:`samstream.prompt_checks`, which the torch-free ONNX runtime shares); this module
adds the conversions to the model's tensors. Coordinates are always said to be in
``"pixels"`` of the image or frame, or ``"normalized"`` to [0, 1].
"""

from __future__ import annotations

import torch

from .prompt_checks import (
    COORD_SPACES,
    CLICK_LABELS,
    ENCODER_LABELS,
    LABEL_BOX_BOTTOM_RIGHT,
    LABEL_BOX_TOP_LEFT,
    LABEL_NEGATIVE,
    LABEL_PADDING,
    LABEL_POSITIVE,
    CoordSpace,
    as_float_array,
    check_binary_mask,
    check_boxes,
    check_boxes_in_image,
    check_boxes_overlap_image,
    check_coord_space,
    check_index,
    check_low_res_logits,
    check_points,
    check_points_in_image,
    per_image_prompts,
    prompt_point_arrays,
)

__all__ = [
    "COORD_SPACES",
    "CLICK_LABELS",
    "ENCODER_LABELS",
    "LABEL_BOX_BOTTOM_RIGHT",
    "LABEL_BOX_TOP_LEFT",
    "LABEL_NEGATIVE",
    "LABEL_PADDING",
    "LABEL_POSITIVE",
    "CoordSpace",
    "as_float_array",
    "check_binary_mask",
    "check_boxes",
    "check_boxes_in_image",
    "check_boxes_overlap_image",
    "check_coord_space",
    "check_index",
    "check_low_res_logits",
    "check_points",
    "check_points_in_image",
    "per_image_prompts",
    "prompt_point_arrays",
    "prompt_points",
    "to_model_coords",
]


def to_model_coords(xy: torch.Tensor, orig_hw: tuple[int, int], image_size: int, coords: CoordSpace) -> torch.Tensor:
    """Points [..., 2] (x, y) in the image's pixels or normalized to [0, 1] -> model-input pixels."""
    check_coord_space(coords)
    if not xy.is_floating_point():
        xy = xy.to(torch.float32)
    if coords == "pixels":
        h, w = orig_hw
        xy = xy / torch.tensor([w, h], dtype=torch.float32, device=xy.device)
    return xy * image_size


def prompt_points(
    points,
    labels,
    box,
    *,
    orig_hw: tuple[int, int],
    image_size: int,
    coords: CoordSpace,
    names: tuple[str, str, str] = ("points", "labels", "box"),
    encoder_labels: bool = False,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Clicks and/or boxes -> (coords [B, N, 2] float32 in model-input pixels, labels [B, N]
    int32), box corners first; None when neither is given. One box per prompt set; a single box
    or a single set of clicks is broadcast against the other (:func:`prompt_point_arrays`)."""
    arrays = prompt_point_arrays(
        points, labels, box, orig_hw=orig_hw, image_size=image_size, coords=coords, names=names,
        encoder_labels=encoder_labels,
    )
    if arrays is None:
        return None
    return torch.from_numpy(arrays[0]), torch.from_numpy(arrays[1])
