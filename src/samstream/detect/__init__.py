"""Object proposers: boxes with labels and scores for an image, from text phrases
(open-vocabulary detectors over Hugging Face transformers) or from SAM's automatic masks.

The transformers-based detectors need the optional extra: ``pip install 'samstream[text]'``.
"""

from .base import Detections, ObjectProposer, normalize_phrases
from .registry import DETECTORS, DetectorSpec, detector_names, make_proposer, register_detector

__all__ = [
    "Detections",
    "ObjectProposer",
    "normalize_phrases",
    "DETECTORS",
    "DetectorSpec",
    "detector_names",
    "make_proposer",
    "register_detector",
]
