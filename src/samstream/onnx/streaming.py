"""Live tracking on ONNX Runtime: :class:`samstream.video.streaming.StreamingTracker`'s methods
over :class:`OnnxVideoPredictor`; only what the memory bank can still attend to is kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..video.streaming_calls import StreamingCalls
from .frames import PushFrames
from .graphs import OnnxModel
from .video import FrameResult, OnnxVideoOptions, OnnxVideoPredictor, OnnxVideoSession, PromptResult


class OnnxStreamingTracker(StreamingCalls[PromptResult]):
    """Track objects in a stream fed frame by frame; prompts apply to the current frame
    (:class:`~samstream.video.streaming_calls.StreamingCalls`)."""

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

    def add_frame(self, frame) -> FrameResult:
        """Feed the next frame (HWC uint8 RGB); returns every object's masks on it (logits [N, 1, H, W])."""
        idx = self._source.push(frame)
        session = self.session
        session.video_height, session.video_width = self._source.video_height, self._source.video_width
        if not session.objects:
            return FrameResult(idx, [], np.empty((0, 1, session.video_height, session.video_width), dtype=np.float32))
        self._engine.prepare_tracking(session)
        return self._engine.track_frame(session, idx, reverse=False)

    def stored_frames(self) -> int:
        """How many per-object frame outputs are held (memory stays bounded)."""
        return sum(len(t.cond) + len(t.tracked) for t in self.session.objects.values())
