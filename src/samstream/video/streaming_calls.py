"""The calls a streaming tracker answers on its current frame, shared by
:class:`samstream.video.streaming.StreamingTracker` (torch) and
:class:`samstream.onnx.streaming.OnnxStreamingTracker` (numpy): the frame index, the object
ids, and prompts and removals passed on to the tracker's video predictor. It imports no torch:
the ONNX runtime runs without it.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from ..prompt_checks import CoordSpace

R = TypeVar("R")  # the predictor's prompt result


class StreamingCalls(Generic[R]):
    """A base of the streaming trackers, which set ``_engine`` (a video predictor), ``_source``
    (the push source the frames go to, counting ``frames_pushed``) and ``session`` (the
    engine's session over that source)."""

    _engine: Any
    _source: Any
    session: Any

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

    def add_prompt(
        self,
        obj_id: int,
        *,
        points=None,
        labels=None,
        box=None,
        coords: CoordSpace = "pixels",
        clear_old: bool = True,
    ) -> R:
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

    def add_mask(self, obj_id: int, mask) -> R:
        """A mask [H, W] for an object on the current frame."""
        return self._engine.add_mask(self.session, self._require_frame(), obj_id, mask)

    def remove_object(self, obj_id: int) -> list[int]:
        """Stop tracking an object; returns the remaining ids."""
        return self._engine.remove_object(self.session, obj_id, strict=True).obj_ids
