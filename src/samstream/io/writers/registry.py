"""Which writer each output format uses, and the factory that builds one."""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from ..overlay import PromptMarks
from .base import MaskWriter, PathLike
from .palette import PalettePngWriter
from .png import PerObjectPngWriter
from .rle import CocoRleWriter
from .video import OverlayVideoWriter, RgbFrameProvider

__all__ = ["WRITER_FORMATS", "make_writer"]

WRITER_FORMATS: tuple[str, ...] = ("png", "palette", "rle", "mp4")


def make_writer(
    format: str,
    output: PathLike,
    *,
    video_height: int | None = None,
    video_width: int | None = None,
    fps: float | None = None,
    frames: RgbFrameProvider | Callable[[int], np.ndarray] | None = None,
    alpha: float = 0.5,
    marks: Mapping[int, PromptMarks] | None = None,
    labels: Mapping[int, str] | None = None,
) -> MaskWriter:
    """Create the writer for ``format`` (one of :data:`WRITER_FORMATS`).

    * ``"png"`` / ``"palette"``: ``output`` is a folder;
    * ``"rle"``: ``output`` is a ``.json`` / ``.jsonl`` file; needs ``video_height`` and
      ``video_width`` (taken from ``frames`` when it is a frame source); records of objects
      in ``labels`` carry their ``"label"``;
    * ``"mp4"``: ``output`` is a video file; needs ``frames`` and ``fps`` (taken
      from ``frames.fps`` when available); ``marks`` are the prompts drawn on their frames and
      ``labels`` (obj_id -> text) are written at every object's mask.
    """
    if format not in WRITER_FORMATS:
        raise ValueError(f"unknown writer format {format!r}; valid formats are: {', '.join(WRITER_FORMATS)}")
    if format == "png":
        return PerObjectPngWriter(output)
    if format == "palette":
        return PalettePngWriter(output)
    if format == "rle":
        height = video_height if video_height is not None else getattr(frames, "video_height", None)
        width = video_width if video_width is not None else getattr(frames, "video_width", None)
        if height is None or width is None:
            raise ValueError("format 'rle' needs video_height and video_width (or a frame source as frames)")
        return CocoRleWriter(output, height, width, labels=labels)
    if frames is None:
        raise ValueError("format 'mp4' needs frames (a frame source or a callable giving RGB frames)")
    rate = fps if fps is not None else getattr(frames, "fps", None)
    if rate is None:
        raise ValueError("format 'mp4' needs fps (the frame source does not know its frame rate)")
    return OverlayVideoWriter(output, rate, frames, alpha=alpha, marks=marks, labels=labels)
