"""The frame-source interface, its errors, frame validation and the LRU caches every source shares.

A :class:`FrameSource` gives random access to the frames of one video:

* ``get(i)``      -> float32 ``(3, image_size, image_size)``, the model input for frame ``i``
  (made by :func:`samstream.image.transforms.preprocess_frame`, the same recipe for every source);
* ``get_rgb(i)``  -> uint8 ``(video_height, video_width, 3)``, the frame at its own size;
* ``num_frames``  -> ``int``, or ``None`` while the length is unknown (live sources).

Frames are never all held in memory: each source keeps a small LRU cache of decoded RGB
frames and of model inputs (``cache_size`` entries each).
"""

from __future__ import annotations

import collections
import operator
import os
import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar, Union

import numpy as np
import torch
from PIL import Image

from ...image.transforms import check_image_size, preprocess_frame

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_ITERABLE_WINDOW",
    "FrameSourceError",
    "FrameDecodeError",
    "FrameIndexError",
    "FrameDroppedError",
    "CacheStats",
    "FrameSource",
    "FrameLike",
    "PathLike",
    "natural_sort_key",
    "to_rgb_uint8",
]

DEFAULT_CACHE_SIZE = 4
DEFAULT_ITERABLE_WINDOW = 16

PathLike = Union[str, "os.PathLike[str]"]
FrameLike = Union[np.ndarray, torch.Tensor, Image.Image]


class FrameSourceError(ValueError):
    """A frame source cannot be built from the given input (bad folder, array, file...)."""


class FrameDecodeError(FrameSourceError):
    """A frame file or a video file could not be read or decoded."""


class FrameIndexError(IndexError):
    """A frame index is outside the valid range of a source."""


class FrameDroppedError(RuntimeError):
    """A live (iterable) source was asked for a frame that has already left its window."""





@dataclass(frozen=True)
class CacheStats:
    """Counters of one LRU cache of a frame source."""

    hits: int
    misses: int
    size: int
    capacity: int


_K = TypeVar("_K")
_V = TypeVar("_V")


class _LruCache(Generic[_K, _V]):
    """A tiny least-recently-used mapping with hit / miss counters (not thread safe)."""

    def __init__(self, *, capacity: int) -> None:
        self.capacity = capacity
        self._items: collections.OrderedDict[_K, _V] = collections.OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: _K) -> _V | None:
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return value

    def put(self, key: _K, value: _V) -> None:
        if self.capacity <= 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def keys(self) -> tuple[_K, ...]:
        return tuple(self._items.keys())

    def clear(self) -> None:
        self._items.clear()

    def stats(self) -> CacheStats:
        return CacheStats(hits=self.hits, misses=self.misses, size=len(self._items), capacity=self.capacity)


_DIGITS = re.compile(r"(\d+)")


def natural_sort_key(name: str) -> tuple[Any, ...]:
    """Sort key ordering digit runs by value: ``"frame2.jpg" < "frame10.jpg"``.

    Pure-integer names (``"00000.jpg"``, ``"7.jpg"``) therefore sort numerically,
    like the reference loader.  Text parts compare case-insensitively; the full
    name breaks remaining ties (``"01.jpg"`` vs ``"1.jpg"``) so the order is total.
    """
    parts = _DIGITS.split(name)
    key: list[Any] = []
    for position, part in enumerate(parts):
        # re.split with one capture group alternates text, digits, text, ...
        key.append(int(part) if position % 2 == 1 else part.casefold())
    return (tuple(key), name)


def check_count(value: int, *, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def to_rgb_uint8(frame: FrameLike, *, what: str) -> np.ndarray:
    """Validate one frame and return it as a C-contiguous ``(H, W, 3)`` uint8 array.

    Accepts a PIL image (any mode, converted to RGB), a numpy ``(H, W, 3)`` uint8
    array, or a torch uint8 tensor ``(H, W, 3)`` or ``(3, H, W)``.  ``what`` names
    the frame in error messages (e.g. ``"frame 3"``).
    """
    if isinstance(frame, Image.Image):
        return np.asarray(frame.convert("RGB"))
    if isinstance(frame, torch.Tensor):
        if frame.dtype != torch.uint8:
            raise FrameSourceError(f"{what}: expected a uint8 tensor, got dtype {frame.dtype}")
        if frame.ndim == 3 and frame.shape[-1] != 3 and frame.shape[0] == 3:
            frame = frame.permute(1, 2, 0)
        array = frame.detach().cpu().numpy()
    elif isinstance(frame, np.ndarray):
        array = frame
    else:
        raise FrameSourceError(
            f"{what}: expected a numpy array, a torch tensor or a PIL image, got {type(frame).__name__}"
        )
    if array.dtype != np.uint8:
        raise FrameSourceError(f"{what}: expected dtype uint8 (RGB 0..255), got {array.dtype}")
    if array.ndim != 3 or array.shape[2] != 3:
        raise FrameSourceError(f"{what}: expected shape (H, W, 3) (RGB), got {tuple(array.shape)}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise FrameSourceError(f"{what}: frame is empty, shape {tuple(array.shape)}")
    return np.ascontiguousarray(array)


def read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view





class FrameSource(ABC):
    """Random access to the frames of one video (abstract base).

    Subclasses set ``video_height`` / ``video_width`` in their constructor and
    implement :meth:`_load_rgb`.  Access is serialized by a lock, so a source may
    be shared with a prefetching thread.

    Attributes:
        image_size: side of the square model input returned by :meth:`get`.
        video_height: height of the original frames (pixels).
        video_width: width of the original frames (pixels).
        fps: frame rate when known (video files), else ``None``.
    """

    image_size: int
    video_height: int
    video_width: int
    fps: float | None = None
    #: whether decoded RGB frames go through the RGB LRU cache (off for in-memory sources)
    _cache_rgb: bool = True

    def __init__(self, *, image_size: int, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.image_size = check_image_size(image_size)
        cache_size = check_count(cache_size, name="cache_size", minimum=0)
        self._tensor_cache: _LruCache[int, torch.Tensor] = _LruCache(capacity=cache_size)
        self._rgb_cache: _LruCache[int, np.ndarray] = _LruCache(capacity=cache_size if self._cache_rgb else 0)
        self._lock = threading.RLock()
        self._closed = False

    # -- to implement -------------------------------------------------------------

    @property
    @abstractmethod
    def num_frames(self) -> int | None:
        """Number of frames, or ``None`` while unknown (live iterables)."""

    @abstractmethod
    def _load_rgb(self, index: int) -> np.ndarray:
        """Decode frame ``index`` (already validated) as ``(H, W, 3)`` uint8."""

    def _describe(self) -> str:
        """Short human-readable name of the source for error messages."""
        return type(self).__name__

    def _ensure_index(self, index: int) -> None:
        """Raise if ``index`` (a non-negative int) is not available; may pull frames."""
        total = self.num_frames
        if total is not None and index >= total:
            raise FrameIndexError(
                f"frame index {index} is out of range for {self._describe()}: "
                f"valid indices are 0..{total - 1} ({total} frames)"
            )

    def _release(self) -> None:
        """Free decoder resources (files, containers)."""

    # -- public API --------------------------------------------------------------

    def get(self, index: int) -> torch.Tensor:
        """Model input for frame ``index``.

        Returns:
            a new float32 CPU tensor ``(3, image_size, image_size)``, normalized with
            ``IMAGENET_MEAN`` / ``IMAGENET_STD`` (safe to modify: the cache keeps its own copy).
        """
        with self._lock:
            frame_index = self._validate_index(index)
            cached = self._tensor_cache.get(frame_index)
            if cached is None:
                cached = preprocess_frame(self._rgb(frame_index), self.image_size)
                self._tensor_cache.put(frame_index, cached)
            return cached.clone()

    def get_rgb(self, index: int) -> np.ndarray:
        """Frame ``index`` at its original resolution.

        Returns:
            read-only uint8 array ``(video_height, video_width, 3)`` (copy it before
            drawing on it).
        """
        with self._lock:
            return self._rgb(self._validate_index(index))

    def has_frame(self, index: int) -> bool:
        """Whether frame ``index`` exists (pulls a live iterable forward if needed).

        A frame that existed but was dropped from a live source's window still
        counts as existing.
        """
        with self._lock:
            try:
                self._validate_index(index)
            except FrameIndexError:
                return False
            except FrameDroppedError:
                return True
            return True

    @property
    def cache_stats(self) -> CacheStats:
        """Counters of the model-input (tensor) cache."""
        return self._tensor_cache.stats()

    @property
    def rgb_cache_stats(self) -> CacheStats:
        """Counters of the decoded-RGB cache."""
        return self._rgb_cache.stats()

    def cached_indices(self) -> tuple[int, ...]:
        """Frame indices whose model input is currently cached, least recent first."""
        return self._tensor_cache.keys()

    def close(self) -> None:
        """Release files / decoders and drop the caches.  Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._tensor_cache.clear()
            self._rgb_cache.clear()
            self._release()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __len__(self) -> int:
        total = self.num_frames
        if total is None:
            raise TypeError(f"{self._describe()} has an unknown number of frames (live source)")
        return total

    def __bool__(self) -> bool:
        return True

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.get(index)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._describe()}, num_frames={self.num_frames}, "
            f"video_size=({self.video_height}, {self.video_width}), image_size={self.image_size})"
        )

    # -- internals ---------------------------------------------------------------

    def _validate_index(self, index: int) -> int:
        if self._closed:
            raise RuntimeError(f"{self._describe()} is closed")
        if isinstance(index, bool):
            raise TypeError(f"frame index must be an int, got bool {index!r}")
        try:
            value = operator.index(index)
        except TypeError:
            raise TypeError(f"frame index must be an int, got {type(index).__name__}") from None
        if value < 0:
            total = self.num_frames
            valid = f"0..{total - 1}" if total is not None else "0 and up"
            raise FrameIndexError(
                f"frame index {value} is out of range for {self._describe()}: valid indices are {valid}"
                " (negative indices are not supported)"
            )
        self._ensure_index(value)
        return value

    def _rgb(self, index: int) -> np.ndarray:
        cached = self._rgb_cache.get(index)
        if cached is None:
            cached = read_only(self._load_rgb(index))
            self._rgb_cache.put(index, cached)
        return cached
