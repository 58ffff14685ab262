"""``motion``: a motion-aware memory after SAMURAI (Yang et al., 2024).

Per object, a constant-velocity Kalman filter follows the mask's box (:mod:`.kalman`).

- Until the filter is stable (the first ``stable_frames`` tracked frames, or after a reset)
  the candidate with the highest predicted IoU is taken, and the filter is updated with its
  box only when that IoU exceeds ``stable_iou`` (otherwise it starts again).
- Once stable, each multimask candidate scores ``w * IoU(filter box, candidate box) +
  (1 - w) * predicted IoU``; the best is taken; a chosen IoU below ``stable_iou`` resets the
  filter, otherwise it is updated with the chosen box.
- Memory: every output is encoded, but a frame attends to the adjacent frame plus only the
  nearest earlier frames whose predicted IoU > ``memory_iou``, object score >
  ``memory_object_score`` and motion IoU > ``memory_motion_iou`` (while the filter is not
  stable there is no motion IoU and that test passes). Object pointers are the reference's.

When the chosen mask is empty (the object is judged absent) the filter only predicts: it
coasts on its velocity through the occlusion. A prompt on the object, or tracking that does not
continue from the last frame seen (another start, the other direction), restarts the filter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

import numpy as np

from . import kalman
from .base import Candidates, Keep
from .boxes import box_is_empty, box_iou, mask_boxes
from .filtered import FilteredMemory
from .filtering import Quality
from .selection import MemoryPolicy


@dataclass(frozen=True)
class MotionConfig:
    """SAMURAI's settings (its defaults)."""

    stable_frames: int = 15
    stable_iou: float = 0.3
    motion_weight: float = 0.15
    memory_iou: float = 0.5
    memory_object_score: float = 0.0
    memory_motion_iou: float = 0.0
    noise: kalman.KalmanNoise = field(default_factory=kalman.KalmanNoise)

    def __post_init__(self) -> None:
        if self.stable_frames < 1:
            raise ValueError(f"stable_frames must be >= 1, got {self.stable_frames}")
        if not 0.0 <= self.motion_weight <= 1.0:
            raise ValueError(f"motion_weight must be in [0, 1], got {self.motion_weight}")


@dataclass
class MotionState:
    """One object's filter (None before it starts), its count of stable updates (0 = start
    again) and the last frame it saw (a frame that does not follow it restarts the filter)."""

    filter: kalman.KalmanState | None = None
    stable: int = 0
    last_frame: int | None = None


class MotionStep(NamedTuple):
    """The outcome of one frame: the chosen candidate, its motion IoU (None while the filter
    is not stable) and the filter afterwards."""

    choice: int
    motion_iou: float | None
    state: MotionState


def motion_step(state: MotionState, boxes: np.ndarray, ious: np.ndarray, config: MotionConfig) -> MotionStep:
    """SAMURAI's rule for one frame, pure: ``boxes`` [M, 4] (x0, y0, x1, y1) and predicted
    ``ious`` [M] of the candidates; returns the choice and the new filter state."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ious = np.asarray(ious, dtype=np.float64).reshape(-1)
    best = int(np.argmax(ious))
    noise = config.noise
    if state.filter is None or state.stable == 0:
        if box_is_empty(boxes[best]):
            return MotionStep(best, None, MotionState(state.filter, 0))
        return MotionStep(best, None, MotionState(kalman.initiate(kalman.xyxy_to_xyah(boxes[best]), noise), 1))
    predicted = kalman.predict(state.filter, noise)
    if state.stable < config.stable_frames:
        if box_is_empty(boxes[best]):
            return MotionStep(best, None, MotionState(predicted, state.stable))
        if ious[best] > config.stable_iou:
            updated = kalman.update(predicted, kalman.xyxy_to_xyah(boxes[best]), noise)
            return MotionStep(best, None, MotionState(updated, state.stable + 1))
        return MotionStep(best, None, MotionState(predicted, 0))
    motion = box_iou(predicted.box(), boxes)  # [M]
    w = config.motion_weight
    choice = int(np.argmax(w * motion + (1 - w) * ious))
    if box_is_empty(boxes[choice]):
        return MotionStep(choice, float(motion[choice]), MotionState(predicted, state.stable))
    if ious[choice] < config.stable_iou:
        return MotionStep(choice, float(motion[choice]), MotionState(predicted, 0))
    updated = kalman.update(predicted, kalman.xyxy_to_xyah(boxes[choice]), noise)
    return MotionStep(choice, float(motion[choice]), MotionState(updated, state.stable + 1))


def motion_memory_ok(quality: Quality | None, config: MotionConfig) -> bool:
    """Whether a frame may be attended to beyond the adjacent one (prompted outputs: yes)."""
    if quality is None:
        return True
    return (
        quality.iou > config.memory_iou
        and quality.object_score > config.memory_object_score
        and (quality.motion_iou is None or quality.motion_iou > config.memory_motion_iou)
    )


def choose_with_motion(frame_idx: int, cand: Candidates, state: MotionState, config: MotionConfig) -> tuple[int, Quality]:
    """Apply :func:`motion_step` to one object's candidates on ``frame_idx``; updates ``state``
    in place. Tracking that jumps (a new start, the other direction) restarts the filter."""
    if state.last_frame is not None and abs(frame_idx - state.last_frame) != 1:
        state.filter, state.stable = None, 0
    state.last_frame = frame_idx
    boxes = mask_boxes(cand.low_res_masks[:, None].float()).cpu().numpy()  # [M, 4]
    ious = cand.ious.float().cpu().numpy()
    step = motion_step(state, boxes, ious, config)
    state.filter, state.stable = step.state.filter, step.state.stable
    quality = Quality(float(ious[step.choice]), float(cand.object_score_logit), step.motion_iou)
    return step.choice, quality


class MotionMemory(FilteredMemory):
    """Motion-aware candidate choice and a quality-filtered memory bank, per object."""

    name = "motion"

    def __init__(self, policy: MemoryPolicy, config: MotionConfig | None = None) -> None:
        self.policy = policy
        self.config = config or MotionConfig()

    def new_object_state(self, obj_id: int) -> MotionState:
        return MotionState()

    def on_prompt(self, frame_idx: int, state: MotionState) -> None:
        state.filter, state.stable, state.last_frame = None, 0, None

    def memory_ok(self, note: Any) -> bool:
        return motion_memory_ok(note, self.config)

    def decide(self, frame_idx: int, proposals: Sequence[Candidates], state: MotionState) -> Sequence[Keep]:
        choice, quality = choose_with_motion(frame_idx, proposals[0], state, self.config)
        return (Keep(parent=0, candidate=choice, note=quality),)

