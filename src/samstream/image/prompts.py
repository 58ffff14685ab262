"""Typed prompts for the image predictor, validated (by :mod:`samstream.prompts`) and turned
into model tensors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..prompts import CoordSpace, check_coord_space, check_low_res_logits, prompt_points


@dataclass(frozen=True)
class Prompt:
    """Prompts for one image.

    points: [N, 2] (x, y), or [B, N, 2] for B prompt sets at once; labels: [N] or [B, N],
    1 = foreground, 0 = background. box: [4] or [B, 4] as (x0, y0, x1, y1).
    mask: low-res logits [1, S/4, S/4] or [B, 1, S/4, S/4] from an earlier prediction.
    ``coords``: the points and boxes are in ``"pixels"`` of the original image or
    ``"normalized"`` to [0, 1].
    """

    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None
    mask: np.ndarray | None = None
    coords: CoordSpace = "pixels"

    def __post_init__(self) -> None:
        check_coord_space(self.coords)


@dataclass(frozen=True)
class PromptNames:
    """The argument names used in error messages (the reference's names in ``compat``)."""

    points: str = "points"
    labels: str = "labels"
    box: str = "box"
    mask: str = "mask_input"


REFERENCE_NAMES = PromptNames(points="point_coords", labels="point_labels")


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


def prepare_prompt(
    prompt: Prompt,
    *,
    orig_hw: tuple[int, int],
    image_size: int,
    device: torch.device,
    names: PromptNames = PromptNames(),
) -> PromptTensors:
    """Validate a prompt and convert it to model tensors (raises ValueError naming the argument)."""
    if prompt.labels is not None and prompt.points is None:
        raise ValueError(f"{names.labels} given without {names.points}")
    if prompt.points is not None and prompt.labels is None:
        raise ValueError(f"{names.labels} must be given with {names.points}")
    pts = prompt_points(
        prompt.points,
        prompt.labels,
        prompt.box,
        orig_hw=orig_hw,
        image_size=image_size,
        coords=prompt.coords,
        names=(names.points, names.labels, names.box),
        encoder_labels=True,
    )
    coords, labels = (None, None) if pts is None else pts

    mask_input = None
    if prompt.mask is not None:
        m = check_low_res_logits(prompt.mask, image_size // 4, name=names.mask)
        mask_input = torch.as_tensor(m, dtype=torch.float32)
        if coords is not None and mask_input.shape[0] not in (1, coords.shape[0]):
            raise ValueError(f"{mask_input.shape[0]} mask inputs for {coords.shape[0]} prompt sets")

    if coords is None and mask_input is None:
        raise ValueError(f"empty prompt: give {names.points} with {names.labels}, a {names.box}, or a {names.mask}")
    return PromptTensors(
        coords=None if coords is None else coords.to(device),
        labels=None if labels is None else labels.to(device),
        mask_input=None if mask_input is None else mask_input.to(device),
    )
