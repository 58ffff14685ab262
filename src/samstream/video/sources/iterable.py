"""Frames pulled on demand from an iterable of unknown length, keeping a sliding window."""

from __future__ import annotations

import collections
from typing import Iterable, Iterator

import numpy as np

from .base import (
    DEFAULT_CACHE_SIZE,
    DEFAULT_ITERABLE_WINDOW,
    FrameDroppedError,
    FrameIndexError,
    FrameLike,
    FrameSource,
    FrameSourceError,
    check_count,
    to_rgb_uint8,
)

__all__ = ["IterableFrameSource"]


class IterableFrameSource(FrameSource):
    """Frames pulled on demand from an iterable of unknown length (camera, network stream...).

    Items may be PIL images, ``(H, W, 3)`` uint8 arrays or uint8 tensors
    ``(H, W, 3)`` / ``(3, H, W)``; all must have the size of the first one (which
    is pulled at construction).  Only the ``max_cached`` most recently pulled
    frames are kept: asking for an older frame raises :class:`FrameDroppedError`.
    ``num_frames`` is ``None`` until the iterable is exhausted.
    """

    _cache_rgb = False

    def __init__(
        self,
        iterable: Iterable[FrameLike],
        image_size: int,
        *,
        max_cached: int = DEFAULT_ITERABLE_WINDOW,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        super().__init__(image_size=image_size, cache_size=cache_size)
        self.max_cached = check_count(max_cached, name="max_cached", minimum=1)
        try:
            self._iterator: Iterator[FrameLike] | None = iter(iterable)
        except TypeError:
            raise FrameSourceError(f"iterable must be iterable, got {type(iterable).__name__}") from None
        self._window: collections.deque[np.ndarray] = collections.deque(maxlen=self.max_cached)
        self._pulled = 0
        self._exhausted = False
        if not self._pull_one():
            raise FrameSourceError("the frame iterable yielded no frames")
        first = self._window[0]
        self.video_height, self.video_width = int(first.shape[0]), int(first.shape[1])

    @property
    def num_frames(self) -> int | None:
        return self._pulled if self._exhausted else None

    @property
    def frames_pulled(self) -> int:
        """How many frames have been taken from the iterable so far."""
        return self._pulled

    @property
    def oldest_available(self) -> int:
        """Smallest frame index still held in the window."""
        return self._pulled - len(self._window)

    def _describe(self) -> str:
        return "live frame iterable"

    def _pull_one(self) -> bool:
        if self._exhausted or self._iterator is None:
            return False
        try:
            item = next(self._iterator)
        except StopIteration:
            self._exhausted = True
            self._iterator = None
            return False
        rgb = to_rgb_uint8(item, what=f"frame {self._pulled} of the iterable")
        if self._window and rgb.shape != self._window[-1].shape:
            raise FrameSourceError(
                f"frame {self._pulled} of the iterable has size {rgb.shape[1]}x{rgb.shape[0]} (WxH) but "
                f"earlier frames are {self._window[-1].shape[1]}x{self._window[-1].shape[0]}"
            )
        self._window.append(rgb)
        self._pulled += 1
        return True

    def _ensure_index(self, index: int) -> None:
        while self._pulled <= index and self._pull_one():
            pass
        if index >= self._pulled:
            raise FrameIndexError(
                f"frame index {index} is out of range for {self._describe()}: the stream ended after "
                f"{self._pulled} frames (valid indices are 0..{self._pulled - 1})"
            )
        if index < self.oldest_available:
            raise FrameDroppedError(
                f"frame {index} of the {self._describe()} was dropped: only the last {self.max_cached} "
                f"frames are kept (frames {self.oldest_available}..{self._pulled - 1} are available); "
                "increase max_cached to keep more"
            )

    def _load_rgb(self, index: int) -> np.ndarray:
        return self._window[index - self.oldest_available]

    def _release(self) -> None:
        self._window.clear()
        close = getattr(self._iterator, "close", None)
        self._iterator = None
        if callable(close):
            close()
