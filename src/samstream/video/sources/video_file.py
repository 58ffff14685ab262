"""Frames of a video file, decoded lazily with PyAV (seeking to keyframes when going back)."""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from .base import DEFAULT_CACHE_SIZE, FrameDecodeError, FrameSource, FrameSourceError, PathLike

if TYPE_CHECKING:  # pragma: no cover
    import av.container

__all__ = ["VideoFileFrameSource"]


def _import_av() -> Any:
    try:
        import av
    except ImportError:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "reading video files needs PyAV: install it with `pip install av` (or samstream[video])"
        ) from None
    return av


class VideoFileFrameSource(FrameSource):
    """Frames of a video file (any container / codec FFmpeg reads), decoded lazily with PyAV.

    At construction one demux pass (no decoding) reads every packet header of
    the first video stream to count the frames and record their timestamps and
    keyframes; then frame 0 is decoded to validate the file and get its size.

    Access pattern: reading forward decodes forward (no seek) as long as no
    keyframe lies between the current position and the target; otherwise the
    source seeks to the keyframe before the target and decodes forward from
    there.  Going backwards one frame at a time therefore costs one
    keyframe-to-frame decode per step.

    Resizing for :meth:`get` uses the PIL recipe of :func:`preprocess_frame`
    (bicubic), not the reference's decoder-side resize, so that results match a
    folder of frames exported from the same video.
    """

    def __init__(self, path: PathLike, image_size: int, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        super().__init__(image_size=image_size, cache_size=cache_size)
        self._av = _import_av()
        video_path = Path(path)
        if not video_path.exists():
            raise FileNotFoundError(f"video file not found: '{video_path}'")
        if video_path.is_dir():
            raise FrameSourceError(f"'{video_path}' is a folder (use FolderFrameSource for frame folders)")
        self.path = video_path
        self._container: av.container.InputContainer | None = None
        self._decoder: Iterator[Any] | None = None
        self._next_index: int | None = None  # index of the next frame the decoder yields, if known

        self._frame_pts: list[int] | None = None  # presentation order, one per frame
        self._pts_to_index: dict[int, int] = {}
        self._keyframes: list[int] = []
        self._num_frames = 0
        self._index_packets()
        if self._num_frames == 0:
            raise FrameDecodeError(f"video file '{video_path}' contains no video frames")
        try:
            first = self._rgb(self._validate_index(0))
        except BaseException:
            self._release()
            raise
        self.video_height, self.video_width = int(first.shape[0]), int(first.shape[1])

    @property
    def num_frames(self) -> int:
        return self._num_frames

    def _describe(self) -> str:
        return f"video file '{self.path}'"

    # -- container handling -------------------------------------------------------

    def _open(self) -> Any:
        av = self._av
        try:
            container = av.open(str(self.path), mode="r")
        except (av.FFmpegError, OSError) as error:
            raise FrameDecodeError(
                f"cannot open video file '{self.path}' (unreadable, truncated or not a video): {error}"
            ) from None
        if not container.streams.video:
            container.close()
            raise FrameSourceError(f"file '{self.path}' has no video stream")
        return container

    def _index_packets(self) -> None:
        """Demux (without decoding) to count frames and map timestamps to indices."""
        av = self._av
        container = self._open()
        try:
            stream = container.streams.video[0]
            declared = int(stream.frames or 0)
            rate = stream.average_rate or stream.guessed_rate
            self.fps = float(rate) if rate else None
            packets = 0
            pts_values: list[int] = []
            keyframe_pts: list[int] = []
            has_all_pts = True
            try:
                for packet in container.demux(stream):
                    if packet.size == 0:  # end-of-stream flush packet
                        continue
                    packets += 1
                    if packet.is_discard:
                        continue
                    if packet.pts is None:
                        has_all_pts = False
                        pts_values.append(-1)
                        continue
                    pts_values.append(int(packet.pts))
                    if packet.is_keyframe:
                        keyframe_pts.append(int(packet.pts))
            except av.FFmpegError as error:
                raise FrameDecodeError(f"video file '{self.path}' is corrupt or truncated: {error}") from None
        finally:
            container.close()
        if declared > 0 and packets < declared:
            raise FrameDecodeError(
                f"video file '{self.path}' looks truncated: its header declares {declared} frames "
                f"but only {packets} are present"
            )
        self._num_frames = len(pts_values)
        if has_all_pts and len(set(pts_values)) == len(pts_values):
            self._frame_pts = sorted(pts_values)
            self._pts_to_index = {pts: index for index, pts in enumerate(self._frame_pts)}
            self._keyframes = sorted(self._pts_to_index[pts] for pts in keyframe_pts)
        else:  # no usable timestamps: frames are counted in decode order, seeking restarts
            self._frame_pts = None

    def _keyframe_before(self, index: int) -> int:
        """Index of the last keyframe at or before ``index`` (0 when unknown)."""
        position = bisect.bisect_right(self._keyframes, index) - 1
        return self._keyframes[position] if position >= 0 else 0

    def _restart(self, *, seek_to_index: int | None) -> None:
        """Reset the decoder: from the first frame, or from the keyframe before ``seek_to_index``."""
        from_start = (
            seek_to_index is None or self._frame_pts is None or self._keyframe_before(seek_to_index) == 0
        )
        if from_start or self._container is None:
            if self._container is not None:
                self._container.close()
            self._container = None
            self._container = self._open()
        container = self._container
        stream = container.streams.video[0]
        if from_start:
            self._next_index = 0
        else:
            assert self._frame_pts is not None and seek_to_index is not None
            target_pts = self._frame_pts[seek_to_index]
            try:
                container.seek(target_pts, stream=stream, backward=True, any_frame=False)
            except self._av.FFmpegError as error:
                raise FrameDecodeError(f"cannot seek in video file '{self.path}': {error}") from None
            self._next_index = None
        self._decoder = iter(container.decode(stream))

    def _decode_next(self) -> tuple[int, Any] | None:
        """Next decoded frame as ``(index, av.VideoFrame)``, or ``None`` at the end."""
        assert self._decoder is not None
        while True:
            try:
                frame = next(self._decoder)
            except StopIteration:
                self._decoder = None
                self._next_index = None
                return None
            except self._av.FFmpegError as error:
                self._decoder = None
                self._next_index = None
                raise FrameDecodeError(f"error while decoding video file '{self.path}': {error}") from None
            if self._frame_pts is not None:
                index = self._pts_to_index.get(frame.pts) if frame.pts is not None else None
                if index is None:
                    continue  # a frame the demux pass did not count (should not happen)
            else:
                if self._next_index is None:
                    raise RuntimeError("decoder position lost without timestamps")  # pragma: no cover
                index = self._next_index
            self._next_index = index + 1
            return index, frame

    def _can_decode_forward_to(self, index: int) -> bool:
        if self._decoder is None or self._next_index is None or index < self._next_index:
            return False
        if self._frame_pts is None:
            return True
        # forward decoding is cheaper unless a keyframe lies strictly after the current position
        return self._keyframe_before(index) <= self._next_index

    def _load_rgb(self, index: int) -> np.ndarray:
        if not self._can_decode_forward_to(index):
            self._restart(seek_to_index=index)
        restarted_from_start = self._next_index == 0
        while True:
            item = self._decode_next()
            if item is None:
                raise FrameDecodeError(
                    f"could not decode frame {index} of video file '{self.path}' "
                    f"(the file may be truncated or corrupt)"
                )
            found, frame = item
            if found == index:
                return frame.to_ndarray(format="rgb24")
            if found > index:
                if restarted_from_start:
                    raise FrameDecodeError(
                        f"could not decode frame {index} of video file '{self.path}': "
                        f"decoding skipped from an earlier frame to frame {found}"
                    )
                # the seek overshot (imprecise index in the container): decode from the start
                self._restart(seek_to_index=None)
                restarted_from_start = True

    def _release(self) -> None:
        self._decoder = None
        self._next_index = None
        if self._container is not None:
            self._container.close()
            self._container = None
