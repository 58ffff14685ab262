"""Discovering objects while tracking: a finder proposes masks on some frames, the ones no
tracked mask covers become new objects (stable ids, their label kept), and objects that the
finder stopped seeing can be dropped. Used by the offline trackers (``video/everything.py``)
and the streaming tracker alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Protocol, runtime_checkable

import numpy as np

from ..io.labels import ObjectLabel
from ..results import DetectedObject, FrameResult

if TYPE_CHECKING:  # pragma: no cover
    from ..image.automatic import AutomaticMaskGenerator
    from ..modeling.sam2 import FrameFeatures
    from ..image.text import TextSegmenter
    from .predictor import VideoPredictor
    from .state import VideoSession

__all__ = [
    "DiscoveryOptions",
    "CandidateFinder",
    "GeneratorFinder",
    "TextFinder",
    "ObjectDiscovery",
    "new_object_indices",
    "mask_iou_matrix",
]


@dataclass(frozen=True)
class DiscoveryOptions:
    """detect_every: look for new objects every N frames (0: only on the first frame);
    new_object_iou: a found mask is new when its IoU with every tracked mask is below this,
    and a tracked object is matched by a found mask at or above it;
    max_covered: ... and when less than this fraction of it lies under tracked masks;
    max_objects: at most this many objects tracked at once (no new ones while that many are);
    drop_after: remove an object once this many frames have passed since a found mask last
    matched it (checked on detection frames; 0: never)."""

    detect_every: int = 0
    new_object_iou: float = 0.5
    max_covered: float = 0.5
    max_objects: int = 100
    drop_after: int = 0

    def __post_init__(self) -> None:
        if self.detect_every < 0:
            raise ValueError(f"detect_every must be >= 0, got {self.detect_every}")
        for name in ("new_object_iou", "max_covered"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.max_objects < 1:
            raise ValueError(f"max_objects must be >= 1, got {self.max_objects}")
        if self.drop_after < 0:
            raise ValueError(f"drop_after must be >= 0, got {self.drop_after}")
        if self.drop_after and not self.detect_every:
            raise ValueError("drop_after needs detect_every > 0 (objects are matched on detection frames)")


def mask_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU [A, B] between bool masks a [A, H, W] and b [B, H, W] (0 where both are empty)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    fa = a.reshape(len(a), -1).astype(np.float32)  # [A, HW]
    fb = b.reshape(len(b), -1).astype(np.float32)  # [B, HW]
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def new_object_indices(
    candidates: list[np.ndarray], tracked: np.ndarray, *, new_object_iou: float, max_covered: float
) -> list[int]:
    """Positions of the candidate masks [H, W] not already covered by the tracked masks [N, H, W] (bool).

    Candidates are also checked against each other in order, so two overlapping candidates
    do not both become objects.
    """
    kept: list[int] = []
    existing = [m for m in tracked] if tracked.size else []
    for i, cand in enumerate(candidates):
        area = cand.sum()
        if area == 0:
            continue
        union_all = np.zeros_like(cand) if not existing else np.logical_or.reduce(existing)
        if (cand & union_all).sum() / area >= max_covered:
            continue
        ious = [(cand & m).sum() / max((cand | m).sum(), 1) for m in existing]
        if ious and max(ious) >= new_object_iou:
            continue
        kept.append(i)
        existing.append(cand)
    return kept


@runtime_checkable
class CandidateFinder(Protocol):
    """``find(rgb [H, W, 3] uint8, features) -> objects`` (masks at the frame's size, best
    first); ``features()`` gives the frame's SAM features when the finder can use them (it need
    not call it); ``name`` says which finder."""

    name: str

    def find(self, rgb: np.ndarray, features: "Callable[[], FrameFeatures] | None" = None) -> list[DetectedObject]: ...


class GeneratorFinder:
    """Every mask of the automatic mask generator, class-agnostic (label ``"object"``)."""

    name = "automatic"

    def __init__(self, generator: "AutomaticMaskGenerator") -> None:
        from ..detect.automatic import AutomaticMaskProposer

        self.proposer = AutomaticMaskProposer(generator)

    def find(self, rgb: np.ndarray, features: "Callable[[], FrameFeatures] | None" = None) -> list[DetectedObject]:
        found = self.proposer.propose(rgb)  # the generator encodes its crops itself
        assert found.masks is not None
        return [
            DetectedObject(found.masks[i], found.boxes[i], found.labels[i], float(found.scores[i]), float(found.scores[i]))
            for i in range(len(found))
        ]


class TextFinder:
    """The objects ``text`` names (phrases separated by periods), segmented by a :class:`TextSegmenter`."""

    def __init__(self, segmenter: "TextSegmenter", text: str | Iterable[str]) -> None:
        from ..detect.base import normalize_phrases

        self.segmenter = segmenter
        self.phrases = normalize_phrases(text)
        self.name = segmenter.proposer.name

    def find(self, rgb: np.ndarray, features: "Callable[[], FrameFeatures] | None" = None) -> list[DetectedObject]:
        return self.segmenter.segment(rgb, self.phrases, features=features)


class ObjectDiscovery:
    """Runs a finder on detection frames and keeps the session's objects in step with it.

    ``objects``: obj_id -> :class:`ObjectLabel` for every object it added (dropped ones stay,
    with ``dropped_frame`` set). Detection frames: the first frame it is asked about, then
    every ``detect_every`` frames after it.
    """

    def __init__(self, finder: CandidateFinder, options: DiscoveryOptions | None = None) -> None:
        if not isinstance(finder, CandidateFinder):
            raise TypeError(f"finder must have a name and find(rgb), got {type(finder).__name__}")
        self.finder = finder
        self.options = options or DiscoveryOptions()
        self.objects: dict[int, ObjectLabel] = {}
        self._last_matched: dict[int, int] = {}
        self._first_frame: int | None = None

    @property
    def labels(self) -> dict[int, str]:
        """obj_id -> label of every object added (a new dict each time)."""
        return {k: v.label for k, v in self.objects.items()}

    def due(self, frame_idx: int) -> bool:
        """Whether ``frame_idx`` is a detection frame."""
        if self._first_frame is None:
            return True
        every = self.options.detect_every
        return every > 0 and frame_idx > self._first_frame and (frame_idx - self._first_frame) % every == 0

    def step(
        self, predictor: "VideoPredictor", session: "VideoSession", frame_idx: int, current: FrameResult | None
    ) -> FrameResult | None:
        """Detect on ``frame_idx`` (already tracked into ``current``, None when nothing is
        tracked yet), drop the objects no longer seen, add the new ones; returns every
        object's masks on that frame afterwards (None when no object is left)."""
        if self._first_frame is None:
            self._first_frame = frame_idx
        rgb = session.frames.get_rgb(frame_idx)
        found = self.finder.find(rgb, features=lambda: predictor.frame_features(session, frame_idx))
        candidates = [np.asarray(o.mask, dtype=bool) for o in found]
        if current is not None and current.obj_ids:
            tracked = current.binary_masks().cpu().numpy()
            ids = list(current.obj_ids)
        else:
            tracked = np.zeros((0,) + rgb.shape[:2], dtype=bool)
            ids = []
        options = self.options
        result = current if ids else None

        # objects matched by a found mask are still seen; the others may be dropped
        if ids and candidates:
            matched = mask_iou_matrix(tracked, np.stack(candidates)).max(axis=1) >= options.new_object_iou
            for obj_id, hit in zip(ids, matched):
                if hit:
                    self._last_matched[obj_id] = frame_idx
        if options.drop_after and ids:
            stale = [o for o in ids if frame_idx - self._last_matched.get(o, frame_idx) >= options.drop_after]
            if stale:
                for obj_id in stale:
                    predictor.remove_object(session, obj_id)
                    if obj_id in self.objects:
                        self.objects[obj_id] = _dropped(self.objects[obj_id], frame_idx)
                keep = [i for i, o in enumerate(ids) if o not in stale]
                tracked, ids = tracked[keep], [ids[i] for i in keep]
                result = FrameResult(frame_idx, ids, current.masks[keep]) if ids else None

        new = new_object_indices(candidates, tracked, new_object_iou=options.new_object_iou, max_covered=options.max_covered)
        room = options.max_objects - len(session.objects)
        next_id = max([*session.objects, *self.objects], default=0) + 1
        for i in new[: max(room, 0)]:
            result = predictor.add_mask(session, frame_idx, next_id, candidates[i]).result()
            self.objects[next_id] = ObjectLabel(next_id, found[i].label, float(found[i].score), frame_idx)
            self._last_matched[next_id] = frame_idx
            next_id += 1
        return result


def _dropped(label: ObjectLabel, frame_idx: int) -> ObjectLabel:
    return ObjectLabel(label.obj_id, label.label, label.score, label.first_frame, frame_idx)
