"""What every object proposer returns, the protocol it implements, and phrase normalisation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Protocol, runtime_checkable

import numpy as np

__all__ = ["Detections", "ObjectProposer", "normalize_phrases", "check_image"]


@dataclass(frozen=True)
class Detections:
    """K objects proposed on one image (in the proposer's order; :meth:`sorted` puts the best first).

    boxes [K, 4] float64, x0, y0, x1, y1 in the image's pixels; scores [K] float64 (the
    detector's confidence); labels: K phrases (``"object"`` for class-agnostic proposers);
    masks [K, H, W] bool when the proposer makes masks itself (the automatic generator), else None.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: tuple[str, ...]
    masks: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4) if np.size(self.boxes) else np.zeros((0, 4))
        scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        labels = tuple(str(label) for label in self.labels)
        k = len(boxes)
        if len(scores) != k or len(labels) != k:
            raise ValueError(f"detections need as many scores and labels as boxes: {k} boxes, {len(scores)} scores, {len(labels)} labels")
        if k and not np.isfinite(boxes).all():
            raise ValueError("detection boxes must be finite")
        masks = self.masks
        if masks is not None:
            masks = np.asarray(masks)
            if masks.dtype != np.bool_ or masks.ndim != 3 or len(masks) != k:
                raise ValueError(f"detection masks must be bool [K={k}, H, W], got {masks.dtype} {masks.shape}")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "masks", masks)

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4)), np.zeros((0,)), ())

    def __len__(self) -> int:
        return len(self.boxes)

    def select(self, index: Iterable[int] | np.ndarray) -> "Detections":
        """The detections at ``index`` (integer positions or a bool mask), in that order."""
        index = np.asarray(index)
        if index.dtype == np.bool_:
            index = np.flatnonzero(index)
        index = index.astype(np.int64).reshape(-1)
        return Detections(
            self.boxes[index],
            self.scores[index],
            tuple(self.labels[i] for i in index),
            None if self.masks is None else self.masks[index],
        )

    def sorted(self) -> "Detections":
        """Highest score first (ties keep their order)."""
        return self.select(np.argsort(-self.scores, kind="stable"))


@runtime_checkable
class ObjectProposer(Protocol):
    """Finds objects on an image: ``propose(image [H, W, 3] uint8 RGB, phrases) -> Detections``.

    ``phrases`` are already normalised (:func:`normalize_phrases`); a class-agnostic
    proposer ignores them. ``name`` says which detector it is (written into outputs).
    """

    name: str

    def propose(self, image: np.ndarray, phrases: tuple[str, ...]) -> Detections: ...


_SPACES = re.compile(r"\s+")


def normalize_phrases(text: str | Iterable[str], *, name: str = "text") -> tuple[str, ...]:
    """``"Cat. a DOG."`` or ``["cat", "a dog"]`` -> ``("cat", "a dog")``: split on periods,
    lowercased, inner whitespace collapsed, empty pieces and repeats dropped (order kept).

    ValueError naming ``name`` when nothing is left.
    """
    pieces = text.split(".") if isinstance(text, str) else [p for item in text for p in str(item).split(".")]
    phrases: list[str] = []
    for piece in pieces:
        phrase = _SPACES.sub(" ", piece).strip().lower()
        if phrase and phrase not in phrases:
            phrases.append(phrase)
    if not phrases:
        raise ValueError(f"{name}: give at least one phrase, e.g. \"cat. dog.\" (phrases are separated by periods)")
    return tuple(phrases)


def check_image(image: np.ndarray) -> np.ndarray:
    """The image as [H, W, 3] uint8 RGB; ValueError otherwise."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image must be a (H, W, 3) uint8 RGB array, got shape={getattr(image, 'shape', None)} "
            f"dtype={getattr(image, 'dtype', type(image).__name__)}"
        )
    return image


def clip_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boxes [K, 4] xyxy clipped to the image."""
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out
