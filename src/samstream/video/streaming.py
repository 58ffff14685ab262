"""Live tracking: frames are fed one at a time; objects, clicks and corrections can be added
on the current frame at any moment; every object's mask comes back for each frame.

Only what the memory bank can still attend to is kept (conditioning frames, the last
``num_maskmem`` frames and the object-pointer window), so memory stays flat however long
the stream runs.
"""

from __future__ import annotations

import torch

from ..modeling.sam2 import SAM2Model
from ..results import FrameResult, PromptResult
from .discovery import ObjectDiscovery
from .memory.registry import MemorySpec
from .predictor import VideoPredictor, VideoPredictorOptions
from .sources import PushFrameSource
from .state import VideoSession
from .streaming_calls import StreamingCalls


class StreamingTracker(StreamingCalls[PromptResult]):
    """Track objects in a live stream.

    >>> tracker = StreamingTracker(model)
    >>> for frame in camera:
    ...     result = tracker.add_frame(frame)          # masks of every object on this frame
    ...     if user_clicked:
    ...         result = tracker.add_prompt(obj_id=1, points=[[x, y]], labels=[1])

    Prompts take the same arguments as :meth:`VideoPredictor.add_prompt` and apply to the
    current (latest) frame (the calls of
    :class:`~samstream.video.streaming_calls.StreamingCalls`); ``memory`` picks the memory
    strategy (a name, an object, or ``{obj_id: name}``). With ``discovery`` (an
    :class:`~samstream.video.discovery.ObjectDiscovery`, e.g. over a ``TextFinder`` for
    phrases) objects are found on the first frame and every ``detect_every`` frames after it,
    added with new ids, and dropped when their detections stop (``drop_after``);
    ``tracker.labels`` says what each object is.

    Fixed-lag output (``options.output_lag`` N > 0, for strategies that keep several
    hypotheses): ``add_frame`` still returns the live masks of the new frame, and
    :attr:`settled` then holds the final masks of frame ``frame_idx - N``, taken along each
    object's best hypothesis now (None for the first N frames); :meth:`finish` gives the
    last N frames' when the stream ends.
    """

    def __init__(
        self,
        model: SAM2Model,
        options: VideoPredictorOptions | None = None,
        *,
        memory: MemorySpec = "default",
        offload_state_to_cpu: bool = False,
        discovery: ObjectDiscovery | None = None,
    ) -> None:
        if discovery is not None and not isinstance(discovery, ObjectDiscovery):
            raise TypeError(f"discovery must be an ObjectDiscovery, got {type(discovery).__name__}")
        self.discovery = discovery
        self._engine = VideoPredictor(model, options, memory=memory)
        self._source = PushFrameSource(model.image_size, window=max(2, self._engine.options.feature_cache_size))
        self.session: VideoSession = self._engine.open_session(
            self._source, offload_state_to_cpu=offload_state_to_cpu, streaming=True
        )
        self.settled: FrameResult | None = None
        self._next_settled = 0

    @property
    def labels(self) -> dict[int, str]:
        """obj_id -> label of the objects discovery added (empty without discovery)."""
        return self.discovery.labels if self.discovery is not None else {}

    @torch.inference_mode()
    def add_frame(self, frame) -> FrameResult:
        """Feed the next frame; returns every object's masks on it (logits [N, 1, H, W])."""
        idx = self._source.push(frame)
        session = self.session
        session.video_height, session.video_width = self._source.video_height, self._source.video_width
        result: FrameResult | None = None
        if session.objects:
            self._engine.prepare_tracking(session)
            result = self._engine.track_frame(session, idx, reverse=False)
        if self.discovery is not None and self.discovery.due(idx):
            result = self.discovery.step(self._engine, session, idx, result)
        if result is None:
            empty = torch.empty(0, 1, session.video_height, session.video_width, device=session.device)
            result = FrameResult(idx, [], empty)
        self.settled = self._settle(idx - self.output_lag) if self.output_lag else None
        return result

    @property
    def output_lag(self) -> int:
        return self._engine.options.output_lag

    def _settle(self, frame_idx: int) -> FrameResult | None:
        if frame_idx < self._next_settled:
            return None
        self._next_settled = frame_idx + 1
        return self._engine.settled_result(self.session, frame_idx)

    @torch.inference_mode()
    def finish(self) -> list[FrameResult]:
        """The end of the stream with a fixed lag: the final masks of the frames not settled yet."""
        if not self.output_lag:
            return []
        return [r for t in range(self._next_settled, self.frame_idx + 1) if (r := self._settle(t)) is not None]

    def stored_frames(self) -> int:
        """How many per-object frame outputs are held (for checking that memory stays bounded)."""
        return sum(len(t.cond) + sum(len(h.tracked) for h in t.hypotheses) for t in self.session.objects.values())
