"""Text prompts on images: an object proposer's boxes become SAM masks, each with its label."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from ..detect.base import Detections, ObjectProposer, check_image, normalize_phrases
from ..modeling.sam2 import FrameFeatures
from ..results import DetectedObject
from .predictor import ImagePredictor

__all__ = ["TextSegmenter"]


class TextSegmenter:
    """Segments what a phrase names: ``proposer`` finds boxes, ``predictor`` turns each box into a mask.

    >>> segmenter = TextSegmenter(ImagePredictor(model), make_proposer("grounding-dino"))
    >>> for obj in segmenter.segment(image, "cat. dog."):
    ...     obj.label, obj.score, obj.mask.shape          # "cat", 0.71, (H, W)

    max_objects: keep at most this many detections (highest scores first); None keeps all.
    """

    def __init__(self, predictor: ImagePredictor, proposer: ObjectProposer, *, max_objects: int | None = None) -> None:
        if not isinstance(predictor, ImagePredictor):
            raise TypeError(f"predictor must be an ImagePredictor, got {type(predictor).__name__}")
        if not isinstance(proposer, ObjectProposer):
            raise TypeError(f"proposer must have a name and propose(image, phrases), got {type(proposer).__name__}")
        if max_objects is not None and max_objects < 1:
            raise ValueError(f"max_objects must be >= 1 or None, got {max_objects}")
        self.predictor = predictor
        self.proposer = proposer
        self.max_objects = max_objects

    def detect(self, image: np.ndarray, text: str | Iterable[str]) -> Detections:
        """The proposer's detections for ``text`` (phrases separated by periods), best first."""
        detections = self.proposer.propose(check_image(image), normalize_phrases(text)).sorted()
        if self.max_objects is not None:
            detections = detections.select(np.arange(min(len(detections), self.max_objects)))
        return detections

    def segment(
        self, image: np.ndarray, text: str | Iterable[str], *, features: Callable[[], FrameFeatures] | None = None
    ) -> list[DetectedObject]:
        """Every object ``text`` names on ``image`` [H, W, 3] uint8, best detection first.

        ``features``: gives the image's SAM features already computed (a video frame's), used
        instead of encoding the image again; called only when there is something to segment.
        """
        return self.segment_detections(image, self.detect(image, text), features=features)

    def segment_detections(
        self, image: np.ndarray, detections: Detections, *, features: Callable[[], FrameFeatures] | None = None
    ) -> list[DetectedObject]:
        """Masks for detections already made on ``image`` (their own masks when they have them)."""
        image = check_image(image)
        if len(detections) == 0:
            return []
        if detections.masks is not None:
            masks, mask_scores = detections.masks, detections.scores
        else:
            if features is not None:
                self.predictor.set_features(features(), image.shape[:2])
            else:
                self.predictor.set_image(image)
            result = self.predictor.predict(box=detections.boxes, multimask_output=False)  # masks [K, 1, H, W]
            masks, mask_scores = result.masks[:, 0], result.scores[:, 0]
        return [
            DetectedObject(
                mask=np.ascontiguousarray(masks[i]),
                box=detections.boxes[i].copy(),
                label=detections.labels[i],
                score=float(detections.scores[i]),
                mask_score=float(mask_scores[i]),
            )
            for i in range(len(detections))
        ]
