"""Prompt simulation for SAM 2 training, as pure functions of tensors and a ``torch.Generator``.

The rules follow the official SAM 2 training recipe:

* A clip gets 1 or 2 conditioning frames (frame 0 plus, half of the time, one
  other frame chosen at random).
* The clip is prompted with clicks with probability ``prob_points`` (0.5), else
  with the ground-truth masks. With clicks, each conditioning frame gets a box
  instead of a click with probability ``prob_box_given_points`` (0.5), so the
  prompt kinds have probabilities 0.25 click / 0.25 box / 0.5 mask. As in the
  reference, all objects of one frame share the prompt kind (one decoder batch),
  and the kind is drawn independently for each conditioning frame.
* A click is sampled uniformly from the error region of the current prediction
  (false negative -> positive click, false positive -> negative click; no error
  -> a negative click on the background). With probability ``prob_click_from_gt``
  (0.1) a corrective click ignores the prediction and is drawn from the ground
  truth instead. The first click is drawn from the ground truth.
* Boxes are the tight box of the mask with each coordinate moved by up to 10% of
  the box side, at most 20 px, clamped to the image.
* Corrective clicks (7 per frame, driven by the clip forward through
  :func:`make_corrector`) go on the conditioning frames plus, at random, one
  more frame, for 1-2 corrected frames per clip; mask-prompted clips get none.

Coordinates are in model-input pixels (0..S, x then y). Point labels: 1 positive,
0 negative, 2 box top-left, 3 box bottom-right.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from samstream.video.clip import ClipPrompts, Corrector

__all__ = [
    "PromptSamplingConfig",
    "PromptPlan",
    "ClipPromptSample",
    "sample_prompt_plan",
    "sample_clicks_from_errors",
    "sample_boxes",
    "masks_to_boxes",
    "sample_clip_prompts",
    "make_corrector",
    "make_clip_correctors",
]

PromptKind = Literal["click", "box", "mask"]


@dataclass(frozen=True)
class PromptSamplingConfig:
    """Probabilities and counts of the simulated prompts (official training values by default)."""

    prob_points: float = 0.5  # clips prompted by clicks/boxes rather than masks
    prob_box_given_points: float = 0.5  # a box rather than a click on a conditioning frame
    max_cond_frames: int = 2  # 1..this many conditioning frames (random)
    max_corrected_frames: int = 2  # conditioning frames + random others, up to this many
    num_correction_clicks: int = 7  # corrective clicks per corrected frame
    prob_click_from_gt: float = 0.1  # a corrective click drawn from the GT instead of the errors
    box_noise: float = 0.1  # box jitter as a fraction of the box side ...
    box_noise_max_px: float = 20.0  # ... at most this many pixels

    def __post_init__(self) -> None:
        for name in ("prob_points", "prob_box_given_points", "prob_click_from_gt"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.max_cond_frames < 1:
            raise ValueError(f"max_cond_frames must be >= 1, got {self.max_cond_frames}")
        if self.max_corrected_frames < self.max_cond_frames:
            raise ValueError(
                f"max_corrected_frames ({self.max_corrected_frames}) must be >= "
                f"max_cond_frames ({self.max_cond_frames})"
            )
        if self.num_correction_clicks < 0:
            raise ValueError(f"num_correction_clicks must be >= 0, got {self.num_correction_clicks}")
        if self.box_noise < 0 or self.box_noise_max_px < 0:
            raise ValueError("box_noise and box_noise_max_px must be >= 0")


@dataclass(frozen=True)
class PromptPlan:
    """Which frames of a clip get prompts and corrections.

    cond_frames: conditioning frames, frame 0 first.
    kinds: the prompt kind of each conditioning frame.
    correction_frames: frames that get corrective clicks (empty for mask prompts).
    """

    cond_frames: tuple[int, ...]
    kinds: tuple[PromptKind, ...]
    correction_frames: tuple[int, ...]


@dataclass(frozen=True)
class ClipPromptSample:
    """A plan and the prompts drawn for it (``prompts[frame_idx]`` for each conditioning frame)."""

    plan: PromptPlan
    prompts: dict[int, ClipPrompts] = field(default_factory=dict)


def _uniform(generator: torch.Generator) -> float:
    return float(torch.rand((), generator=generator))


def _choose(candidates: list[int], count: int, generator: torch.Generator) -> list[int]:
    """``count`` distinct items of ``candidates``, in random order."""
    order = torch.randperm(len(candidates), generator=generator)[:count]
    return [candidates[i] for i in order.tolist()]


def sample_prompt_plan(
    num_frames: int, generator: torch.Generator, config: PromptSamplingConfig = PromptSamplingConfig()
) -> PromptPlan:
    """Draw the conditioning frames, their prompt kinds and the corrected frames of a clip.

    A 1-frame clip (an image) always gets clicks or a box, and corrections on its frame.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if num_frames == 1:
        use_points, num_cond, num_corrected = True, 1, 1
    else:
        use_points = _uniform(generator) < config.prob_points
        max_cond = min(config.max_cond_frames, num_frames)
        num_cond = 1 + int(torch.randint(max_cond, (), generator=generator))
        max_corrected = min(config.max_corrected_frames, num_frames)
        num_corrected = num_cond
        if use_points and max_corrected > num_cond:
            num_corrected = num_cond + int(torch.randint(max_corrected - num_cond + 1, (), generator=generator))
    cond = [0] + _choose(list(range(1, num_frames)), num_cond - 1, generator)
    kinds: list[PromptKind] = []
    for _ in cond:
        if not use_points:
            kinds.append("mask")
        else:
            kinds.append("box" if _uniform(generator) < config.prob_box_given_points else "click")
    corrected: list[int] = []
    if use_points:
        others = [t for t in range(num_frames) if t not in cond]
        corrected = cond + _choose(others, num_corrected - num_cond, generator)
    return PromptPlan(tuple(cond), tuple(kinds), tuple(corrected))


def _check_masks(masks: Tensor, name: str) -> None:
    if masks.dim() != 4 or masks.shape[1] != 1:
        raise ValueError(f"{name} must be [N, 1, H, W], got shape {tuple(masks.shape)}")
    if masks.dtype != torch.bool:
        raise ValueError(f"{name} must be bool, got {masks.dtype}")


def sample_clicks_from_errors(
    gt_masks: Tensor, pred_masks: Tensor | None, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """One click per object, uniform over its error region.

    Args:
        gt_masks: [N, 1, H, W] bool.
        pred_masks: [N, 1, H, W] bool, or None for an empty prediction (a click on the GT).
    Returns:
        coords [N, 1, 2] float (x, y) pixel indices; labels [N, 1] int32: 1 where the
        pixel is a false negative, 0 where it is a false positive. An object predicted
        exactly gets a negative click on its background.
    """
    _check_masks(gt_masks, "gt_masks")
    if pred_masks is None:
        pred_masks = torch.zeros_like(gt_masks)
    _check_masks(pred_masks, "pred_masks")
    if pred_masks.shape != gt_masks.shape:
        raise ValueError(f"pred_masks shape {tuple(pred_masks.shape)} != gt_masks shape {tuple(gt_masks.shape)}")
    n, _, h, w = gt_masks.shape
    false_neg = (gt_masks & ~pred_masks)[:, 0]  # [N, H, W]
    false_pos = (~gt_masks & pred_masks)[:, 0]
    exact = ~(false_neg | false_pos).flatten(1).any(dim=1)  # [N]
    region = false_neg | false_pos | (exact[:, None, None] & ~gt_masks[:, 0])
    # Uniform choice within the region: the largest of i.i.d. uniforms restricted to it.
    noise = torch.rand((n, h, w), generator=generator, device=gt_masks.device) * region
    flat = noise.flatten(1).argmax(dim=1)  # [N]
    ys, xs = flat // w, flat % w
    labels = false_neg.flatten(1).gather(1, flat[:, None]).to(torch.int32)  # [N, 1]
    coords = torch.stack([xs, ys], dim=-1).to(torch.float32)[:, None, :]  # [N, 1, 2]
    return coords, labels


def masks_to_boxes(masks: Tensor) -> Tensor:
    """Tight boxes [N, 4] (x0, y0, x1, y1, inclusive pixel indices) of [N, 1, H, W] bool masks.

    An empty mask gives (W, H, -1, -1).
    """
    _check_masks(masks, "masks")
    n, _, h, w = masks.shape
    cols = masks[:, 0].any(dim=1)  # [N, W]
    rows = masks[:, 0].any(dim=2)  # [N, H]
    xs = torch.arange(w, device=masks.device)
    ys = torch.arange(h, device=masks.device)
    x0 = torch.where(cols, xs, w).amin(dim=1)
    x1 = torch.where(cols, xs, -1).amax(dim=1)
    y0 = torch.where(rows, ys, h).amin(dim=1)
    y1 = torch.where(rows, ys, -1).amax(dim=1)
    return torch.stack([x0, y0, x1, y1], dim=1).to(torch.float32)


def sample_boxes(
    gt_masks: Tensor,
    generator: torch.Generator,
    *,
    noise: float = 0.1,
    noise_max_px: float = 20.0,
) -> tuple[Tensor, Tensor]:
    """Jittered boxes of the masks as two corner points.

    Each coordinate moves uniformly by up to ``min(noise * side, noise_max_px)``
    (side = box width for x, height for y), then is clamped to [0, W-1] / [0, H-1].

    Returns:
        coords [N, 2, 2] float (top-left, bottom-right); labels [N, 2] int32 = (2, 3).
    """
    boxes = masks_to_boxes(gt_masks)
    n, _, h, w = gt_masks.shape
    if noise > 0:
        width = boxes[:, 2] - boxes[:, 0]
        height = boxes[:, 3] - boxes[:, 1]
        max_dx = torch.clamp(width * noise, max=noise_max_px)
        max_dy = torch.clamp(height * noise, max=noise_max_px)
        scale = torch.stack([max_dx, max_dy, max_dx, max_dy], dim=1)  # [N, 4]
        jitter = 2 * torch.rand((n, 4), generator=generator, device=gt_masks.device) - 1
        boxes = boxes + jitter * scale
    upper = torch.tensor([w - 1, h - 1, w - 1, h - 1], dtype=boxes.dtype, device=boxes.device)
    boxes = torch.maximum(torch.minimum(boxes, upper), torch.zeros_like(upper))
    coords = boxes.reshape(n, 2, 2)
    labels = torch.tensor([2, 3], dtype=torch.int32, device=gt_masks.device).expand(n, 2).clone()
    return coords, labels


def sample_clip_prompts(
    gt_masks: Tensor,
    generator: torch.Generator,
    config: PromptSamplingConfig = PromptSamplingConfig(),
) -> ClipPromptSample:
    """Draw a plan and the prompts of its conditioning frames.

    Args:
        gt_masks: [T, N, S, S] bool, ground truth at the model input size.
    Returns:
        the plan and ``prompts[t]`` for each conditioning frame t.
    """
    if gt_masks.dim() != 4 or gt_masks.dtype != torch.bool:
        raise ValueError(f"gt_masks must be [T, N, S, S] bool, got {tuple(gt_masks.shape)} {gt_masks.dtype}")
    plan = sample_prompt_plan(gt_masks.shape[0], generator, config)
    prompts: dict[int, ClipPrompts] = {}
    for t, kind in zip(plan.cond_frames, plan.kinds):
        frame = gt_masks[t][:, None]  # [N, 1, S, S]
        if kind == "mask":
            prompts[t] = ClipPrompts(mask=frame.float())
        elif kind == "box":
            coords, labels = sample_boxes(
                frame, generator, noise=config.box_noise, noise_max_px=config.box_noise_max_px
            )
            prompts[t] = ClipPrompts(point_coords=coords, point_labels=labels)
        else:
            coords, labels = sample_clicks_from_errors(frame, None, generator)
            prompts[t] = ClipPrompts(point_coords=coords, point_labels=labels)
    return ClipPromptSample(plan, prompts)


def make_corrector(
    gt_masks: Tensor,
    generator: torch.Generator,
    *,
    prob_click_from_gt: float = 0.1,
) -> Corrector:
    """A function that draws one corrective click per object from the current prediction.

    Args:
        gt_masks: [N, 1, S, S] bool ground truth of the frame.
        prob_click_from_gt: chance that a call ignores the prediction and clicks on the GT
            (decided once per call, for all objects).
    Returns:
        ``corrector(pred_logits [N, 1, h, w]) -> (coords [N, 1, 2], labels [N, 1] int32)``;
        logits at another size than the GT are resized bilinearly first, and the
        prediction is ``logits > 0``.
    """
    _check_masks(gt_masks, "gt_masks")
    if not 0.0 <= prob_click_from_gt <= 1.0:
        raise ValueError(f"prob_click_from_gt must be in [0, 1], got {prob_click_from_gt}")
    size = tuple(gt_masks.shape[-2:])

    def corrector(pred_logits: Tensor) -> tuple[Tensor, Tensor]:
        if pred_logits.dim() != 4 or pred_logits.shape[:2] != gt_masks.shape[:2]:
            raise ValueError(
                f"pred_logits must be [N, 1, h, w] with N={gt_masks.shape[0]}, got {tuple(pred_logits.shape)}"
            )
        from_gt = _uniform(generator) < prob_click_from_gt
        if from_gt:
            return sample_clicks_from_errors(gt_masks, None, generator)
        logits = pred_logits.detach()
        if tuple(logits.shape[-2:]) != size:
            logits = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
        return sample_clicks_from_errors(gt_masks, logits > 0, generator)

    return corrector


def make_clip_correctors(
    gt_masks: Tensor,
    frames: tuple[int, ...] | list[int],
    generator: torch.Generator,
    *,
    prob_click_from_gt: float = 0.1,
) -> dict[int, Corrector]:
    """One :func:`make_corrector` per corrected frame of a clip.

    Args:
        gt_masks: [T, N, S, S] bool ground truth of the clip.
        frames: the corrected frames (e.g. ``plan.correction_frames``).
    Returns:
        ``{t: corrector}``; all share ``generator``, so the clicks depend on the order of the calls.
    """
    if gt_masks.dim() != 4 or gt_masks.dtype != torch.bool:
        raise ValueError(f"gt_masks must be [T, N, S, S] bool, got {tuple(gt_masks.shape)} {gt_masks.dtype}")
    bad = [t for t in frames if not 0 <= t < gt_masks.shape[0]]
    if bad:
        raise ValueError(f"frames {bad} are outside the clip of {gt_masks.shape[0]} frames")
    return {
        t: make_corrector(gt_masks[t][:, None], generator, prob_click_from_gt=prob_click_from_gt) for t in frames
    }
