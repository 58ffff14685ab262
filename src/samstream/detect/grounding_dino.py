"""Grounding DINO (transformers ``GroundingDinoForObjectDetection``): boxes for text phrases."""

from __future__ import annotations

import os
import re
from typing import Any, Iterable

import numpy as np
import torch

from .base import Detections, check_image, clip_boxes
from .hub import load_detector

__all__ = ["GroundingDinoProposer", "DEFAULT_GROUNDING_DINO", "grounding_dino_prompt", "match_phrase"]

DEFAULT_GROUNDING_DINO = "IDEA-Research/grounding-dino-tiny"
_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")


def grounding_dino_prompt(phrases: tuple[str, ...]) -> str:
    """The text Grounding DINO was trained on: lowercase phrases, each ended by a period (``"cat. dog."``)."""
    return " ".join(f"{p}." for p in phrases)


def match_phrase(decoded: str, phrases: tuple[str, ...], special_tokens: Iterable[str] = ()) -> str | None:
    """The phrase a detection's decoded tokens name.

    The post-processing decodes the tokens whose score passed ``text_threshold``; they may be
    a phrase, part of one, or words of several. ``special_tokens`` (the tokenizer's
    ``[SEP]``, ``[UNK]``, ...) are removed first. The phrase sharing most words wins (the
    earlier phrase on a tie); with no word shared, the decoded words themselves; None when
    nothing but punctuation and special tokens was decoded.
    """
    text = decoded.lower()
    for token in special_tokens:
        text = text.replace(token.lower(), " ")
    words = _WORD.findall(text)
    if not words:
        return None
    text = " ".join(words)
    if text in phrases:
        return text
    best, best_shared = None, 0
    for phrase in phrases:
        shared = len(set(words) & set(_WORD.findall(phrase)))
        if shared > best_shared:
            best, best_shared = phrase, shared
    return best if best is not None else text


class GroundingDinoProposer:
    """Boxes of the objects a list of phrases names, by Grounding DINO.

    threshold: minimum box score (the best token's probability); text_threshold: minimum
    token probability for a token to count towards a detection's label. Detections whose
    tokens name no phrase are dropped.
    """

    name = "grounding-dino"

    def __init__(self, processor: Any, model: Any, *, threshold: float = 0.35, text_threshold: float = 0.25, source: str = "") -> None:
        for flag, value in (("threshold", threshold), ("text_threshold", text_threshold)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{flag} must be in [0, 1], got {value}")
        self.processor = processor
        self.model = model
        self.threshold = float(threshold)
        self.text_threshold = float(text_threshold)
        self.source = source

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str] = DEFAULT_GROUNDING_DINO,
        *,
        device: Any = "cpu",
        cache_dir: str | os.PathLike[str] | None = None,
        threshold: float = 0.35,
        text_threshold: float = 0.25,
    ) -> "GroundingDinoProposer":
        loaded = load_detector(name_or_path, device=device, cache_dir=cache_dir, model_types=("grounding-dino",))
        return cls(loaded.processor, loaded.model, threshold=threshold, text_threshold=text_threshold, source=loaded.source)

    @torch.inference_mode()
    def propose(self, image: np.ndarray, phrases: tuple[str, ...]) -> Detections:
        """Detections on ``image`` [H, W, 3] uint8 for ``phrases`` (normalised), highest score first."""
        image = check_image(image)
        height, width = image.shape[:2]
        device = next(self.model.parameters()).device
        inputs = self.processor(images=np.array(image), text=grounding_dino_prompt(phrases), return_tensors="pt").to(device)
        outputs = self.model(**inputs)
        found = self.processor.post_process_grounded_object_detection(
            outputs,
            inputs["input_ids"],
            threshold=self.threshold,
            text_threshold=self.text_threshold,
            target_sizes=[(height, width)],
        )[0]
        special = getattr(self.processor.tokenizer, "all_special_tokens", ())
        labels = [match_phrase(text, phrases, special) for text in found["text_labels"]]
        keep = [i for i, label in enumerate(labels) if label is not None]
        boxes = clip_boxes(found["boxes"].float().cpu().numpy(), height, width)
        detections = Detections(boxes[keep], found["scores"].float().cpu().numpy()[keep], tuple(labels[i] for i in keep))
        return detections.sorted()
