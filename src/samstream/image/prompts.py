"""Typed prompts for the image predictor, validated and turned into model tensors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..modeling.prompt_encoder import LABEL_BOX_BOTTOM_RIGHT, LABEL_BOX_TOP_LEFT
from .transforms import coords_to_model

_VALID_LABELS = {-1, 0, 1, 2, 3}


@dataclass(frozen=True)
class Prompt:
    """Prompts for one image.

    points: [N, 2] (x, y), or [B, N, 2] for B prompt sets at once; labels: [N] or [B, N],
    1 = foreground, 0 = background. box: [4] or [B, 4] as (x0, y0, x1, y1).
    mask: low-res logits [1, S/4, S/4] or [B, 1, S/4, S/4] from an earlier prediction.
    Coordinates are pixels of the original image, or in [0, 1] with ``normalized=True``.
    """

    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None
    mask: np.ndarray | None = None
    normalized: bool = False


@dataclass
class PromptTensors:
    """A prompt in the model's frame: coords [B, N, 2] in input pixels (box corners first,
    labels 2 and 3), labels [B, N] int32, mask_input [B, 1, S/4, S/4] or None."""

    coords: torch.Tensor | None
    labels: torch.Tensor | None
    mask_input: torch.Tensor | None

    @property
    def batch_size(self) -> int:
        if self.coords is not None:
            return self.coords.shape[0]
        return self.mask_input.shape[0] if self.mask_input is not None else 1


def _as_float_array(value, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric, got {type(value).__name__}") from None
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def prepare_prompt(
    prompt: Prompt,
    *,
    orig_hw: tuple[int, int],
    image_size: int,
    device: torch.device,
) -> PromptTensors:
    """Validate a prompt and convert it to model tensors (raises ValueError naming the argument)."""
    coords = labels = None
    if prompt.points is not None:
        if prompt.labels is None:
            raise ValueError("point_labels must be given with point_coords")
        pts = _as_float_array(prompt.points, "point_coords")
        if pts.ndim == 2:
            pts = pts[None]
        if pts.ndim != 3 or pts.shape[-1] != 2:
            raise ValueError(f"point_coords must have shape (N, 2) or (B, N, 2), got {np.shape(prompt.points)}")
        lab = _as_float_array(prompt.labels, "point_labels")
        if lab.ndim == 1:
            lab = lab[None]
        if lab.shape != pts.shape[:2]:
            raise ValueError(
                f"point_labels shape {np.shape(prompt.labels)} does not match point_coords shape {np.shape(prompt.points)}"
            )
        if (lab != np.round(lab)).any() or not set(np.unique(lab).astype(int)) <= _VALID_LABELS:
            raise ValueError(f"point_labels must be 1 (foreground) or 0 (background), got {np.unique(lab).tolist()}")
        coords = coords_to_model(torch.as_tensor(pts, dtype=torch.float32), orig_hw, image_size, prompt.normalized)
        labels = torch.as_tensor(lab.astype(np.int32))
    elif prompt.labels is not None:
        raise ValueError("point_labels given without point_coords")

    if prompt.box is not None:
        box = _as_float_array(prompt.box, "box")
        if box.ndim == 1:
            box = box[None]
        if box.ndim != 2 or box.shape[-1] != 4:
            raise ValueError(f"box must have shape (4,) or (B, 4) as x0, y0, x1, y1; got {np.shape(prompt.box)}")
        if (box[:, 2] < box[:, 0]).any() or (box[:, 3] < box[:, 1]).any():
            raise ValueError(f"box must have x1 >= x0 and y1 >= y0 (x0, y0, x1, y1), got {box.tolist()}")
        corners = coords_to_model(
            torch.as_tensor(box, dtype=torch.float32).reshape(-1, 2, 2), orig_hw, image_size, prompt.normalized
        )
        corner_labels = torch.tensor([[LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT]], dtype=torch.int32)
        corner_labels = corner_labels.repeat(corners.shape[0], 1)
        if coords is not None:
            if corners.shape[0] != coords.shape[0]:
                if corners.shape[0] == 1:
                    corners, corner_labels = corners.expand(coords.shape[0], -1, -1), corner_labels.expand(coords.shape[0], -1)
                elif coords.shape[0] == 1:
                    coords, labels = coords.expand(corners.shape[0], -1, -1), labels.expand(corners.shape[0], -1)
                else:
                    raise ValueError(f"{corners.shape[0]} boxes for {coords.shape[0]} point sets")
            coords = torch.cat([corners, coords], dim=1)
            labels = torch.cat([corner_labels, labels], dim=1)
        else:
            coords, labels = corners, corner_labels

    mask_input = None
    if prompt.mask is not None:
        m = _as_float_array(prompt.mask, "mask_input")
        if m.ndim == 2:
            m = m[None]
        if m.ndim == 3:
            m = m[None]
        side = image_size // 4
        if m.ndim != 4 or m.shape[1] != 1 or m.shape[2:] != (side, side):
            raise ValueError(
                f"mask_input must be low-res logits of shape (1, {side}, {side}) or (B, 1, {side}, {side}), "
                f"got {np.shape(prompt.mask)}"
            )
        mask_input = torch.as_tensor(m, dtype=torch.float32)
        if coords is not None and mask_input.shape[0] not in (1, coords.shape[0]):
            raise ValueError(f"{mask_input.shape[0]} mask inputs for {coords.shape[0]} prompt sets")

    if coords is None and mask_input is None:
        raise ValueError("empty prompt: give point_coords with point_labels, a box, or a mask_input")
    return PromptTensors(
        coords=None if coords is None else coords.to(device),
        labels=None if labels is None else labels.to(device),
        mask_input=None if mask_input is None else mask_input.to(device),
    )
