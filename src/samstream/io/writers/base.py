"""The interface every mask writer implements (frame by frame, closed or aborted once)."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Sequence, Union

import numpy as np

from ..overlay import as_bool_masks, as_obj_ids

__all__ = ["MaskWriter", "PathLike"]

PathLike = Union[str, "os.PathLike[str]"]


class MaskWriter(ABC):
    """Receives tracking results one frame at a time; use as a context manager.

    ``write(frame_idx, obj_ids, masks)``: ``masks`` is a bool array (numpy, or a
    torch tensor moved to CPU) of shape ``(N, H, W)`` or ``(N, 1, H, W)`` with
    one mask per id in ``obj_ids`` (unique non-negative ints).  Leaving the
    ``with`` block because of an exception calls :meth:`abort` instead of
    :meth:`close`.
    """

    def __init__(self) -> None:
        self._closed = False
        self.frames_written = 0

    def write(self, frame_idx: int, obj_ids: Sequence[int], masks: np.ndarray) -> None:
        """Record the masks of frame ``frame_idx``."""
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        if isinstance(frame_idx, bool) or not isinstance(frame_idx, (int, np.integer)) or int(frame_idx) < 0:
            raise ValueError(f"frame_idx must be an int >= 0, got {frame_idx!r}")
        bool_masks = as_bool_masks(masks)
        ids = as_obj_ids(obj_ids, bool_masks.shape[0])
        self._write(int(frame_idx), ids, bool_masks)
        self.frames_written += 1

    @abstractmethod
    def _write(self, frame_idx: int, obj_ids: list[int], masks: np.ndarray) -> None:
        """Write one validated frame: ``masks`` bool ``(N, H, W)``."""

    def _finish(self) -> None:
        """Finalize outputs (called once by :meth:`close`)."""

    def _discard(self) -> None:
        """Clean up after a failure (called once by :meth:`abort`); defaults to :meth:`_finish`."""
        self._finish()

    def close(self) -> None:
        """Finalize the output.  Idempotent."""
        if not self._closed:
            self._closed = True
            self._finish()

    def abort(self) -> None:
        """Stop after an error: complete files stay, incomplete outputs are removed.  Idempotent."""
        if not self._closed:
            self._closed = True
            self._discard()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> MaskWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
