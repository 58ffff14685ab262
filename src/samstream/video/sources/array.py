"""Frames already in memory: a uint8 array or tensor, or a list of frames."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .base import DEFAULT_CACHE_SIZE, FrameLike, FrameSource, FrameSourceError, to_rgb_uint8

__all__ = ["ArrayFrameSource"]


class ArrayFrameSource(FrameSource):
    """Frames already in memory.

    Accepted ``frames``:

    * numpy or torch uint8 ``(T, H, W, 3)``;
    * numpy or torch uint8 ``(T, 3, H, W)`` (recognized when the last axis is not 3);
    * a list / tuple of frames, each a PIL image, a ``(H, W, 3)`` uint8 array or a
      uint8 tensor ``(H, W, 3)`` / ``(3, H, W)``; all frames must have the same size.

    The frames are referenced, not copied (lists are converted once per frame
    on access); :meth:`get_rgb` returns read-only views.
    """

    _cache_rgb = False

    def __init__(
        self,
        frames: np.ndarray | torch.Tensor | Sequence[FrameLike],
        image_size: int,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        super().__init__(image_size=image_size, cache_size=cache_size)
        self._stack: np.ndarray | torch.Tensor | None = None
        self._channels_first = False
        self._items: list[FrameLike] | None = None
        if isinstance(frames, (np.ndarray, torch.Tensor)):
            self._init_stack(frames)
        elif isinstance(frames, (list, tuple)):
            self._init_list(frames)
        else:
            raise FrameSourceError(
                "frames must be a uint8 array/tensor (T, H, W, 3) or (T, 3, H, W), or a list of frames; "
                f"got {type(frames).__name__}"
            )

    def _init_stack(self, frames: np.ndarray | torch.Tensor) -> None:
        is_tensor = isinstance(frames, torch.Tensor)
        dtype_ok = frames.dtype == torch.uint8 if is_tensor else frames.dtype == np.uint8
        if not dtype_ok:
            raise FrameSourceError(f"frames must have dtype uint8 (RGB 0..255), got {frames.dtype}")
        shape = tuple(frames.shape)
        if len(shape) != 4:
            raise FrameSourceError(f"frames must be 4-D (T, H, W, 3) or (T, 3, H, W), got shape {shape}")
        if shape[3] == 3:
            height, width = shape[1], shape[2]
        elif shape[1] == 3:
            self._channels_first = True
            height, width = shape[2], shape[3]
        else:
            raise FrameSourceError(f"frames must be (T, H, W, 3) or (T, 3, H, W) RGB, got shape {shape}")
        if shape[0] == 0:
            raise FrameSourceError("frames is empty (T = 0)")
        if height == 0 or width == 0:
            raise FrameSourceError(f"frames have an empty spatial size, shape {shape}")
        self._stack = frames.detach().cpu() if is_tensor else frames
        self._count = shape[0]
        self.video_height, self.video_width = int(height), int(width)

    def _init_list(self, frames: Sequence[FrameLike]) -> None:
        if len(frames) == 0:
            raise FrameSourceError("frames is an empty list")
        sizes: list[tuple[int, int]] = []
        for position, frame in enumerate(frames):
            sizes.append(self._frame_size(frame, position))
            if sizes[-1] != sizes[0]:
                raise FrameSourceError(
                    f"frame {position} has size {sizes[-1][1]}x{sizes[-1][0]} (WxH) but frame 0 has "
                    f"{sizes[0][1]}x{sizes[0][0]}: all frames must have the same size"
                )
        self._items = list(frames)
        self._count = len(frames)
        self.video_height, self.video_width = sizes[0]

    @staticmethod
    def _frame_size(frame: FrameLike, position: int) -> tuple[int, int]:
        """(height, width) of one list item, validating it (PIL images are not decoded)."""
        if isinstance(frame, Image.Image):
            return frame.height, frame.width
        checked = to_rgb_uint8(frame, what=f"frame {position}")
        return int(checked.shape[0]), int(checked.shape[1])

    @property
    def num_frames(self) -> int:
        return self._count

    def _describe(self) -> str:
        return f"in-memory frames ({self._count})"

    def _load_rgb(self, index: int) -> np.ndarray:
        if self._items is not None:
            return to_rgb_uint8(self._items[index], what=f"frame {index}")
        assert self._stack is not None
        frame = self._stack[index]
        if isinstance(frame, torch.Tensor):
            frame = frame.numpy()
        if self._channels_first:
            frame = frame.transpose(1, 2, 0)
        return np.ascontiguousarray(frame)
