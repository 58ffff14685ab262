"""The slices of a 3-D volume as the frames of a video (CT / MRI tracked like a video).

Slice ``s`` along axis ``a`` shows the two other voxel axes p < q: q down the rows, p across
the columns, so along the last axis of a DICOM series a slice looks like the DICOM image.
Voxel values become gray RGB through an :class:`~samstream.io.volumes.IntensityWindow`.
"""

from __future__ import annotations

import numpy as np

from ...io.volumes import IntensityWindow, Volume
from .base import DEFAULT_CACHE_SIZE, FrameSource, FrameSourceError

__all__ = ["VolumeFrameSource", "slice_plane", "plane_index"]


def _check_axis(axis: int) -> int:
    if isinstance(axis, bool) or axis not in (0, 1, 2):
        raise FrameSourceError(f"axis must be 0, 1 or 2, got {axis!r}")
    return int(axis)


def slice_plane(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """The plane [Q, P] of ``volume`` [I, J, K] at ``index`` along ``axis`` (a view)."""
    return np.moveaxis(volume, _check_axis(axis), 0)[index].T


def plane_index(shape: tuple[int, int, int], axis: int) -> tuple[int, int, int]:
    """(slices, height, width) of the frames along ``axis`` of a volume of ``shape``."""
    axis = _check_axis(axis)
    rest = [shape[a] for a in range(3) if a != axis]
    return shape[axis], rest[1], rest[0]


class VolumeFrameSource(FrameSource):
    """Frames = slices of ``volume`` along ``axis``, windowed to uint8 gray RGB."""

    _cache_rgb = False  # a slice is cheap to window again

    def __init__(
        self,
        volume: Volume,
        image_size: int,
        *,
        axis: int = 2,
        window: IntensityWindow | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        super().__init__(image_size=image_size, cache_size=cache_size)
        if volume.data.ndim != 3:
            raise FrameSourceError(f"a volume must be 3-D, got shape {volume.data.shape}")
        self.volume = volume
        self.axis = _check_axis(axis)
        self.window = window if window is not None else IntensityWindow.from_percentiles(volume.data)
        self._count, self.video_height, self.video_width = plane_index(volume.data.shape, self.axis)

    @property
    def num_frames(self) -> int:
        return self._count

    def _load_rgb(self, index: int) -> np.ndarray:
        gray = self.window.apply(slice_plane(self.volume.data, self.axis, index))
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))

    def _describe(self) -> str:
        return f"volume {self.volume.source} (axis {self.axis})"
