"""Pick the right frame source for whatever the caller passes (path, array, iterable, source)."""

from __future__ import annotations

import collections.abc
import os
from pathlib import Path
from typing import Iterable, Sequence, Union

import numpy as np
import torch
from PIL import Image

from ...image.transforms import DEFAULT_MAX_PIXELS, ImageTooLargeError, check_max_pixels
from .array import ArrayFrameSource
from .base import DEFAULT_CACHE_SIZE, DEFAULT_ITERABLE_WINDOW, FrameLike, FrameSource, FrameSourceError, PathLike
from .folder import FolderFrameSource
from .iterable import IterableFrameSource
from .video_file import VideoFileFrameSource

__all__ = ["FrameSourceInput", "open_frame_source"]


FrameSourceInput = Union[PathLike, np.ndarray, torch.Tensor, Sequence[FrameLike], Iterable[FrameLike], FrameSource]


def open_frame_source(
    source: FrameSourceInput,
    image_size: int,
    *,
    cache_size: int = DEFAULT_CACHE_SIZE,
    max_cached: int = DEFAULT_ITERABLE_WINDOW,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> FrameSource:
    """Build the right :class:`FrameSource` for ``source``.

    * ``str`` / ``os.PathLike``: a folder -> :class:`FolderFrameSource`, a file ->
      :class:`VideoFileFrameSource`; a missing path raises ``FileNotFoundError``;
    * numpy array, torch tensor, list or tuple -> :class:`ArrayFrameSource`;
    * any other iterable (generator, camera reader...) -> :class:`IterableFrameSource`
      (``max_cached`` sets its window);
    * an existing :class:`FrameSource` is returned as is (its ``image_size`` must match).

    Frames read from files (a folder or a video file) above ``max_pixels`` raise
    :class:`~samstream.image.transforms.ImageTooLargeError` before any frame is decoded.
    """
    if isinstance(source, FrameSource):
        if source.image_size != image_size:
            raise ValueError(
                f"the given FrameSource has image_size={source.image_size} but image_size={image_size} was requested"
            )
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return FolderFrameSource(path, image_size, cache_size=cache_size, max_pixels=max_pixels)
        if path.is_file():
            limit = check_max_pixels(max_pixels)
            video = VideoFileFrameSource(path, image_size, cache_size=cache_size)
            if video.video_width * video.video_height > limit:
                video.close()
                raise ImageTooLargeError(f"the frames of video '{path}'", video.video_width, video.video_height, limit)
            return video
        if not path.exists():
            raise FileNotFoundError(f"video source not found: '{path}' (expected a video file or a frame folder)")
        raise FrameSourceError(f"video source '{path}' is neither a regular file nor a folder")
    if isinstance(source, (bytes, bytearray)):
        raise TypeError("source must be a path, an array or an iterable of frames, not bytes")
    if isinstance(source, (np.ndarray, torch.Tensor, list, tuple)):
        return ArrayFrameSource(source, image_size, cache_size=cache_size)
    if isinstance(source, Image.Image):
        return ArrayFrameSource([source], image_size, cache_size=cache_size)
    if isinstance(source, collections.abc.Mapping):
        raise TypeError("source must be a path, an array or an iterable of frames, not a mapping")
    if isinstance(source, collections.abc.Iterable):
        return IterableFrameSource(source, image_size, max_cached=max_cached, cache_size=cache_size)
    raise TypeError(
        "source must be a path (file or folder), a uint8 array/tensor, a list of frames or an iterable of frames; "
        f"got {type(source).__name__}"
    )
