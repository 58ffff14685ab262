"""Which memories a frame attends to: a pure function of the frame, the direction of
tracking and the frames that hold memories, so it can be tested without a model.

Plain Python (no torch): the PyTorch tracker (:mod:`samstream.video.memory`, which re-exports
these names from ``samstream.video.memory.selection``) and the ONNX runtime
(:mod:`samstream.onnx`) share it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Container, NamedTuple, Sequence


@dataclass(frozen=True)
class MemoryPolicy:
    """The model settings that shape the memory bank (see :class:`samstream.config.SAM2Config`)."""

    num_maskmem: int = 7
    max_cond_frames_in_attn: int = -1
    memory_temporal_stride: int = 1
    use_obj_ptrs: bool = True
    max_obj_ptrs: int = 16
    only_obj_ptrs_in_the_past: bool = True
    signed_ptr_offsets: bool = False

    @classmethod
    def from_config(cls, config, *, training: bool = False) -> "MemoryPolicy":
        """The policy of a model config. In training, memories are taken at stride 1 and
        pointers of conditioning frames after the current one are allowed (as the reference trains)."""
        return cls(
            num_maskmem=config.num_maskmem,
            max_cond_frames_in_attn=config.max_cond_frames_in_attn,
            memory_temporal_stride=1 if training else config.memory_temporal_stride_for_eval,
            use_obj_ptrs=config.use_obj_ptrs_in_encoder,
            max_obj_ptrs=config.max_obj_ptrs_in_encoder,
            only_obj_ptrs_in_the_past=False if training else config.only_obj_ptrs_in_the_past_for_eval,
            signed_ptr_offsets=config.use_signed_tpos_enc_to_obj_ptrs,
        )

    def horizon(self) -> int:
        """How many frames back (in the tracking direction) a memory or pointer can come from."""
        stride = max(self.memory_temporal_stride, 1)
        ptr = self.max_obj_ptrs if self.use_obj_ptrs else 0
        return max(self.num_maskmem * stride + 2, ptr)


class MemoryRef(NamedTuple):
    """A past frame's spatial memory attended to. ``slot`` is the temporal slot: 0 for a selected
    conditioning frame, else 1..num_maskmem-1 where num_maskmem-1 is the adjacent frame (a
    tracked frame, or a conditioning frame left out of the selection)."""

    frame_idx: int
    slot: int


class PointerRef(NamedTuple):
    """A past frame's object pointer attended to, with its temporal ``offset`` to the current
    frame; ``from_cond`` when it comes from a selected conditioning frame."""

    frame_idx: int
    offset: int
    from_cond: bool


@dataclass(frozen=True)
class MemorySelection:
    """The memory bank of one frame: the spatial memories and object pointers it attends to.

    ``pointer_window`` normalizes the pointers' temporal offsets (encodings use offset / (window - 1)).
    The selection is hashable: objects with equal selections are batched together.
    """

    memories: tuple[MemoryRef, ...]
    pointers: tuple[PointerRef, ...]
    pointer_window: int


def select_conditioning_frames(
    frame_idx: int, cond_frames: Sequence[int], max_cond_frames: int
) -> tuple[list[int], list[int]]:
    """Choose at most ``max_cond_frames`` conditioning frames (all when -1): the closest before
    the frame, the closest at or after it, then the temporally closest others.

    Returns (selected, unselected): selected in the order chosen (before, after, then the
    nearest others), unselected in the order of ``cond_frames``.
    """
    frames = list(cond_frames)
    if max_cond_frames == -1 or len(frames) <= max_cond_frames:
        return frames, []
    if max_cond_frames < 2:
        raise ValueError("max_cond_frames_in_attn must allow at least 2 conditioning frames")
    chosen: list[int] = []
    before = [t for t in frames if t < frame_idx]
    after = [t for t in frames if t >= frame_idx]
    if before:
        chosen.append(max(before))
    if after:
        chosen.append(min(after))
    rest = sorted((t for t in frames if t not in chosen), key=lambda t: abs(t - frame_idx))
    chosen.extend(rest[: max_cond_frames - len(chosen)])
    selected = [t for t in chosen]
    unselected = [t for t in frames if t not in chosen]
    return selected, unselected


def select_memories(
    frame_idx: int,
    *,
    cond_frames: Sequence[int],
    non_cond_frames: Container[int],
    reverse: bool,
    num_frames: int | None,
    policy: MemoryPolicy,
) -> MemorySelection:
    """The memories and object pointers a (non-initial) frame attends to.

    cond_frames: frames with conditioning outputs, in insertion order; non_cond_frames: frames
    with tracked outputs. ``num_frames`` is None for a live stream of unknown length.
    """
    selected, unselected = select_conditioning_frames(frame_idx, cond_frames, policy.max_cond_frames_in_attn)
    unselected_set = set(unselected)

    def has_memory(t: int) -> bool:
        return t in non_cond_frames or t in unselected_set

    memories: list[MemoryRef] = [MemoryRef(t, 0) for t in selected]
    stride = policy.memory_temporal_stride
    for slot in range(1, policy.num_maskmem):
        back = policy.num_maskmem - slot  # frames back from the current one
        if back == 1:
            t = frame_idx + 1 if reverse else frame_idx - 1
        elif not reverse:
            t = ((frame_idx - 2) // stride) * stride - (back - 2) * stride
        else:
            t = -(-(frame_idx + 2) // stride) * stride + (back - 2) * stride
        if has_memory(t):
            memories.append(MemoryRef(t, slot))

    pointers: list[PointerRef] = []
    window = policy.max_obj_ptrs if num_frames is None else min(num_frames, policy.max_obj_ptrs)
    if policy.use_obj_ptrs:
        sign = -1 if reverse else 1
        for t in selected:
            if policy.only_obj_ptrs_in_the_past and not (t >= frame_idx if reverse else t <= frame_idx):
                continue
            offset = (frame_idx - t) * sign if policy.signed_ptr_offsets else abs(frame_idx - t)
            pointers.append(PointerRef(t, offset, True))
        for dt in range(1, window):
            t = frame_idx + dt if reverse else frame_idx - dt
            if t < 0 or (num_frames is not None and t >= num_frames):
                break
            if has_memory(t):
                pointers.append(PointerRef(t, dt, False))
    return MemorySelection(memories=tuple(memories), pointers=tuple(pointers), pointer_window=window)
