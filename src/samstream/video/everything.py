"""Find and track every object in a video: a finder (the automatic mask generator, or a
detector for text phrases) discovers objects on the first frame, the tracker follows them,
and every few frames the finder looks again and adds the objects that no tracked mask covers
yet. Object ids stay stable; see :mod:`samstream.video.discovery` for the rules."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from ..image.automatic import AutomaticMaskGenerator
from ..results import FrameResult
from .discovery import CandidateFinder, DiscoveryOptions, GeneratorFinder, ObjectDiscovery, new_object_indices
from .predictor import VideoPredictor
from .state import VideoSession

__all__ = ["DiscoveryOptions", "EverythingTracker", "new_object_masks"]


def new_object_masks(
    candidates: list[np.ndarray], tracked: np.ndarray, *, new_object_iou: float, max_covered: float
) -> list[np.ndarray]:
    """The candidate masks [H, W] not already covered by the tracked masks [N, H, W] (bool)
    (:func:`~samstream.video.discovery.new_object_indices`, as masks)."""
    index = new_object_indices(candidates, tracked, new_object_iou=new_object_iou, max_covered=max_covered)
    return [candidates[i] for i in index]


class EverythingTracker:
    """Discovers objects with a finder and tracks them all.

    ``finder``: an :class:`AutomaticMaskGenerator` (every object, label ``"object"``) or any
    :class:`~samstream.video.discovery.CandidateFinder`, e.g. a ``TextFinder`` for phrases.
    ``discovery.objects`` holds each added object's label, score and first frame.
    """

    def __init__(
        self,
        predictor: VideoPredictor,
        finder: AutomaticMaskGenerator | CandidateFinder,
        options: DiscoveryOptions | None = None,
    ):
        self.predictor = predictor
        self.finder = GeneratorFinder(finder) if isinstance(finder, AutomaticMaskGenerator) else finder
        self.options = options or DiscoveryOptions()
        self.discovery = ObjectDiscovery(self.finder, self.options)

    @torch.inference_mode()
    def run(self, session: VideoSession, *, progress: bool = True) -> Iterator[FrameResult]:
        """Yield every object's masks frame by frame (frames without objects yield nothing)."""
        from tqdm.auto import tqdm

        n = session.num_frames
        if n is None:
            raise RuntimeError("finding everything needs a source of known length")
        for t in tqdm(range(n), desc="track and discover", disable=not progress, unit="frame"):
            result: FrameResult | None = None
            if session.objects:
                self.predictor.prepare_tracking(session)
                result = self.predictor.track_frame(session, t, reverse=False)
            if self.discovery.due(t):
                result = self.discovery.step(self.predictor, session, t, result)
            if result is not None and result.obj_ids:
                yield result
