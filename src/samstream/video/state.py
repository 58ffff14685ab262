"""Typed state of a video session: prompts and per-object, per-frame outputs.

Sessions hold data; the logic lives in :mod:`samstream.video.predictor`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

from ..modeling.memory_cache import MemoryProjectionCache
from ..modeling.sam2 import FrameFeatures
from .session_core import SessionLookups, TrackLookups
from .sources import FrameSource


@dataclass
class FrameOutput:
    """One object's result on one frame.

    pred_masks: low-res mask logits [1, 1, S/4, S/4] (after hole filling); obj_ptr [1, C];
    object_score_logits [1, 1]; ious [1, M]: the predicted IoU of each of the M candidates the
    heads proposed (M = 1 without multimask); box [1, 4]: (x0, y0, x1, y1) of the mask in [0, 1]
    coordinates of the frame (zeros for an empty mask); maskmem_features [1, C_mem, S/16, S/16]
    in bfloat16, or None until the memory encoder has run; in_memory: False when the memory
    strategy kept this output out of the memory bank (no memory, no pointer); note: what the
    memory strategy recorded about this output when it chose it (its own data, e.g. the chosen
    candidate's predicted IoU; None for prompted outputs and under the default strategy).
    """

    pred_masks: torch.Tensor
    obj_ptr: torch.Tensor
    object_score_logits: torch.Tensor
    ious: torch.Tensor
    box: torch.Tensor
    maskmem_features: torch.Tensor | None = None
    in_memory: bool = True
    note: Any = None


@dataclass
class PointPrompt:
    """Clicks of one object on one frame: coords [1, N, 2] in model-input pixels, labels [1, N]."""

    coords: torch.Tensor
    labels: torch.Tensor


@dataclass
class Hypothesis:
    """One pathway of an object's memory: the outputs of the frames tracked along it.

    ``score`` belongs to the memory strategy (e.g. a cumulative confidence); the object's
    first hypothesis is the one whose masks are returned.
    """

    tracked: dict[int, FrameOutput] = field(default_factory=dict)
    score: float = 0.0


class MemoryFrames:
    """The frames of a hypothesis whose outputs are in the memory bank (a read-only view).

    ``t in frames`` tells whether frame t holds a memory; :meth:`get` gives its output and
    :meth:`before` walks the memories back in time (in the tracking direction).
    """

    __slots__ = ("_tracked",)

    def __init__(self, tracked: dict[int, FrameOutput]) -> None:
        self._tracked = tracked

    def __contains__(self, frame_idx: object) -> bool:
        out = self._tracked.get(frame_idx)  # type: ignore[call-overload]
        return out is not None and out.in_memory

    def get(self, frame_idx: int) -> FrameOutput | None:
        """The output of frame ``frame_idx`` if it is in memory, else None."""
        out = self._tracked.get(frame_idx)
        return out if out is not None and out.in_memory else None

    def before(self, frame_idx: int, reverse: bool = False, step: int = 1) -> Iterator[int]:
        """Frames in memory at ``frame_idx - step``, ``frame_idx - 2 step``, ... (``+`` when
        ``reverse``): the past in the tracking direction, nearest first."""
        tracked = self._tracked
        if not tracked or step < 1:
            return
        sign = 1 if reverse else -1
        span = (max(tracked) - frame_idx) if reverse else (frame_idx - min(tracked))
        if span > 4 * len(tracked):  # sparse (a stream keeping a few old frames): go through the keys
            past = [t for t in tracked if (t - frame_idx) * sign > 0 and (t - frame_idx) % step == 0]
            for t in sorted(past, key=lambda t: abs(t - frame_idx)):
                if t in self:
                    yield t
            return
        for k in range(1, span // step + 1):
            t = frame_idx + sign * k * step
            if t in self:
                yield t


@dataclass
class ObjectTrack(TrackLookups[FrameOutput]):
    """Everything known about one object.

    ``cond`` holds conditioning frames (prompted), shared by every hypothesis; each hypothesis
    holds the frames produced by propagation along it (``tracked`` is the first one's);
    ``pending_*`` hold prompt results whose memory is not encoded yet (they move into ``cond``
    / ``tracked`` when propagation starts). ``directions`` records, per frame processed,
    whether it was reached while tracking in reverse. ``memory_state`` is the memory
    strategy's own per-object state (e.g. a motion filter), never shared between objects.
    :meth:`pending` and :meth:`output_at` come from :class:`~samstream.video.session_core.TrackLookups`.
    """

    obj_id: int
    points: dict[int, PointPrompt] = field(default_factory=dict)
    masks: dict[int, torch.Tensor] = field(default_factory=dict)
    cond: dict[int, FrameOutput] = field(default_factory=dict)
    hypotheses: list[Hypothesis] = field(default_factory=lambda: [Hypothesis()])
    pending_cond: dict[int, FrameOutput] = field(default_factory=dict)
    pending_tracked: dict[int, FrameOutput] = field(default_factory=dict)
    directions: dict[int, bool] = field(default_factory=dict)
    memory_state: Any = None

    @property
    def tracked(self) -> dict[int, FrameOutput]:
        """Tracked outputs of the hypothesis whose masks are returned."""
        return self.hypotheses[0].tracked

    def clear(self) -> None:
        for d in (self.points, self.masks, self.cond, self.pending_cond, self.pending_tracked, self.directions):
            d.clear()
        self.hypotheses = [Hypothesis()]
        self.memory_state = None


@dataclass
class VideoSession(SessionLookups):
    """A video being segmented: its frames, its objects and caches.

    ``frames`` decodes on demand; ``features`` keeps the image features of a few recently
    visited frames; ``maskmem_pos_enc`` [1, C_mem, h, w] is the same for every memory and is
    kept once. In ``streaming`` mode, outputs the memory bank can no longer reach are dropped.
    ``projection_cache`` keeps the memory-attention keys and values of the memories in use.
    """

    frames: FrameSource
    video_height: int
    video_width: int
    device: torch.device
    storage_device: torch.device
    streaming: bool = False
    feature_cache_size: int = 2
    objects: "OrderedDict[int, ObjectTrack]" = field(default_factory=OrderedDict)
    features: "OrderedDict[int, FrameFeatures]" = field(default_factory=OrderedDict)
    maskmem_pos_enc: torch.Tensor | None = None
    # projected keys and values of the memories in use (samstream.modeling.memory_cache);
    # None: every frame projects its memories again, as the reference does
    projection_cache: MemoryProjectionCache | None = field(default_factory=MemoryProjectionCache)
