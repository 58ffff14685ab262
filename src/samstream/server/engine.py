"""What the server asks of the predictors, as jobs for the model worker.

No model logic lives here: every call goes to :class:`~samstream.video.predictor.VideoPredictor`
(an image is a one-frame video), to the automatic mask generator or to an object proposer
(text prompts); this module turns their results into the session's stored masks and the
stream of propagation events.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, NamedTuple

import numpy as np

from ..detect.base import ObjectProposer
from ..image.automatic import AutomaticMaskConfig, AutomaticMaskGenerator, GeneratedMask
from ..modeling.sam2 import SAM2Model
from ..results import FrameResult
from ..io.labels import ObjectLabel
from ..video.predictor import VideoPredictor
from .masks import ObjectMask, encode_frame
from .sessions import Propagation, ServerSession

Direction = Literal["forward", "backward", "both"]


@dataclass(frozen=True)
class PropagationPlan:
    """The passes of one propagation: (reverse, start frame, frames in the pass), in order."""

    passes: tuple[tuple[bool, int, int], ...]
    max_frames: int | None

    @property
    def total(self) -> int:
        return sum(count for _, _, count in self.passes)


def plan_propagation(
    num_frames: int, start: int, direction: Direction, max_frames: int | None
) -> PropagationPlan:
    """Which frames a propagation visits: forward runs from ``start`` to the end (or
    ``max_frames`` frames after it), backward from ``start`` down to 0, both does forward
    then backward. Counts match :meth:`VideoPredictor.propagate`."""
    passes = []
    if direction in ("forward", "both"):
        end = num_frames - 1 if max_frames is None else min(start + max_frames, num_frames - 1)
        passes.append((False, start, end - start + 1))
    if direction in ("backward", "both"):
        end = 0 if max_frames is None else max(start - max_frames, 0)
        passes.append((True, start, start - end + 1 if start > 0 else 0))
    return PropagationPlan(tuple(passes), max_frames)


class TextObject(NamedTuple):
    """An object added from a phrase: its id, phrase, detector score and box [4] (x0, y0, x1, y1 pixels)."""

    obj_id: int
    label: str
    score: float
    box: tuple[float, float, float, float]


class TextOutcome(NamedTuple):
    """What a phrase added on a frame: the new objects (best detection first), every object's
    masks on that frame afterwards, and how many detections the proposer made."""

    added: list[TextObject]
    masks: dict[int, ObjectMask]
    found: int


class Engine:
    """The model and its predictor; every method runs on the model worker."""

    def __init__(self, model: SAM2Model, *, memory: str = "default") -> None:
        self.model = model
        self.memory = memory
        self.predictor = VideoPredictor(model, memory=memory)

    @property
    def image_size(self) -> int:
        return self.model.image_size

    # ------------------------------------------------------------------ sessions
    def open_image(self, rgb: np.ndarray):
        """A one-frame tracker session for an image [H, W, 3] uint8."""
        return self.predictor.open_session(rgb[None], offload_state_to_cpu=True)

    def open_video(self, source, *, streaming: bool):
        """A tracker session over an already opened frame source (decoded on demand)."""
        return self.predictor.open_session(source, offload_state_to_cpu=True, streaming=streaming)

    # ------------------------------------------------------------------ results -> stored masks
    def _record(self, session: ServerSession, result: FrameResult) -> dict[int, ObjectMask]:
        """Store a frame's masks of every object with an output there, and return them."""
        tracker = session.tracker
        scores = [self.predictor.object_score_logits(tracker, o, result.frame_idx) for o in result.obj_ids]
        masks = result.binary_masks().cpu().numpy()
        encoded = encode_frame(result.obj_ids, masks, scores)
        session.masks.put(result.frame_idx, encoded)
        return encoded

    # ------------------------------------------------------------------ prompts
    def add_prompt(
        self,
        session: ServerSession,
        frame_idx: int,
        obj_id: int,
        *,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        coords: str = "pixels",
    ) -> dict[int, ObjectMask]:
        result = self.predictor.add_prompt(
            session.tracker, frame_idx, obj_id, points=points, labels=labels, box=box, coords=coords, clear_old=True
        )
        with session.lock:
            session.prompted.setdefault(obj_id, set()).add(frame_idx)
        return self._record(session, result.result())

    def add_mask(self, session: ServerSession, frame_idx: int, obj_id: int, mask: np.ndarray) -> dict[int, ObjectMask]:
        result = self.predictor.add_mask(session.tracker, frame_idx, obj_id, mask)
        with session.lock:
            session.prompted.setdefault(obj_id, set()).add(frame_idx)
        return self._record(session, result.result())

    def clear_prompts(self, session: ServerSession, frame_idx: int, obj_id: int) -> tuple[dict[int, ObjectMask], bool]:
        """Clear an object's prompts on a frame. An object left with no prompt at all is
        removed (nothing could track it). Returns the frame's masks and whether it was removed."""
        with session.lock:
            frames = session.prompted.get(obj_id)
            if frames is None:
                raise KeyError(f"unknown obj_id {obj_id}; objects: {sorted(session.prompted)}")
            last = frames <= {frame_idx}
        if last:
            self.remove_object(session, obj_id)
            return self.frame_masks(session, frame_idx), True
        result = self.predictor.clear_prompts(session.tracker, frame_idx, obj_id)
        with session.lock:
            session.prompted[obj_id].discard(frame_idx)
        return self._record(session, result.result()), False

    def remove_object(self, session: ServerSession, obj_id: int) -> dict[int, dict[int, ObjectMask]]:
        """Remove an object everywhere; returns the refreshed masks of the frames it was prompted on."""
        with session.lock:
            if obj_id not in session.prompted:
                raise KeyError(f"unknown obj_id {obj_id}; objects: {sorted(session.prompted)}")
        removed = self.predictor.remove_object(session.tracker, obj_id, strict=True)
        with session.lock:
            session.prompted.pop(obj_id, None)
            session.labels.pop(obj_id, None)
        session.masks.drop_object(obj_id)
        if not session.prompted:
            session.masks.clear()
            return {}
        return {t: self.frame_masks(session, t) for t in removed.prompted_frames}

    def reset(self, session: ServerSession) -> None:
        self.predictor.reset_session(session.tracker)
        with session.lock:
            session.prompted.clear()
            session.labels.clear()
        session.masks.clear()

    def frame_masks(self, session: ServerSession, frame_idx: int) -> dict[int, ObjectMask]:
        if not session.prompted:
            session.masks.put(frame_idx, {})
            return {}
        return self._record(session, self.predictor.frame_masks(session.tracker, frame_idx))

    # ------------------------------------------------------------------ text prompts
    def add_text(
        self,
        session: ServerSession,
        frame_idx: int,
        proposer: ObjectProposer,
        phrases: tuple[str, ...],
        *,
        first_id: int,
        max_new: int,
    ) -> TextOutcome:
        """The objects ``phrases`` name on a frame, each added as a new object.

        ``proposer`` finds them on the frame's RGB image; each detection (best first, at most
        ``max_new``) becomes an object with its box as prompt, or with its own mask when the
        proposer makes masks. New ids are the lowest free ids from ``first_id`` on. Boxes
        with no area are skipped.
        """
        rgb = session.tracker.frames.get_rgb(frame_idx)
        detections = proposer.propose(rgb, phrases).sorted()
        boxes = detections.boxes
        usable = np.flatnonzero((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))[: max(max_new, 0)]
        with session.lock:
            taken = set(session.prompted) | set(session.labels)
        added: list[TextObject] = []
        result = None
        obj_id = first_id
        for i in usable:
            while obj_id in taken:
                obj_id += 1
            if detections.masks is not None:
                result = self.predictor.add_mask(session.tracker, frame_idx, obj_id, detections.masks[i])
            else:
                result = self.predictor.add_prompt(session.tracker, frame_idx, obj_id, box=boxes[i], clear_old=True)
            label, score = detections.labels[i], float(detections.scores[i])
            with session.lock:
                session.prompted.setdefault(obj_id, set()).add(frame_idx)
                session.labels[obj_id] = ObjectLabel(obj_id, label, score, frame_idx)
            added.append(TextObject(obj_id, label, score, tuple(float(v) for v in boxes[i])))  # type: ignore[arg-type]
            taken.add(obj_id)
        masks = self._record(session, result.result()) if result is not None else session.masks.frame(frame_idx)
        return TextOutcome(added, masks, len(detections))

    # ------------------------------------------------------------------ segment everything
    def everything(self, session: ServerSession, frame_idx: int, config: AutomaticMaskConfig) -> list[GeneratedMask]:
        """Every mask the automatic generator finds on one frame (COCO RLE segmentations)."""
        rgb = session.tracker.frames.get_rgb(frame_idx)
        return AutomaticMaskGenerator(self.model, config).generate(rgb)

    # ------------------------------------------------------------------ propagation
    def propagation_steps(
        self,
        session: ServerSession,
        plan: PropagationPlan,
        propagation: Propagation,
        emit: Callable[[dict[str, Any]], None],
    ) -> Iterator[None]:
        """One step per propagated frame (a stepper for the model worker).

        ``emit`` receives ``{"type": "frame", "frame_index", "done", "total", "fps", "objects"}``
        per frame and a final ``{"type": "end", "status": "done" | "cancelled" | "error", ...}``.
        The cancel flag is checked before every frame, so a cancel takes effect at once.
        """
        started = time.monotonic()
        propagation.total = plan.total
        status, message = "done", None
        try:
            for reverse, start, count in plan.passes:
                if count == 0:
                    continue
                frames = self.predictor.propagate(
                    session.tracker, start_frame_idx=start, max_frames=plan.max_frames, reverse=reverse, progress=False
                )
                try:
                    while True:
                        if propagation.cancel.is_set() or session.closed:
                            status = "cancelled"
                            return
                        try:
                            result = next(frames)
                        except StopIteration:
                            break
                        encoded = self._record(session, result)
                        propagation.done += 1
                        session.touch()
                        elapsed = max(time.monotonic() - started, 1e-6)
                        emit(
                            {
                                "type": "frame",
                                "frame_index": result.frame_idx,
                                "done": propagation.done,
                                "total": plan.total,
                                "fps": propagation.done / elapsed,
                                "objects": encoded,
                            }
                        )
                        yield
                finally:
                    frames.close()
        except GeneratorExit:  # closed by the worker (shutdown)
            status = "cancelled"
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the client as the stream's last event
            status, message = "error", f"{type(exc).__name__}: {exc}"
        finally:
            session.propagation = None
            session.touch()
            emit(
                {
                    "type": "end",
                    "status": status,
                    "done": propagation.done,
                    "total": plan.total,
                    "seconds": time.monotonic() - started,
                    "message": message,
                }
            )
