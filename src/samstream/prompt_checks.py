"""The checks of prompts, in numpy alone: points, labels, boxes and masks, and their assembly
into the prompt encoder's point inputs.

:mod:`samstream.prompts` (the predictors, the tracker, the command line) and the ONNX runtime
(:mod:`samstream.onnx`, which runs without torch) share them, so every entry point refuses the
same input with the same message. Coordinates are in ``"pixels"`` of the image or frame, or
``"normalized"`` to [0, 1].
"""

from __future__ import annotations

import sys
from typing import Literal

import numpy as np

# Point labels of the prompt encoder.
LABEL_PADDING = -1  # "not a point": pads prompts without a box
LABEL_NEGATIVE = 0
LABEL_POSITIVE = 1
LABEL_BOX_TOP_LEFT = 2
LABEL_BOX_BOTTOM_RIGHT = 3

CoordSpace = Literal["pixels", "normalized"]
COORD_SPACES: tuple[str, ...] = ("pixels", "normalized")

CLICK_LABELS = frozenset({LABEL_NEGATIVE, LABEL_POSITIVE})
ENCODER_LABELS = CLICK_LABELS | {LABEL_PADDING, LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT}


def check_coord_space(coords: str) -> CoordSpace:
    if coords not in COORD_SPACES:
        raise ValueError(f"coords must be 'pixels' or 'normalized', got {coords!r}")
    return coords  # type: ignore[return-value]


def as_float_array(value, name: str) -> np.ndarray:
    """A numeric, finite float64 array from a list, array or tensor (ValueError naming ``name``)."""
    value = _tensor_to_numpy(value)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric, got {type(value).__name__}") from None
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def check_points(
    points, labels, *, names: tuple[str, str] = ("points", "labels"), encoder_labels: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Clicks as (coords [B, N, 2] float64, labels [B, N] int32); [N, 2] and [N] get B = 1.

    Labels are 1 (foreground) or 0 (background); with ``encoder_labels`` the prompt encoder's
    own labels (-1 padding, 2 and 3 box corners) are accepted too.
    """
    p_name, l_name = names
    if (points is None) != (labels is None):
        raise ValueError(f"{p_name} and {l_name} must be given together")
    pts = as_float_array(points, p_name)
    if pts.ndim == 2:
        pts = pts[None]
    if pts.ndim != 3 or pts.shape[-1] != 2:
        raise ValueError(f"{p_name} must have shape (N, 2) or (B, N, 2) as (x, y), got {np.shape(points)}")
    lab = as_float_array(labels, l_name)
    if lab.ndim == 1:
        lab = lab[None]
    if lab.shape != pts.shape[:2]:
        raise ValueError(f"{l_name} shape {np.shape(labels)} does not match {p_name} shape {np.shape(points)}")
    allowed = ENCODER_LABELS if encoder_labels else CLICK_LABELS
    if (lab != np.round(lab)).any() or not set(np.unique(lab).astype(int).tolist()) <= allowed:
        raise ValueError(f"{l_name} must be 1 (foreground) or 0 (background), got {np.unique(lab).tolist()}")
    return pts, lab.astype(np.int32)


def check_boxes(box, *, name: str = "box") -> np.ndarray:
    """Boxes [B, 4] float64 as (x0, y0, x1, y1); a single box [4] gets B = 1."""
    arr = as_float_array(box, name)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (4,) or (B, 4) as x0, y0, x1, y1; got {np.shape(box)}")
    if (arr[:, 2] < arr[:, 0]).any() or (arr[:, 3] < arr[:, 1]).any():
        raise ValueError(f"{name} must have x1 >= x0 and y1 >= y0 (x0, y0, x1, y1), got {arr.tolist()}")
    return arr


def check_boxes_overlap_image(boxes: np.ndarray, width: float, height: float, *, name: str = "box") -> None:
    """Refuse boxes [B, 4] (in the image's coordinates) that do not overlap the image at all."""
    outside = (boxes[:, 2] < 0) | (boxes[:, 3] < 0) | (boxes[:, 0] > width) | (boxes[:, 1] > height)
    if outside.any():
        bad = boxes[outside][0].tolist()
        raise ValueError(f"{name} {_fmt(bad)} lies entirely outside the {width:g}x{height:g} image")


def check_boxes_in_image(boxes: np.ndarray, width: float, height: float, *, name: str = "box") -> None:
    """Refuse boxes [B, 4] in pixels that miss the image, or reach more than one image size
    beyond its edges (such coordinates are a typo or an overflow, and the model's position
    encoding of them is meaningless)."""
    check_boxes_overlap_image(boxes, width, height, name=name)
    xs, ys = boxes[:, 0::2], boxes[:, 1::2]
    far = ((xs < -width) | (xs > 2 * width)).any(axis=1) | ((ys < -height) | (ys > 2 * height)).any(axis=1)
    if far.any():
        bad = boxes[far][0].tolist()
        raise ValueError(
            f"{name} {_fmt(bad)} reaches more than one image size beyond the {width:g}x{height:g} image; "
            f"clip it to the image (0..{width:g}, 0..{height:g})"
        )


def check_points_in_image(points: np.ndarray, width: float, height: float, *, name: str = "point") -> None:
    """Refuse clicks [..., 2] in pixels outside the image (0 <= x < width, 0 <= y < height)."""
    flat = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    inside = (flat[:, 0] >= 0) & (flat[:, 0] < width) & (flat[:, 1] >= 0) & (flat[:, 1] < height)
    if not inside.all():
        x, y = flat[~inside][0].tolist()
        raise ValueError(f"{name} {x:g},{y:g} is outside the {width:g}x{height:g} image")


def _fmt(values) -> str:
    return ",".join(f"{v:g}" for v in values)


def check_binary_mask(mask, *, name: str = "mask", shape: tuple[int, int] | None = None) -> np.ndarray:
    """A 2-D mask [H, W] that is boolean or holds only 0 and 1, as bool (optionally of ``shape``)."""
    mask = _tensor_to_numpy(mask)
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (H, W), got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.number) or not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must be boolean or contain only 0 and 1")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} is {arr.shape[1]}x{arr.shape[0]} (WxH) but the frame is {shape[1]}x{shape[0]}")
    return arr.astype(bool)


def check_low_res_logits(mask, side: int, *, name: str = "mask_input") -> np.ndarray:
    """Low-res mask logits [B, 1, side, side] from [side, side], [1, side, side] or that shape."""
    m = as_float_array(mask, name)
    if m.ndim == 2:
        m = m[None]
    if m.ndim == 3:
        m = m[None]
    if m.ndim != 4 or m.shape[1] != 1 or m.shape[2:] != (side, side):
        raise ValueError(
            f"{name} must be low-res logits of shape (1, {side}, {side}) or (B, 1, {side}, {side}), got {np.shape(mask)}"
        )
    return m


def check_index(value, name: str) -> int:
    """A non-boolean integer (Python or NumPy) as int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return int(value)


def per_image_prompts(num_images: int, point_coords_batch, point_labels_batch, box_batch, mask_input_batch) -> list[tuple]:
    """The reference's ``predict_batch`` prompts split per image: ``num_images`` tuples of
    (points, labels, box, mask_input), None where a batch is not given.

    Raises:
        ValueError: a batch whose length is not the number of images set (naming it).
    """
    batches = {
        "point_coords_batch": point_coords_batch,
        "point_labels_batch": point_labels_batch,
        "box_batch": box_batch,
        "mask_input_batch": mask_input_batch,
    }
    for name, value in batches.items():
        if value is not None and len(value) != num_images:
            raise ValueError(f"{name} has {len(value)} entries for {num_images} images")
    return [tuple(None if value is None else value[i] for value in batches.values()) for i in range(num_images)]


def prompt_point_arrays(
    points,
    labels,
    box,
    *,
    orig_hw: tuple[int, int],
    image_size: int,
    coords: CoordSpace,
    names: tuple[str, str, str] = ("points", "labels", "box"),
    encoder_labels: bool = False,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Clicks and/or boxes -> (coords [B, N, 2] float32 in model-input pixels, labels [B, N]
    int32), box corners first; None when neither is given. One box per prompt set; a single box
    or a single set of clicks is broadcast against the other."""
    check_coord_space(coords)
    p_name, l_name, b_name = names
    xy = lab = None
    if points is not None or labels is not None:
        xy, lab = check_points(points, labels, names=(p_name, l_name), encoder_labels=encoder_labels)
        xy = xy.astype(np.float32)
    if box is not None:
        corners = check_boxes(box, name=b_name).astype(np.float32).reshape(-1, 2, 2)
        corner_labels = np.tile(np.array([[LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT]], dtype=np.int32), (corners.shape[0], 1))
        if xy is not None:
            if corners.shape[0] != xy.shape[0]:
                if corners.shape[0] == 1:
                    corners = np.repeat(corners, xy.shape[0], axis=0)
                    corner_labels = np.repeat(corner_labels, xy.shape[0], axis=0)
                elif xy.shape[0] == 1:
                    xy, lab = np.repeat(xy, corners.shape[0], axis=0), np.repeat(lab, corners.shape[0], axis=0)
                else:
                    raise ValueError(f"{corners.shape[0]} boxes for {xy.shape[0]} point sets")
            xy = np.concatenate([corners, xy], axis=1)
            lab = np.concatenate([corner_labels, lab], axis=1)
        else:
            xy, lab = corners, corner_labels
    if xy is None:
        return None
    if coords == "pixels":
        h, w = orig_hw
        xy = xy / np.array([w, h], dtype=np.float32)
    return (xy * np.float32(image_size)).astype(np.float32), lab


def _tensor_to_numpy(value):
    """A torch tensor as a numpy array (anything else as it is), without importing torch."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value
