"""A live source that the caller pushes frames into (used by the streaming tracker)."""

from __future__ import annotations

import collections

import numpy as np

from .base import FrameDroppedError, FrameIndexError, FrameLike, FrameSource, FrameSourceError, check_count, to_rgb_uint8

__all__ = ["PushFrameSource"]


class PushFrameSource(FrameSource):
    """A frame source that frames are appended to; it keeps the last ``window`` frames."""

    _cache_rgb = False

    def __init__(self, image_size: int, *, window: int = 8, cache_size: int = 2) -> None:
        super().__init__(image_size=image_size, cache_size=cache_size)
        window = check_count(window, name="window", minimum=1)
        self._window: collections.deque[np.ndarray] = collections.deque(maxlen=window)
        self._count = 0
        self.video_height = 0
        self.video_width = 0

    @property
    def num_frames(self) -> int | None:
        return None  # a live stream has no known end

    @property
    def frames_pushed(self) -> int:
        return self._count

    def push(self, frame: FrameLike) -> int:
        """Append a frame (HWC uint8 RGB array, PIL image or uint8 tensor); returns its index."""
        rgb = to_rgb_uint8(frame, what=f"frame {self._count}")
        if self._count == 0:
            self.video_height, self.video_width = int(rgb.shape[0]), int(rgb.shape[1])
        elif rgb.shape[:2] != (self.video_height, self.video_width):
            raise FrameSourceError(
                f"frame {self._count} is {rgb.shape[1]}x{rgb.shape[0]} (WxH) but the stream is "
                f"{self.video_width}x{self.video_height}"
            )
        with self._lock:
            self._window.append(rgb)
            self._count += 1
        return self._count - 1

    def _describe(self) -> str:
        return "live stream"

    def _ensure_index(self, index: int) -> None:
        if index >= self._count:
            raise FrameIndexError(f"frame {index} has not arrived yet ({self._count} frames so far)")
        oldest = self._count - len(self._window)
        if index < oldest:
            raise FrameDroppedError(f"frame {index} of the live stream is no longer kept (oldest kept: {oldest})")

    def _load_rgb(self, index: int) -> np.ndarray:
        return self._window[index - (self._count - len(self._window))]

