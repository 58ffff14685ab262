"""The sample type every reader produces, the error for bad input, and shared reading helpers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
from PIL import Image

__all__ = [
    "ClipSample",
    "BadSampleError",
    "ClipDataset",
    "read_rgb",
    "read_label_png",
    "pick_clip_start",
    "keep_first_frame_objects",
]


@dataclass(frozen=True)
class ClipSample:
    """A training clip.

    frames: [T, H, W, 3] uint8 RGB.
    masks: [T, N, H, W] bool, one mask per object per frame (an object may be absent on a frame).
    obj_ids: N ids, as the dataset names them.
    source: where it came from (dataset name and item, e.g. ``"davis:bear"``), for reports.
    """

    frames: np.ndarray
    masks: np.ndarray
    obj_ids: tuple[int, ...]
    source: str

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(f"{self.source}: frames must be [T, H, W, 3] uint8, got {self.frames.shape} {self.frames.dtype}")
        t, h, w = self.frames.shape[:3]
        if self.masks.ndim != 4 or self.masks.dtype != np.bool_ or self.masks.shape[0] != t or self.masks.shape[2:] != (h, w):
            raise ValueError(
                f"{self.source}: masks must be [T={t}, N, {h}, {w}] bool, got {self.masks.shape} {self.masks.dtype}"
            )
        if len(self.obj_ids) != self.masks.shape[1]:
            raise ValueError(f"{self.source}: {len(self.obj_ids)} obj_ids for {self.masks.shape[1]} masks")

    @property
    def num_frames(self) -> int:
        return self.frames.shape[0]


class BadSampleError(Exception):
    """A sample that cannot be used: unreadable file, annotation not matching its image, nothing to track.

    ``path`` names the offending file (or folder), ``reason`` says what is wrong.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class ClipDataset(Protocol):
    """What the mix needs from a reader."""

    name: str

    def __len__(self) -> int: ...

    def load(self, index: int, rng: np.random.Generator) -> ClipSample:
        """The clip of item ``index`` (random choices from ``rng``); raises :class:`BadSampleError`."""
        ...


def read_rgb(path: str | Path) -> np.ndarray:
    """[H, W, 3] uint8 RGB of an image file, fully decoded; BadSampleError if it cannot be read."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise BadSampleError(path, f"cannot read image ({exc})") from None


def read_label_png(path: str | Path) -> np.ndarray:
    """[H, W] integer id map of a palette (or greyscale) PNG; BadSampleError if unreadable or colour."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L", "I", "I;16", "1"):
                raise BadSampleError(path, f"annotation PNG must be palette or greyscale, got mode {image.mode}")
            return np.asarray(image).astype(np.int64)
    except BadSampleError:
        raise
    except (OSError, ValueError) as exc:
        raise BadSampleError(path, f"cannot read annotation ({exc})") from None


def pick_clip_start(num_available: int, num_frames: int, rng: np.random.Generator, where: str) -> int:
    """A random start for ``num_frames`` consecutive frames out of ``num_available``."""
    if num_available < num_frames:
        raise BadSampleError(where, f"has {num_available} annotated frames, {num_frames} needed")
    return int(rng.integers(num_available - num_frames + 1))


def keep_first_frame_objects(
    masks: np.ndarray, obj_ids: Sequence[int], max_objects: int, rng: np.random.Generator, where: str
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Keep objects visible on frame 0 (they can be prompted), at most ``max_objects`` chosen at random.

    masks: [T, N, H, W] bool. Raises BadSampleError when no object is visible on frame 0.
    """
    visible = np.flatnonzero(masks[0].reshape(masks.shape[1], -1).any(axis=1))
    if visible.size == 0:
        raise BadSampleError(where, "no object is visible on the first frame of the clip (empty masks)")
    if visible.size > max_objects:
        visible = np.sort(rng.choice(visible, size=max_objects, replace=False))
    return masks[:, visible], tuple(int(obj_ids[i]) for i in visible)
