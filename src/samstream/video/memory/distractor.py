"""``distractor``: a distractor-aware memory after DAM4SAM (Videnovic et al., 2025).

The bank of each object has two parts:

- recent-appearance memory (RAM): the last frame where the object is visible, then frames
  every ``ram_stride`` frames (on multiples of the stride) where it is visible, nearest
  first, so that frames where it is occluded or gone are skipped;
- distractor-resolving memory (DRM): up to ``drm_size`` tracked frames attended to like
  conditioning frames (no temporal encoding). A frame is added when the chosen IoU >
  ``drm_iou``, the object's area is within ``area_ratio`` of its median over the last
  ``area_history`` frames where it was visible, the object is present, more than ``drm_gap``
  frames have passed since the last addition, and an alternative candidate disagrees with
  the chosen one: the alternative's largest part outside the chosen mask, joined to it,
  has a box whose IoU with the chosen box is <= ``alternative_box_iou`` (something that looks
  like the object is nearby). The oldest DRM frame makes room for a new one.

The RAM and DRM frames together are as many as the reference's ``num_maskmem - 1`` frames.
Object pointers: the conditioning and DRM frames', then the reference's window, only from
frames where the object is visible.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Container, Sequence

import numpy as np
from scipy import ndimage

from .base import Candidates, Keep, MemoryStrategy
from .boxes import box_is_empty, box_iou
from .filtering import Quality
from .selection import MemoryPolicy, MemoryRef, MemorySelection, PointerRef, select_memories


@dataclass(frozen=True)
class DistractorConfig:
    """DAM4SAM's settings (its defaults)."""

    ram_stride: int = 5
    drm_size: int = 3
    drm_iou: float = 0.8
    area_ratio: tuple[float, float] = (0.8, 1.2)
    area_history: int = 10
    drm_gap: int = 5
    alternative_box_iou: float = 0.7

    def __post_init__(self) -> None:
        if self.ram_stride < 1:
            raise ValueError(f"ram_stride must be >= 1, got {self.ram_stride}")
        if self.drm_size < 0:
            raise ValueError(f"drm_size must be >= 0, got {self.drm_size}")
        if self.area_history < 1:
            raise ValueError(f"area_history must be >= 1, got {self.area_history}")


@dataclass
class DistractorState:
    """One object's DRM frames (oldest first), the frame of the last addition, the areas
    (pixels of the low-res mask) of the last frames where it was visible, newest last, and
    how many frames were tracked."""

    drm: list[int] = field(default_factory=list)
    last_added: int | None = None
    areas: deque = field(default_factory=deque)
    tracked: int = 0


# ------------------------------------------------------------------------ the admission rule


def area_ratio(area: int, recent_areas: Sequence[int]) -> float | None:
    """The area over the median of ``recent_areas`` (which include this frame's); None when
    the object is not visible."""
    if area < 1 or not recent_areas:
        return None
    return float(area / np.median(np.asarray(recent_areas, dtype=np.float64)))


def passes_drm_gate(
    *,
    frame_idx: int,
    chosen_iou: float,
    present: bool,
    ratio: float | None,
    last_added: int | None,
    config: DistractorConfig,
) -> bool:
    """The first part of the DRM admission: a confident, present, normally sized object, and
    more than ``drm_gap`` frames since the last addition."""
    low, high = config.area_ratio
    return (
        chosen_iou > config.drm_iou
        and present
        and ratio is not None
        and low <= ratio <= high
        and (last_added is None or abs(frame_idx - last_added) > config.drm_gap)
    )


def _box(mask: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) in pixels (ends exclusive) of a non-empty [h, w] bool mask."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    return np.array([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1], dtype=np.float64)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(sizes.argmax()) + 1)


def alternatives_disagree(chosen: np.ndarray, alternatives: Sequence[np.ndarray], threshold: float) -> bool:
    """Whether some alternative mask [h, w] bool points at something else than ``chosen``:
    its largest part outside the chosen mask, joined to the chosen mask, has a box whose IoU
    with the chosen box is <= ``threshold``."""
    if not chosen.any():
        return False
    chosen_box = _box(chosen)
    for alt in alternatives:
        extra = alt & ~chosen
        if not extra.any():
            continue
        joined = _largest_component(extra) | chosen
        if float(box_iou(chosen_box, _box(joined)[None])[0]) <= threshold:
            return True
    return False


# ------------------------------------------------------------------------ the RAM selection


def recent_appearance_frames(
    frame_idx: int,
    memory_frames,
    visible: Callable[[int], bool],
    *,
    count: int,
    stride: int,
    reverse: bool,
    exclude: Container[int] = (),
) -> list[int]:
    """The RAM of ``frame_idx``, nearest first: the nearest earlier frame in memory where the
    object is ``visible``, then, below each chosen frame, the nearest multiple of ``stride``
    in memory where it is visible; at most ``count``. ``exclude``: frames used otherwise (DRM)."""
    if count <= 0:
        return []

    def good(t: int) -> bool:
        return t not in exclude and visible(t)

    first = next((t for t in memory_frames.before(frame_idx, reverse) if good(t)), None)
    if first is None:
        return []
    chosen = [first]
    prev = first
    while len(chosen) < count:
        if reverse:
            start = -(-(prev + 1) // stride) * stride  # the nearest multiple after prev
            found = next((t for t in memory_frames.before(start - stride, True, stride) if good(t)), None)
        else:
            start = ((prev - 1) // stride) * stride  # the nearest multiple before prev
            found = next((t for t in memory_frames.before(start + stride, False, stride) if good(t)), None)
        if found is None:
            break
        chosen.append(found)
        prev = found
    return chosen


# ------------------------------------------------------------------------ the strategy


def output_visible(memory_frames, t: int) -> bool:
    """Whether frame t's output in memory shows the object (a non-empty mask)."""
    out = memory_frames.get(t)
    if out is None:
        return False
    box = getattr(out, "box", None)  # a bank without boxes (the training clip forward): visible
    return box is None or not box_is_empty(box.reshape(-1)[:4].cpu().numpy())


class DistractorMemory(MemoryStrategy):
    """Recent-appearance memory plus a distractor-resolving memory, per object."""

    name = "distractor"

    def __init__(self, policy: MemoryPolicy, config: DistractorConfig | None = None) -> None:
        self.policy = policy
        self.config = config or DistractorConfig()

    def new_object_state(self, obj_id: int) -> DistractorState:
        return DistractorState(areas=deque(maxlen=self.config.area_history))

    # the parts a combination replaces
    def _choose(self, frame_idx: int, cand: Candidates, state: DistractorState) -> tuple[int, Quality]:
        choice = int(cand.ious.argmax()) if cand.num_candidates > 1 else 0
        return choice, Quality(float(cand.ious[choice]), float(cand.object_score_logit))

    def _ram_ok(self, memory_frames) -> Callable[[int], bool]:
        return lambda t: output_visible(memory_frames, t)

    def _drm_frames(self, frame_idx: int, memory_frames, reverse: bool, state: DistractorState | None) -> list[int]:
        if state is None:  # no per-object state (the training clip forward): no DRM
            return []
        return [t for t in state.drm if t in memory_frames and (t > frame_idx if reverse else t < frame_idx)]

    def select_memories(
        self,
        frame_idx: int,
        *,
        cond_frames: Sequence[int],
        memory_frames: Container[int],
        reverse: bool,
        num_frames: int | None,
        state: DistractorState,
    ) -> MemorySelection:
        base = select_memories(
            frame_idx, cond_frames=cond_frames, non_cond_frames=memory_frames, reverse=reverse,
            num_frames=num_frames, policy=self.policy,
        )
        drm = self._drm_frames(frame_idx, memory_frames, reverse, state)
        slots = self.policy.num_maskmem - 1
        ram = recent_appearance_frames(
            frame_idx, memory_frames, self._ram_ok(memory_frames), count=slots - len(drm),
            stride=self.config.ram_stride, reverse=reverse, exclude=set(drm),
        )
        memories = [m for m in base.memories if m.slot == 0] + [MemoryRef(t, 0) for t in drm]
        memories += [MemoryRef(t, slots - rank) for rank, t in reversed(list(enumerate(ram)))]
        pointers = [p for p in base.pointers if p.from_cond]
        if self.policy.use_obj_ptrs:
            pointers += [PointerRef(t, abs(frame_idx - t), True) for t in drm]
            pointers += [
                p for p in base.pointers
                if not p.from_cond and p.frame_idx not in drm and (p.frame_idx not in memory_frames or output_visible(memory_frames, p.frame_idx))
            ]
        return MemorySelection(memories=tuple(memories), pointers=tuple(pointers), pointer_window=base.pointer_window)

    def decide(self, frame_idx: int, proposals: Sequence[Candidates], state: DistractorState) -> Sequence[Keep]:
        cand = proposals[0]
        choice, quality = self._choose(frame_idx, cand, state)
        masks = cand.low_res_masks > 0  # [M, s, s]
        area = int(masks[choice].sum())
        had_history = state.tracked > 0
        state.tracked += 1
        if area >= 1:
            state.areas.append(area)
        ratio = area_ratio(area, list(state.areas)) if had_history else None
        gate = passes_drm_gate(
            frame_idx=frame_idx, chosen_iou=quality.iou, present=area >= 1 and quality.object_score > 0,
            ratio=ratio, last_added=state.last_added, config=self.config,
        )
        if gate and self.config.drm_size > 0 and masks.shape[0] > 1:
            np_masks = masks.cpu().numpy()
            others = [np_masks[j] for j in range(np_masks.shape[0]) if j != choice]
            if alternatives_disagree(np_masks[choice], others, self.config.alternative_box_iou):
                state.drm.append(frame_idx)
                del state.drm[: max(len(state.drm) - self.config.drm_size, 0)]
                state.last_added = frame_idx
        return (Keep(parent=0, candidate=choice, note=quality),)

    def retained_frames(self, frame_idx: int, *, memory_frames, reverse: bool, state: DistractorState) -> set[int]:
        after = frame_idx - 1 if reverse else frame_idx + 1  # what the next frame may attend to
        ram = recent_appearance_frames(
            after, memory_frames, self._ram_ok(memory_frames), count=self.policy.num_maskmem - 1,
            stride=self.config.ram_stride, reverse=reverse, exclude=set(state.drm),
        )
        return set(ram) | set(state.drm)

