"""A memory bank that keeps only good frames: the selection shared by ``motion`` and ``multipath``.

Instead of the last ``num_maskmem - 1`` frames, a frame attends to the adjacent frame (always)
and the nearest earlier frames that pass a quality rule, ranked by recency: the nearest gets
the adjacent frame's temporal slot, the next the one before, and so on. Pure functions of
the frames in memory and their notes.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

from .selection import MemoryPolicy, MemoryRef, MemorySelection, PointerRef, select_conditioning_frames, select_memories


class Quality(NamedTuple):
    """What a strategy notes about a chosen output: the candidate's predicted IoU, the object
    score logit, and the motion IoU (IoU of the motion filter's box with the mask's box; None
    while the filter is not stable or without a filter)."""

    iou: float
    object_score: float
    motion_iou: float | None = None


def _merge_nearest(frame_idx: int, a: Iterable[int], b: Sequence[int], reverse: bool) -> Iterator[int]:
    """Frames of ``a`` (nearest first) and of ``b`` (any order) in the past of ``frame_idx``, nearest first."""
    extra = sorted((t for t in b if (t > frame_idx if reverse else t < frame_idx)), key=lambda t: abs(t - frame_idx))
    i = 0
    for t in a:
        while i < len(extra) and abs(extra[i] - frame_idx) < abs(t - frame_idx):
            yield extra[i]
            i += 1
        yield t
    yield from extra[i:]


def nearest_eligible(
    frame_idx: int,
    past: Iterable[int],
    eligible: Callable[[int], bool],
    *,
    count: int,
    reverse: bool,
    has_memory: Callable[[int], bool],
) -> list[int]:
    """The frames of a filtered bank, nearest first: the adjacent frame (frame_idx - 1, or + 1
    in reverse) when it holds a memory, whatever its quality, then the nearest frames of
    ``past`` (nearest first) that are ``eligible``; at most ``count``."""
    if count <= 0:
        return []
    adjacent = frame_idx + 1 if reverse else frame_idx - 1
    chosen = [adjacent] if has_memory(adjacent) else []
    for t in past:
        if len(chosen) >= count:
            break
        if t != adjacent and eligible(t):
            chosen.append(t)
    return chosen


def select_filtered_memories(
    frame_idx: int,
    *,
    cond_frames: Sequence[int],
    memory_frames,
    eligible: Callable[[int], bool],
    reverse: bool,
    num_frames: int | None,
    policy: MemoryPolicy,
    eligible_pointers: bool,
) -> MemorySelection:
    """The selection of a filtered bank.

    Conditioning frames and their pointers are chosen as by the reference
    (:func:`select_memories`). The spatial memories are the adjacent frame and the nearest
    ``eligible`` frames (``num_maskmem - 1`` in all, slot ``num_maskmem - 1 - rank``).
    Pointers: with ``eligible_pointers`` (SAM2Long) the same ranked frames give them, up to
    the pointer window, at offset rank + 1; otherwise (SAMURAI) the reference's window of
    every frame in memory. memory_frames: a :class:`~samstream.video.state.MemoryFrames`.
    """
    base = select_memories(
        frame_idx, cond_frames=cond_frames, non_cond_frames=memory_frames, reverse=reverse, num_frames=num_frames, policy=policy
    )
    _, unselected = select_conditioning_frames(frame_idx, cond_frames, policy.max_cond_frames_in_attn)
    unselected_set = set(unselected)

    def has_memory(t: int) -> bool:
        return t in memory_frames or t in unselected_set

    def ok(t: int) -> bool:
        return t in unselected_set or eligible(t)

    window = base.pointer_window
    slots = policy.num_maskmem - 1
    count = max(slots, window - 1 if (eligible_pointers and policy.use_obj_ptrs) else 0)
    past = _merge_nearest(frame_idx, memory_frames.before(frame_idx, reverse), unselected, reverse)
    ranked = nearest_eligible(frame_idx, past, ok, count=count, reverse=reverse, has_memory=has_memory)

    memories = [m for m in base.memories if m.slot == 0]
    memories += [MemoryRef(t, slots - rank) for rank, t in reversed(list(enumerate(ranked[:slots])))]
    if eligible_pointers:
        pointers = [p for p in base.pointers if p.from_cond]
        if policy.use_obj_ptrs:
            pointers += [PointerRef(t, rank + 1, False) for rank, t in enumerate(ranked[: window - 1])]
    else:
        pointers = list(base.pointers)
    return MemorySelection(memories=tuple(memories), pointers=tuple(pointers), pointer_window=window)


def retained_eligible(
    frame_idx: int, *, memory_frames, eligible: Callable[[int], bool], reverse: bool, count: int
) -> set[int]:
    """The frames a filtered bank may still select after ``frame_idx``: the ``count`` nearest
    eligible frames at or before it (what the streaming tracker keeps beyond the horizon)."""
    start = frame_idx - 1 if reverse else frame_idx + 1
    kept: set[int] = set()
    for t in memory_frames.before(start, reverse):
        if len(kept) >= count:
            break
        if eligible(t):
            kept.add(t)
    return kept


def note_of(memory_frames, t: int):
    """The note of frame t's output in memory (None for prompted outputs, no output, or a
    bank that keeps no notes, like the training clip forward's)."""
    out = memory_frames.get(t)
    return getattr(out, "note", None)
