"""Live tracking on ONNX Runtime: :class:`samstream.video.streaming.StreamingTracker`'s methods
over :class:`OnnxVideoPredictor`; only what the memory bank can still attend to is kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .frames import PushFrames
from .graphs import OnnxModel
from .video import FrameResult, OnnxVideoOptions, OnnxVideoPredictor, OnnxVideoSession, PromptResult


class OnnxStreamingTracker:
    """Track objects in a stream fed frame by frame; prompts apply to the current frame."""

    def __init__(
        self,
        export_dir: str | Path | OnnxModel,
        options: OnnxVideoOptions | None = None,
        *,
        providers: list[str] | None = None,
        num_threads: int | None = None,
    ) -> None:
        self._engine = OnnxVideoPredictor(export_dir, options, providers=providers, num_threads=num_threads)
        self._source = PushFrames(self._engine.image_size, window=max(2, self._engine.options.feature_cache_size))
        self.session: OnnxVideoSession = self._engine.open_session(self._source, streaming=True)

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

    def add_frame(self, frame) -> FrameResult:
        """Feed the next frame (HWC uint8 RGB); returns every object's masks on it (logits [N, 1, H, W])."""
        idx = self._source.push(frame)
        session = self.session
        session.video_height, session.video_width = self._source.video_height, self._source.video_width
        if not session.objects:
            return FrameResult(idx, [], np.empty((0, 1, session.video_height, session.video_width), dtype=np.float32))
        self._engine.prepare_tracking(session)
        return self._engine.track_frame(session, idx, reverse=False)

    def add_prompt(self, obj_id: int, *, points=None, labels=None, box=None, coords: str = "pixels", clear_old: bool = True) -> PromptResult:
        """Clicks and/or a box for an object (new or tracked) on the current frame."""
        return self._engine.add_prompt(
            self.session, self._require_frame(), obj_id, points=points, labels=labels, box=box, coords=coords, clear_old=clear_old
        )

    def add_mask(self, obj_id: int, mask) -> PromptResult:
        """A mask [H, W] for an object on the current frame."""
        return self._engine.add_mask(self.session, self._require_frame(), obj_id, mask)

    def remove_object(self, obj_id: int) -> list[int]:
        """Stop tracking an object; returns the remaining ids."""
        return self._engine.remove_object(self.session, obj_id, strict=True).obj_ids

    def stored_frames(self) -> int:
        """How many per-object frame outputs are held (memory stays bounded)."""
        return sum(len(t.cond) + len(t.tracked) for t in self.session.objects.values())
