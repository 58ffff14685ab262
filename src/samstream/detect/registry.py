"""Detectors by name (``--detector NAME_OR_PATH``): the built-in names, registered ones, a
hub name or a local folder of any Grounding DINO / OWLv2 / OWL-ViT model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from .base import ObjectProposer
from .hub import DetectorLoadError, load_detector

__all__ = ["DetectorRequest", "DetectorSpec", "DETECTORS", "detector_names", "register_detector", "make_proposer"]


@dataclass(frozen=True)
class DetectorRequest:
    """What a detector factory is given.

    threshold / text_threshold: None keeps each detector's default. sam_model: the SAM 2
    model (the automatic proposer runs on it). automatic_config: an ``AutomaticMaskConfig``.
    """

    device: Any = "cpu"
    cache_dir: str | os.PathLike[str] | None = None
    threshold: float | None = None
    text_threshold: float | None = None
    sam_model: Any = None
    automatic_config: Any = None


@dataclass(frozen=True)
class DetectorSpec:
    """A named detector: ``model`` is the hub name (None for proposers that need no download)."""

    name: str
    model: str | None
    description: str
    factory: Callable[[DetectorRequest], ObjectProposer]


def _from_loaded(loaded, request: DetectorRequest) -> ObjectProposer:
    if loaded.model_type == "grounding-dino":
        from .grounding_dino import GroundingDinoProposer

        options = {k: v for k, v in (("threshold", request.threshold), ("text_threshold", request.text_threshold)) if v is not None}
        return GroundingDinoProposer(loaded.processor, loaded.model, source=loaded.source, **options)
    if loaded.model_type in ("owlv2", "owlvit"):
        from .owlv2 import Owlv2Proposer

        options = {"threshold": request.threshold} if request.threshold is not None else {}
        return Owlv2Proposer(loaded.processor, loaded.model, model_type=loaded.model_type, source=loaded.source, **options)
    raise DetectorLoadError(
        f"detector {loaded.source} is a '{loaded.model_type}' model; samstream runs grounding-dino, owlv2 and owlvit models"
    )


#: the transformers ``model_type`` values samstream runs
SUPPORTED_MODEL_TYPES = ("grounding-dino", "owlv2", "owlvit")


def _load(name: str, request: DetectorRequest):
    return load_detector(name, device=request.device, cache_dir=request.cache_dir, model_types=SUPPORTED_MODEL_TYPES)


def _hub(model: str) -> Callable[[DetectorRequest], ObjectProposer]:
    def factory(request: DetectorRequest) -> ObjectProposer:
        return _from_loaded(_load(model, request), request)

    return factory


def _automatic(request: DetectorRequest) -> ObjectProposer:
    from ..image.automatic import AutomaticMaskConfig, AutomaticMaskGenerator
    from .automatic import AutomaticMaskProposer

    if request.sam_model is None:
        raise ValueError("detector 'automatic' runs on the SAM 2 model: pass sam_model")
    return AutomaticMaskProposer(AutomaticMaskGenerator(request.sam_model, request.automatic_config or AutomaticMaskConfig()))


DETECTORS: dict[str, DetectorSpec] = {}


def register_detector(name: str, factory: Callable[[DetectorRequest], ObjectProposer], *, model: str | None = None, description: str = "") -> None:
    """Make ``make_proposer(name)`` (and ``--detector name``) build ``factory(request)``."""
    if not name or "/" in name or os.sep in name:
        raise ValueError(f"detector name must be a plain word (no '/'), got {name!r}")
    DETECTORS[name] = DetectorSpec(name, model, description, factory)


for _name, _model, _text in (
    ("grounding-dino", "IDEA-Research/grounding-dino-tiny", "Grounding DINO, Swin-T (the default)"),
    ("grounding-dino-base", "IDEA-Research/grounding-dino-base", "Grounding DINO, Swin-B"),
    ("owlv2", "google/owlv2-base-patch16-ensemble", "OWLv2, ViT-B/16"),
    ("owlv2-large", "google/owlv2-large-patch14-ensemble", "OWLv2, ViT-L/14"),
):
    register_detector(_name, _hub(_model), model=_model, description=_text)
register_detector("automatic", _automatic, description="SAM 2's automatic masks, class-agnostic (label 'object')")

DEFAULT_DETECTOR = "grounding-dino"


def detector_names() -> list[str]:
    return sorted(DETECTORS)


def make_proposer(name_or_path: str | os.PathLike[str] = DEFAULT_DETECTOR, request: DetectorRequest | None = None) -> ObjectProposer:
    """A registered name (:func:`detector_names`), a local ``save_pretrained`` folder, or a hub
    name of a Grounding DINO / OWLv2 / OWL-ViT model (the kind is read from its config)."""
    request = request or DetectorRequest()
    text = os.fspath(name_or_path)
    spec = DETECTORS.get(text)
    if spec is not None:
        return spec.factory(request)
    return _from_loaded(_load(text, request), request)
