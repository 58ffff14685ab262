"""Typed state of a video session: prompts and per-object, per-frame outputs.

Sessions hold data; the logic lives in :mod:`samstream.video.predictor`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from ..modeling.sam2 import FrameFeatures
from .sources import FrameSource


@dataclass
class FrameOutput:
    """One object's result on one frame.

    pred_masks: low-res mask logits [1, 1, S/4, S/4] (after hole filling); obj_ptr [1, C];
    object_score_logits [1, 1]; maskmem_features [1, C_mem, S/16, S/16] in bfloat16, or None
    until the memory encoder has run on this output.
    """

    pred_masks: torch.Tensor
    obj_ptr: torch.Tensor
    object_score_logits: torch.Tensor
    maskmem_features: torch.Tensor | None = None


@dataclass
class PointPrompt:
    """Clicks of one object on one frame: coords [1, N, 2] in model-input pixels, labels [1, N]."""

    coords: torch.Tensor
    labels: torch.Tensor


@dataclass
class ObjectTrack:
    """Everything known about one object.

    ``cond`` holds conditioning frames (prompted), ``tracked`` the frames produced by
    propagation; ``pending_*`` hold prompt results whose memory is not encoded yet (they move
    into ``cond`` / ``tracked`` when propagation starts). ``directions`` records, per frame
    processed, whether it was reached while tracking in reverse.
    """

    obj_id: int
    points: dict[int, PointPrompt] = field(default_factory=dict)
    masks: dict[int, torch.Tensor] = field(default_factory=dict)
    cond: dict[int, FrameOutput] = field(default_factory=dict)
    tracked: dict[int, FrameOutput] = field(default_factory=dict)
    pending_cond: dict[int, FrameOutput] = field(default_factory=dict)
    pending_tracked: dict[int, FrameOutput] = field(default_factory=dict)
    directions: dict[int, bool] = field(default_factory=dict)

    def pending(self, is_cond: bool) -> dict[int, FrameOutput]:
        return self.pending_cond if is_cond else self.pending_tracked

    def output_at(self, frame_idx: int, prefer_cond_pending: bool | None = None) -> FrameOutput | None:
        """The newest output on a frame: pending (of the given kind), then conditioning, then tracked."""
        if prefer_cond_pending is not None:
            out = self.pending(prefer_cond_pending).get(frame_idx)
            if out is not None:
                return out
        return self.cond.get(frame_idx) or self.tracked.get(frame_idx)

    def clear(self) -> None:
        for d in (self.points, self.masks, self.cond, self.tracked, self.pending_cond, self.pending_tracked, self.directions):
            d.clear()


@dataclass
class VideoSession:
    """A video being segmented: its frames, its objects and caches.

    ``frames`` decodes on demand; ``features`` keeps the image features of a few recently
    visited frames; ``maskmem_pos_enc`` [1, C_mem, h, w] is the same for every memory and is
    kept once. In ``streaming`` mode, outputs the memory bank can no longer reach are dropped.
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

    @property
    def num_frames(self) -> int | None:
        return self.frames.num_frames

    @property
    def obj_ids(self) -> list[int]:
        return list(self.objects)
