"""SAM 2 training losses on multi-step, multi-mask predictions.

Per frame and per prediction step (the first prediction plus one per corrective
click) the model gives ``M`` candidate masks per object. The loss follows the
official SAM 2 recipe:

* focal loss (alpha 0.25, gamma 2, weight 20) and dice loss (weight 1) on the
  candidate with the lowest weighted focal + dice, counted only for objects
  present in the ground truth;
* L1 between the predicted IoU and the IoU the candidate really has, on every
  candidate (averaged over candidates), also only for present objects;
* binary cross-entropy (weight 1) between the object-score logit and presence.

Every term is divided by the number of objects; terms are summed over steps and
frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "StepPrediction",
    "LossWeights",
    "LossTerms",
    "sigmoid_focal_loss",
    "dice_loss",
    "mask_iou",
    "step_losses",
    "frame_losses",
    "clip_losses",
]


class StepPrediction(Protocol):
    """What one decoder step gives (e.g. the clip forward's ``ClipStep``)."""

    multimask_logits: Tensor  # [N, M, h, w]
    ious: Tensor  # [N, M]
    object_score_logits: Tensor  # [N, 1]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms and focal-loss parameters (the official values by default)."""

    mask: float = 20.0  # focal
    dice: float = 1.0
    iou: float = 1.0
    object_score: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    supervise_all_iou: bool = True  # IoU loss on every candidate, not only the best
    # Extra weight on the mask losses averaged over every candidate (0: the official best-only rule).
    # Training from scratch uses it so that no multimask candidate is left without gradient.
    all_candidates: float = 0.0
    # Weight of a penalty on image-embedding tokens whose per-channel RMS exceeds embed_rms_max.
    # From scratch the embedding grows until it swamps the positional encoding (RMS ~0.7) that
    # the decoder's attention keys share with the prompts, and the model stops seeing where the
    # clicks are; the penalty keeps it in that range (0: off, the official losses).
    embed_rms: float = 0.0
    embed_rms_max: float = 1.0


@dataclass(frozen=True)
class LossTerms:
    """Loss terms (scalars, already divided by the number of objects) and their weighted sum."""

    focal: Tensor
    dice: Tensor
    iou: Tensor
    object_score: Tensor
    total: Tensor

    def __add__(self, other: "LossTerms") -> "LossTerms":
        return LossTerms(*(a + b for a, b in zip(self._values(), other._values())))

    def _values(self) -> tuple[Tensor, ...]:
        return (self.focal, self.dice, self.iou, self.object_score, self.total)

    def as_floats(self) -> dict[str, float]:
        """The terms as plain floats (for logging)."""
        names = ("focal", "dice", "iou", "object_score", "total")
        return {name: float(value.detach()) for name, value in zip(names, self._values())}


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, *, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Focal loss per candidate, averaged over pixels.

    Args:
        logits: [N, M, H, W] mask logits.
        targets: [N, M, H, W] 0/1 floats.
        alpha: weight of the positive class (negative: no class weighting).
        gamma: focusing exponent (0: plain binary cross-entropy).
    Returns:
        [N, M] mean focal loss over the pixels of each candidate.
    """
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_correct = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_correct) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.flatten(2).mean(-1)


def dice_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Soft dice loss per candidate, with +1 smoothing on both sides.

    Args:
        logits: [N, M, H, W]; targets: [N, M, H, W] 0/1 floats.
    Returns:
        [N, M] ``1 - (2 |p t| + 1) / (|p| + |t| + 1)``.
    """
    prob = logits.sigmoid().flatten(2)
    flat_targets = targets.flatten(2)
    numerator = 2 * (prob * flat_targets).sum(-1)
    denominator = prob.sum(-1) + flat_targets.sum(-1)
    return 1 - (numerator + 1) / (denominator + 1)


def mask_iou(logits: Tensor, targets: Tensor) -> Tensor:
    """IoU of the thresholded (logit > 0) masks with the targets, [N, M] (0 when both are empty)."""
    pred = logits.flatten(2) > 0
    gt = targets.flatten(2) > 0
    intersection = (pred & gt).sum(-1).float()
    union = (pred | gt).sum(-1).float()
    return intersection / union.clamp(min=1.0)


def _upsample(logits: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)


def step_losses(
    step: StepPrediction,
    gt_masks: Tensor,
    num_objects: float,
    weights: LossWeights = LossWeights(),
) -> LossTerms:
    """Losses of one prediction step.

    Args:
        step: ``multimask_logits`` [N, M, h, w] (upsampled bilinearly to the GT size),
            ``ious`` [N, M], ``object_score_logits`` [N, 1].
        gt_masks: [N, 1, H, W] bool or 0/1.
        num_objects: normaliser (objects in the batch, at least 1).
    """
    logits = step.multimask_logits
    if logits.dim() != 4:
        raise ValueError(f"multimask_logits must be [N, M, h, w], got shape {tuple(logits.shape)}")
    if gt_masks.dim() != 4 or gt_masks.shape[1] != 1 or gt_masks.shape[0] != logits.shape[0]:
        raise ValueError(
            f"gt_masks must be [N, 1, H, W] with N={logits.shape[0]}, got shape {tuple(gt_masks.shape)}"
        )
    if tuple(step.ious.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"ious must be [N, M] = {tuple(logits.shape[:2])}, got {tuple(step.ious.shape)}")
    logits = _upsample(logits, tuple(gt_masks.shape[-2:])).float()
    targets = gt_masks.float().expand_as(logits)
    focal = sigmoid_focal_loss(logits, targets, alpha=weights.focal_alpha, gamma=weights.focal_gamma)
    dice = dice_loss(logits, targets)
    iou_err = F.l1_loss(step.ious.float(), mask_iou(logits, targets), reduction="none")  # [N, M]

    # The best candidate by weighted focal + dice carries the mask losses.
    combo = focal * weights.mask + dice * weights.dice
    best = combo.argmin(dim=1)  # [N]
    rows = torch.arange(logits.shape[0], device=logits.device)
    best_focal = focal[rows, best]
    best_dice = dice[rows, best]
    best_iou = iou_err.mean(dim=1) if weights.supervise_all_iou else iou_err[rows, best]
    if weights.all_candidates > 0:
        best_focal = best_focal + weights.all_candidates * focal.mean(dim=1)
        best_dice = best_dice + weights.all_candidates * dice.mean(dim=1)

    present = gt_masks.flatten(1).any(dim=1).float()  # [N]
    object_score = F.binary_cross_entropy_with_logits(
        step.object_score_logits.float().reshape(-1), present, reduction="sum"
    )
    terms = [
        (best_focal * present).sum() / num_objects,
        (best_dice * present).sum() / num_objects,
        (best_iou * present).sum() / num_objects,
        object_score / num_objects,
    ]
    total = (
        terms[0] * weights.mask + terms[1] * weights.dice + terms[2] * weights.iou + terms[3] * weights.object_score
    )
    return LossTerms(*terms, total)


def frame_losses(
    steps: Sequence[StepPrediction],
    gt_masks: Tensor,
    num_objects: float,
    weights: LossWeights = LossWeights(),
) -> LossTerms:
    """Losses of every step of one frame, summed (gt_masks [N, 1, H, W])."""
    if len(steps) == 0:
        raise ValueError("steps must hold at least one prediction step")
    result = step_losses(steps[0], gt_masks, num_objects, weights)
    for step in steps[1:]:
        result = result + step_losses(step, gt_masks, num_objects, weights)
    return result


def embedding_rms_penalty(embedding: Tensor, limit: float) -> Tensor:
    """Mean over tokens of ``relu(rms - limit)^2``, rms = the per-channel RMS of each token of
    ``embedding`` [B, C, h, w]."""
    rms = embedding.float().pow(2).mean(dim=1).sqrt()  # [B, h, w]
    return F.relu(rms - limit).pow(2).mean()


def clip_losses(
    frames_steps: Sequence[Sequence[StepPrediction]],
    gt_masks: Tensor,
    weights: LossWeights = LossWeights(),
) -> LossTerms:
    """Losses of a clip: summed over frames and steps, divided by the number of objects.

    Args:
        frames_steps: per frame, its prediction steps (e.g. ``[out.steps for out in outputs]``).
        gt_masks: [T, N, H, W] or [T, N, 1, H, W] ground truth of the clip.
    """
    if gt_masks.dim() == 4:
        gt_masks = gt_masks.unsqueeze(2)
    if gt_masks.dim() != 5 or gt_masks.shape[2] != 1:
        raise ValueError(f"gt_masks must be [T, N, H, W] or [T, N, 1, H, W], got {tuple(gt_masks.shape)}")
    if len(frames_steps) != gt_masks.shape[0]:
        raise ValueError(f"got {len(frames_steps)} frames of predictions for {gt_masks.shape[0]} GT frames")
    num_objects = max(float(gt_masks.shape[1]), 1.0)
    result = frame_losses(frames_steps[0], gt_masks[0], num_objects, weights)
    for steps, target in zip(frames_steps[1:], gt_masks[1:]):
        result = result + frame_losses(steps, target, num_objects, weights)
    return result
