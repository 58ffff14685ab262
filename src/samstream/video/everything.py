"""Find and track every object in a video: the automatic mask generator discovers objects on
the first frame, the tracker follows them, and every few frames the generator looks again
and adds the objects that no tracked mask covers yet. Object ids stay stable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from ..image.automatic import AutomaticMaskGenerator
from ..results import FrameResult
from .predictor import VideoPredictor
from .state import VideoSession


@dataclass(frozen=True)
class DiscoveryOptions:
    """detect_every: look for new objects every N frames (0: only on the first frame);
    new_object_iou: a found mask is new when its IoU with every tracked mask is below this;
    max_covered: ... and when less than this fraction of it lies under tracked masks;
    max_objects: stop adding objects beyond this count."""

    detect_every: int = 0
    new_object_iou: float = 0.5
    max_covered: float = 0.5
    max_objects: int = 100

    def __post_init__(self) -> None:
        if self.detect_every < 0:
            raise ValueError(f"detect_every must be >= 0, got {self.detect_every}")
        for name in ("new_object_iou", "max_covered"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.max_objects < 1:
            raise ValueError(f"max_objects must be >= 1, got {self.max_objects}")


def new_object_masks(
    candidates: list[np.ndarray], tracked: np.ndarray, *, new_object_iou: float, max_covered: float
) -> list[np.ndarray]:
    """The candidate masks [H, W] not already covered by the tracked masks [N, H, W] (bool).

    Candidates are also checked against each other in order, so two overlapping candidates
    do not both become objects.
    """
    kept: list[np.ndarray] = []
    existing = [m for m in tracked] if tracked.size else []
    for cand in candidates:
        area = cand.sum()
        if area == 0:
            continue
        union_all = np.zeros_like(cand) if not existing else np.logical_or.reduce(existing)
        if (cand & union_all).sum() / area >= max_covered:
            continue
        ious = [(cand & m).sum() / max((cand | m).sum(), 1) for m in existing]
        if ious and max(ious) >= new_object_iou:
            continue
        kept.append(cand)
        existing.append(cand)
    return kept


class EverythingTracker:
    """Discovers objects with an :class:`AutomaticMaskGenerator` and tracks them all."""

    def __init__(self, predictor: VideoPredictor, generator: AutomaticMaskGenerator, options: DiscoveryOptions | None = None):
        self.predictor = predictor
        self.generator = generator
        self.options = options or DiscoveryOptions()

    def _discover(self, session: VideoSession, frame_idx: int, current: FrameResult | None) -> FrameResult | None:
        rgb = session.frames.get_rgb(frame_idx)
        found = self.generator.generate(rgb)
        found.sort(key=lambda m: (-m.predicted_iou, -m.area))
        candidates = [np.asarray(m.segmentation, dtype=bool) for m in found]
        if current is not None and current.obj_ids:
            tracked = current.binary_masks().cpu().numpy()
        else:
            tracked = np.zeros((0,) + rgb.shape[:2], dtype=bool)
        new = new_object_masks(
            candidates, tracked, new_object_iou=self.options.new_object_iou, max_covered=self.options.max_covered
        )
        room = self.options.max_objects - len(session.objects)
        result = current
        next_id = max(session.objects, default=0) + 1
        for mask in new[: max(room, 0)]:
            result = self.predictor.add_mask(session, frame_idx, next_id, mask).result()
            next_id += 1
        return result

    @torch.inference_mode()
    def run(self, session: VideoSession, *, progress: bool = True) -> Iterator[FrameResult]:
        """Yield every object's masks frame by frame (frames before the first object yield nothing)."""
        from tqdm.auto import tqdm

        n = session.num_frames
        if n is None:
            raise RuntimeError("finding everything needs a source of known length")
        every = self.options.detect_every
        for t in tqdm(range(n), desc="track everything", disable=not progress, unit="frame"):
            result: FrameResult | None = None
            if session.objects:
                self.predictor.prepare_tracking(session)
                result = self.predictor.track_frame(session, t, reverse=False)
            if t == 0 or (every > 0 and t % every == 0):
                result = self._discover(session, t, result)
            if result is not None and result.obj_ids:
                yield result
