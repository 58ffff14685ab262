"""Prompts for the ONNX runtime in numpy: the checks and conversions of :mod:`samstream.prompts`
(same rules, same messages), without torch."""

from __future__ import annotations

import numpy as np

LABEL_BOX_TOP_LEFT = 2
LABEL_BOX_BOTTOM_RIGHT = 3
CLICK_LABELS = frozenset({0, 1})
ENCODER_LABELS = CLICK_LABELS | {-1, LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT}
COORD_SPACES = ("pixels", "normalized")


def check_coord_space(coords: str) -> str:
    if coords not in COORD_SPACES:
        raise ValueError(f"coords must be 'pixels' or 'normalized', got {coords!r}")
    return coords


def as_float_array(value, name: str) -> np.ndarray:
    """A numeric, finite float64 array (ValueError naming ``name``)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric, got {type(value).__name__}") from None
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def check_points(points, labels, *, names=("points", "labels"), encoder_labels: bool = False):
    """Clicks as (coords [B, N, 2] float64, labels [B, N] int32); [N, 2] and [N] get B = 1."""
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


def check_binary_mask(mask, *, name: str = "mask") -> np.ndarray:
    """A 2-D mask [H, W] that is boolean or holds only 0 and 1, as bool."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (H, W), got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.number) or not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must be boolean or contain only 0 and 1")
    return arr.astype(bool)


def check_index(value, name: str) -> int:
    """A non-boolean integer (Python or NumPy) as int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return int(value)


def prompt_points(
    points,
    labels,
    box,
    *,
    orig_hw: tuple[int, int],
    image_size: int,
    coords: str,
    names: tuple[str, str, str] = ("points", "labels", "box"),
    encoder_labels: bool = False,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Clicks and/or boxes -> (coords [B, N, 2] float32 in model-input pixels, labels [B, N]
    int32), box corners first; None when neither is given."""
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
