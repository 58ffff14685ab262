"""The bookkeeping of a video session that does not touch a mask, shared by
:class:`samstream.video.predictor.VideoPredictor` (torch) and
:class:`samstream.onnx.video.OnnxVideoPredictor` (numpy): checking frame and object indices,
looking up an object's outputs, the feature cache, the frames a propagation visits, and
forgetting prompts and objects.

It works on either side's sessions and tracks, which have the same fields (``frames``,
``objects``, ``features``, ``feature_cache_size``; per track ``points``, ``masks``, ``cond``,
``tracked``, ``pending_cond``, ``pending_tracked``, ``directions``). It imports no torch: the
ONNX runtime runs without it.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterable, Iterator, NamedTuple, TypeVar

from ..prompt_checks import check_index

FeaturesT = TypeVar("FeaturesT")  # a side's image features of one frame
OutputT = TypeVar("OutputT")  # a side's FrameOutput


class RemovedObject(NamedTuple):
    """What removing an object leaves: the remaining ids, and the frames where the removed
    object had prompts (their consolidated masks changed)."""

    obj_ids: list[int]
    prompted_frames: list[int]


class PromptFrame(NamedTuple):
    """How a prompt on a frame is taken: ``is_init``, the object was never processed there (a
    new conditioning frame); ``reverse``, the direction the frame was reached in (False when
    new); ``is_cond``, the result becomes a conditioning frame (else a corrected tracked one)."""

    is_init: bool
    reverse: bool
    is_cond: bool


class TrackLookups(Generic[OutputT]):
    """The lookups of an object's track (a base of each side's ``ObjectTrack`` dataclass, which
    holds ``cond``, ``tracked``, ``pending_cond`` and ``pending_tracked``: frame -> output)."""

    __slots__ = ()

    def pending(self, is_cond: bool) -> dict[int, OutputT]:
        """The prompt results not in memory yet: conditioning ones, else tracked corrections."""
        return self.pending_cond if is_cond else self.pending_tracked  # type: ignore[attr-defined]

    def output_at(self, frame_idx: int, prefer_cond_pending: bool | None = None) -> OutputT | None:
        """The newest output on a frame: pending (of the given kind), then conditioning, then tracked."""
        if prefer_cond_pending is not None:
            out = self.pending(prefer_cond_pending).get(frame_idx)
            if out is not None:
                return out
        return self.cond.get(frame_idx) or self.tracked.get(frame_idx)  # type: ignore[attr-defined]


class SessionLookups:
    """The lookups of a session (a base of each side's session dataclass, which holds ``frames``
    and ``objects``: obj_id -> track, in the order objects were added)."""

    __slots__ = ()

    @property
    def num_frames(self) -> int | None:
        """The video's length; None for a live source."""
        return self.frames.num_frames  # type: ignore[attr-defined]

    @property
    def obj_ids(self) -> list[int]:
        return list(self.objects)  # type: ignore[attr-defined]


def check_frame(session, frame_idx, what: str = "frame_idx") -> int:
    """``frame_idx`` as int, inside the video (IndexError naming ``what``); on a live source of
    unknown length, a frame the source still holds."""
    frame_idx = check_index(frame_idx, what)
    n = session.num_frames
    if frame_idx < 0 or (n is not None and frame_idx >= n):
        valid = f"0..{n - 1}" if n is not None else ">= 0"
        raise IndexError(f"{what} {frame_idx} is outside the video (valid: {valid})")
    if n is None and not session.frames.has_frame(frame_idx):
        raise IndexError(f"{what} {frame_idx} is not available from this live source")
    return frame_idx


def check_target(session, frame_idx, obj_id) -> tuple[int, int]:
    """The frame and the object id a prompt is for, checked: (frame_idx, obj_id)."""
    return check_frame(session, frame_idx), check_index(obj_id, "obj_id")


def check_click_prompt(points, labels, box, *, clear_old: bool) -> None:
    """Clicks and/or a box were given, and a box replaces the frame's earlier clicks."""
    if points is None and labels is None and box is None:
        raise ValueError("give points with labels, or a box")
    if box is not None and not clear_old:
        raise ValueError("a box must come before any click: use clear_old=True with a box")


def existing_track(session, obj_id):
    """The track of an object the session has (KeyError listing the ids otherwise)."""
    obj_id = check_index(obj_id, "obj_id")
    track = session.objects.get(obj_id)
    if track is None:
        raise KeyError(f"unknown object id {obj_id}; existing ids: {session.obj_ids}")
    return track


def prompt_frame(track, frame_idx: int, *, add_all_frames_to_correct_as_cond: bool) -> PromptFrame:
    """How a new prompt of ``track`` on ``frame_idx`` is taken (see :class:`PromptFrame`)."""
    is_init = frame_idx not in track.directions
    reverse = False if is_init else track.directions[frame_idx]
    return PromptFrame(is_init, reverse, is_init or add_all_frames_to_correct_as_cond)


def has_pending_cond(session, frame_idx: int) -> bool:
    """Whether some object's prompt on the frame waits to become a conditioning frame."""
    return any(frame_idx in tr.pending_cond for tr in session.objects.values())


def cached_features(session, frame_idx: int, encode: Callable[[int], FeaturesT]) -> FeaturesT:
    """A frame's image features from ``session.features``, else ``encode(frame_idx)``, kept for
    the ``session.feature_cache_size`` most recently used frames."""
    cache = session.features
    feats = cache.get(frame_idx)
    if feats is not None:
        cache.move_to_end(frame_idx)
        return feats
    feats = encode(frame_idx)
    cache[frame_idx] = feats
    while len(cache) > session.feature_cache_size:
        cache.popitem(last=False)
    return feats


def propagation_order(session, *, start_frame_idx: int | None, max_frames: int | None, reverse: bool) -> Iterable[int]:
    """The frames a propagation visits: from ``start_frame_idx`` (default: the first prompted
    frame), forward or in ``reverse``, at most ``max_frames`` after the start; forward on a
    source of unknown length, until it runs out."""
    n = session.num_frames
    if start_frame_idx is None:
        start_frame_idx = min(t for tr in session.objects.values() for t in tr.cond)
    start_frame_idx = check_frame(session, start_frame_idx, "start_frame_idx")
    if max_frames is not None and (isinstance(max_frames, bool) or int(max_frames) < 0):
        raise ValueError(f"max_frames must be >= 0, got {max_frames}")
    limit = None if max_frames is None else int(max_frames)
    if reverse:
        end = 0 if limit is None else max(start_frame_idx - limit, 0)
        return range(start_frame_idx, end - 1, -1) if start_frame_idx > 0 else range(0)
    if n is None:
        return _frames_until_exhausted(session, start_frame_idx, limit)
    end = n - 1 if limit is None else min(start_frame_idx + limit, n - 1)
    return range(start_frame_idx, end + 1)


def _frames_until_exhausted(session, start: int, limit: int | None) -> Iterator[int]:
    t = start
    while (limit is None or t <= start + int(limit)) and session.frames.has_frame(t):
        yield t
        t += 1


def out_of_reach(frames: Iterable[int], frame_idx: int, *, reverse: bool, horizon: int) -> list[int]:
    """The frames more than ``horizon`` frames behind ``frame_idx`` in the tracking direction."""
    return [t for t in frames if (t - frame_idx if reverse else frame_idx - t) > horizon]


def forget_directions(track, frame_idx: int, *, reverse: bool, horizon: int) -> None:
    """Streaming: drop the direction records of frames out of reach (conditioning frames keep theirs)."""
    for t in out_of_reach(track.directions, frame_idx, reverse=reverse, horizon=horizon):
        if t not in track.cond:
            del track.directions[t]


def drop_prompts(track, frame_idx: int):
    """Forget an object's prompts on a frame; returns its conditioning output there (None if it
    had none), which the caller keeps as a tracked output."""
    for d in (track.points, track.masks, track.pending_cond, track.pending_tracked):
        d.pop(frame_idx, None)
    out = track.cond.pop(frame_idx, None)
    if out is not None:
        track.directions.pop(frame_idx, None)
    return out


def remove_track(session, obj_id, *, strict: bool, reset: Callable[[], None]) -> RemovedObject:
    """Remove an object from the session (``strict``: an unknown id is a KeyError); removing the
    last one calls ``reset`` (the predictor's session reset) instead."""
    obj_id = check_index(obj_id, "obj_id")
    if obj_id not in session.objects:
        if strict:
            raise KeyError(f"cannot remove object id {obj_id}: it does not exist (ids: {session.obj_ids})")
        return RemovedObject(session.obj_ids, [])
    if len(session.objects) == 1:
        reset()
        return RemovedObject(session.obj_ids, [])
    track = session.objects.pop(obj_id)
    return RemovedObject(session.obj_ids, sorted(set(track.points) | set(track.masks)))
