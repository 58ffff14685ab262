"""Frame sources: random access to the RGB uint8 frames of a video, decoded on demand.

One module per kind of source: :mod:`.folder` (image files), :mod:`.video_file` (PyAV),
:mod:`.array` (arrays, tensors, lists), :mod:`.iterable` (generators, cameras read by the
caller), :mod:`.push` (frames pushed by the caller), :mod:`.volume` (slices of a 3-D volume); :func:`open_frame_source` picks one.
All of them turn frames into model input with :func:`samstream.image.transforms.preprocess_frame`.
"""

from .array import ArrayFrameSource
from .base import (
    DEFAULT_CACHE_SIZE,
    DEFAULT_ITERABLE_WINDOW,
    CacheStats,
    FrameDecodeError,
    FrameDroppedError,
    FrameIndexError,
    FrameLike,
    FrameSource,
    FrameSourceError,
    natural_sort_key,
    to_rgb_uint8,
)
from .folder import IMAGE_SUFFIXES, FolderFrameSource
from .iterable import IterableFrameSource
from .open import FrameSourceInput, open_frame_source
from .push import PushFrameSource
from .video_file import VideoFileFrameSource
from .volume import VolumeFrameSource

__all__ = [
    "ArrayFrameSource",
    "CacheStats",
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_ITERABLE_WINDOW",
    "FolderFrameSource",
    "FrameDecodeError",
    "FrameDroppedError",
    "FrameIndexError",
    "FrameLike",
    "FrameSource",
    "FrameSourceError",
    "FrameSourceInput",
    "IMAGE_SUFFIXES",
    "IterableFrameSource",
    "PushFrameSource",
    "VideoFileFrameSource",
    "VolumeFrameSource",
    "natural_sort_key",
    "open_frame_source",
    "to_rgb_uint8",
]
