"""Live tracking: frames are fed one at a time; objects, clicks and corrections can be added
on the current frame at any moment; every object's mask comes back for each frame.

Only what the memory bank can still attend to is kept (conditioning frames, the last
``num_maskmem`` frames and the object-pointer window), so memory stays flat however long
the stream runs.
"""

from __future__ import annotations

import collections

import numpy as np
import torch

from ..modeling.sam2 import SAM2Model
from .frames import FrameDroppedError, FrameIndexError, FrameSource, to_rgb_uint8
from ..prompts import CoordSpace
from ..results import FrameResult, PromptResult
from .memory import MemoryStrategy
from .predictor import VideoPredictor, VideoPredictorOptions
from .state import VideoSession


class PushFrameSource(FrameSource):
    """A frame source that frames are appended to; it keeps the last ``window`` frames."""

    _cache_rgb = False

    def __init__(self, image_size: int, *, window: int = 8, cache_size: int = 2) -> None:
        super().__init__(image_size=image_size, cache_size=cache_size)
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self._window: collections.deque[np.ndarray] = collections.deque(maxlen=window)
        self._count = 0
        self.video_height = 0
        self.video_width = 0

    @property
    def num_frames(self) -> int | None:
        return None  # a live stream has no known end

    @property
    def frames_pushed(self) -> int:
        return self._count

    def push(self, frame) -> int:
        """Append a frame (HWC uint8 RGB array, PIL image or uint8 tensor); returns its index."""
        rgb = to_rgb_uint8(frame, what=f"frame {self._count}")
        if self._count == 0:
            self.video_height, self.video_width = int(rgb.shape[0]), int(rgb.shape[1])
        elif rgb.shape[:2] != (self.video_height, self.video_width):
            raise ValueError(
                f"frame {self._count} is {rgb.shape[1]}x{rgb.shape[0]} (WxH) but the stream is "
                f"{self.video_width}x{self.video_height}"
            )
        with self._lock:
            self._window.append(rgb)
            self._count += 1
        return self._count - 1

    def _describe(self) -> str:
        return "live stream"

    def _ensure_index(self, index: int) -> None:
        if index >= self._count:
            raise FrameIndexError(f"frame {index} has not arrived yet ({self._count} frames so far)")
        oldest = self._count - len(self._window)
        if index < oldest:
            raise FrameDroppedError(f"frame {index} of the live stream is no longer kept (oldest kept: {oldest})")

    def _load_rgb(self, index: int) -> np.ndarray:
        return self._window[index - (self._count - len(self._window))]


class StreamingTracker:
    """Track objects in a live stream.

    >>> tracker = StreamingTracker(model)
    >>> for frame in camera:
    ...     result = tracker.add_frame(frame)          # masks of every object on this frame
    ...     if user_clicked:
    ...         result = tracker.add_prompt(obj_id=1, points=[[x, y]], labels=[1])

    Prompts take the same arguments as :meth:`VideoPredictor.add_prompt` and apply to the
    current (latest) frame; ``memory`` picks the memory strategy.
    """

    def __init__(
        self,
        model: SAM2Model,
        options: VideoPredictorOptions | None = None,
        *,
        memory: str | MemoryStrategy = "default",
        offload_state_to_cpu: bool = False,
    ) -> None:
        self._engine = VideoPredictor(model, options, memory=memory)
        self._source = PushFrameSource(model.image_size, window=max(2, self._engine.options.feature_cache_size))
        self.session: VideoSession = self._engine.open_session(
            self._source, offload_state_to_cpu=offload_state_to_cpu, streaming=True
        )

    @property
    def frame_idx(self) -> int:
        """Index of the current (latest) frame; -1 before the first frame."""
        return self._source.frames_pushed - 1

    @property
    def obj_ids(self) -> list[int]:
        return self.session.obj_ids

    def _require_frame(self) -> int:
        if self.frame_idx < 0:
            raise RuntimeError("no frame yet: call add_frame(frame) first")
        return self.frame_idx

    @torch.inference_mode()
    def add_frame(self, frame) -> FrameResult:
        """Feed the next frame; returns every object's masks on it (logits [N, 1, H, W])."""
        idx = self._source.push(frame)
        session = self.session
        session.video_height, session.video_width = self._source.video_height, self._source.video_width
        if not session.objects:
            empty = torch.empty(0, 1, session.video_height, session.video_width, device=session.device)
            return FrameResult(idx, [], empty)
        self._engine.prepare_tracking(session)
        return self._engine.track_frame(session, idx, reverse=False)

    def add_prompt(
        self,
        obj_id: int,
        *,
        points=None,
        labels=None,
        box=None,
        coords: CoordSpace = "pixels",
        clear_old: bool = True,
    ) -> PromptResult:
        """Clicks and/or a box for an object (new or tracked) on the current frame."""
        return self._engine.add_prompt(
            self.session,
            self._require_frame(),
            obj_id,
            points=points,
            labels=labels,
            box=box,
            coords=coords,
            clear_old=clear_old,
        )

    def add_mask(self, obj_id: int, mask) -> PromptResult:
        """A mask [H, W] for an object on the current frame."""
        return self._engine.add_mask(self.session, self._require_frame(), obj_id, mask)

    def remove_object(self, obj_id: int) -> list[int]:
        """Stop tracking an object; returns the remaining ids."""
        return self._engine.remove_object(self.session, obj_id, strict=True).obj_ids

    def stored_frames(self) -> int:
        """How many per-object frame outputs are held (for checking that memory stays bounded)."""
        return sum(len(t.cond) + sum(len(h.tracked) for h in t.hypotheses) for t in self.session.objects.values())
