"""Typed results shared by the predictors, the command line and (later) the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple

import numpy as np
import torch


class FrameResult(NamedTuple):
    """Every tracked object's mask on one video frame.

    masks: logits [N, 1, H, W] at the video's size, in the order of ``obj_ids`` (> 0 is the
    object; -1024 where an object is judged absent). Unpacks as
    ``frame_idx, obj_ids, masks = result``.
    """

    frame_idx: int
    obj_ids: list[int]
    masks: torch.Tensor

    def binary_masks(self) -> torch.Tensor:
        """[N, H, W] bool: the pixels of each object."""
        return self.masks[:, 0] > 0


class PromptResult:
    """What a prompt gives back: the frame, the object ids, and every object's mask on that
    frame, computed when first asked for (``masks``, unpacking or indexing), from the session
    as it is then.

    Unpacks and indexes like :class:`FrameResult`: ``frame_idx, obj_ids, masks = result``.
    """

    __slots__ = ("frame_idx", "obj_ids", "_compute", "_masks")

    def __init__(self, frame_idx: int, obj_ids: list[int], compute: Callable[[], torch.Tensor]) -> None:
        self.frame_idx = frame_idx
        self.obj_ids = obj_ids
        self._compute: Callable[[], torch.Tensor] | None = compute
        self._masks: torch.Tensor | None = None

    @property
    def masks(self) -> torch.Tensor:
        """Logits [N, 1, H, W] at the video's size (see :class:`FrameResult`)."""
        if self._compute is not None:
            self._masks = self._compute()
            self._compute = None
        return self._masks  # type: ignore[return-value]

    def result(self) -> FrameResult:
        return FrameResult(self.frame_idx, self.obj_ids, self.masks)

    def __iter__(self) -> Iterator:
        return iter(self.result())

    def __getitem__(self, index):
        return self.result()[index]

    def __len__(self) -> int:
        return 3

    def __repr__(self) -> str:
        state = "computed" if self._compute is None else "not computed yet"
        return f"PromptResult(frame_idx={self.frame_idx}, obj_ids={self.obj_ids}, masks {state})"


@dataclass(frozen=True)
class DetectedObject:
    """One object a phrase (or the automatic generator) found on an image.

    mask [H, W] bool at the image's size; box [4] float64, x0, y0, x1, y1 in pixels (the
    detector's box, the mask's prompt); label: the phrase; score: the detector's confidence;
    mask_score: SAM's predicted IoU of the mask (the detector's score when the proposer made
    the mask itself).
    """

    mask: np.ndarray
    box: np.ndarray
    label: str
    score: float
    mask_score: float
