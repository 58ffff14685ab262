"""The video with every object's mask blended in (MP4 / MOV / MKV through PyAV)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

import numpy as np

from ..overlay import PromptMarks, draw_mask_labels, draw_prompts, overlay_masks
from .base import MaskWriter, PathLike

__all__ = ["OverlayVideoWriter", "RgbFrameProvider"]


@runtime_checkable
class RgbFrameProvider(Protocol):
    """Anything with ``get_rgb(index) -> (H, W, 3) uint8`` (e.g. a ``FrameSource``)."""

    def get_rgb(self, index: int) -> np.ndarray: ...


_CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def _pick_codec(av: Any) -> str:
    for name in ("libx264", "mpeg4"):
        try:
            av.Codec(name, "w")
        except Exception:  # noqa: BLE001 - PyAV raises different errors across versions
            continue
        return name
    raise RuntimeError("no usable video encoder found in PyAV (tried libx264 and mpeg4)")


class OverlayVideoWriter(MaskWriter):
    """Writes the video with colored, semi-transparent masks (:func:`overlay_masks`).

    Frames are appended in the order of :meth:`write` calls (``frame_idx``
    selects the RGB frame, not the position in the output).  Encoding uses
    libx264 (or mpeg4 when x264 is missing), yuv420p; odd widths / heights are
    padded by one replicated pixel row / column to be even.  Output goes to
    ``<path>.partial`` and is renamed to ``path`` by :meth:`close`; :meth:`abort`
    (also on an exception inside ``with``) finishes the frames already encoded into a
    complete, shorter video (the partial file is deleted only if that fails).  If no
    frame was written, no file is created.

    MP4 / MOV output is fragmented (``frag_keyframe+empty_moov+default_base_moof``)
    with a keyframe every ``keyframe_seconds`` and no encoder delay, and each fragment
    is flushed to disk as it is finished: a process killed outright (``kill -9``, power
    loss of the page cache aside) leaves a ``.partial`` file that plays up to its last
    fragment, losing at most about ``keyframe_seconds`` of frames.

    Args:
        path: output video (``.mp4``; ``.mov`` / ``.mkv`` also work).
        fps: frame rate of the output.
        frames: a frame source (``get_rgb``) or a callable ``frame_idx -> (H, W, 3) uint8``.
        alpha: mask opacity.
        codec: force an encoder name (default: libx264, else mpeg4).
        marks: prompts to draw per frame index (clicks and boxes, :func:`draw_prompts`).
        labels: obj_id -> text written at each object's mask on every frame (:func:`draw_mask_labels`);
            a dict the caller may keep filling while frames are written (objects found later).
        keyframe_seconds: distance between keyframes, i.e. between flushed fragments.
    """

    def __init__(
        self,
        path: PathLike,
        fps: float,
        frames: RgbFrameProvider | Callable[[int], np.ndarray],
        *,
        alpha: float = 0.5,
        codec: str | None = None,
        marks: Mapping[int, PromptMarks] | None = None,
        keyframe_seconds: float = 1.0,
        labels: Mapping[int, str] | None = None,
    ) -> None:
        super().__init__()
        try:
            import av
        except ImportError:  # pragma: no cover - depends on the environment
            raise RuntimeError("writing videos needs PyAV: install it with `pip install av`") from None
        self._av = av
        if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating, Fraction)) or not fps > 0:
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be within [0, 1], got {alpha}")
        if isinstance(frames, RgbFrameProvider):
            self._frame_getter: Callable[[int], np.ndarray] = frames.get_rgb
        elif callable(frames):
            self._frame_getter = frames
        else:
            raise TypeError(
                f"frames must have a get_rgb(index) method or be callable, got {type(frames).__name__}"
            )
        self.path = Path(path)
        self.partial_path = self.path.with_name(self.path.name + ".partial")
        self.fps = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
        self.alpha = float(alpha)
        if not (isinstance(keyframe_seconds, (int, float)) and keyframe_seconds > 0):
            raise ValueError(f"keyframe_seconds must be a positive number, got {keyframe_seconds!r}")
        self.keyframe_interval = max(1, round(float(self.fps) * float(keyframe_seconds)))  # frames
        self.marks: dict[int, PromptMarks] = dict(marks or {})
        self.labels: Mapping[int, str] = labels if labels is not None else {}
        self.codec = codec if codec is not None else _pick_codec(av)
        self._container: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None  # (height, width) of the input frames

    def _open(self, height: int, width: int) -> None:
        av = self._av
        self.partial_path.parent.mkdir(parents=True, exist_ok=True)
        container_format = _CONTAINER_FORMATS.get(self.path.suffix.lower(), "mp4")
        # fragmented MP4: every keyframe starts a fragment that is complete on disk once written
        # (flush_packets: FFmpeg hands every write to the OS at once, so kill -9 cannot lose it)
        options = {"flush_packets": "1"}
        if container_format in ("mp4", "mov"):
            options["movflags"] = "frag_keyframe+empty_moov+default_base_moof"
        try:
            container = av.open(str(self.partial_path), mode="w", format=container_format, options=options)
            stream = container.add_stream(self.codec, rate=self.fps)
        except (av.FFmpegError, ValueError) as error:
            raise RuntimeError(f"cannot create video '{self.partial_path}' with codec {self.codec}: {error}") from None
        stream.width = width + width % 2
        stream.height = height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = self.keyframe_interval
        if self.codec == "libx264":
            # zerolatency: no lookahead or B-frames, so each frame's packet comes out at once;
            # keyint/scenecut pin the keyframes (and hence the fragments) to the interval
            stream.options = {
                "crf": "18",
                "preset": "veryfast",
                "tune": "zerolatency",
                "x264-params": f"keyint={self.keyframe_interval}:min-keyint={self.keyframe_interval}:scenecut=0",
            }
        else:
            stream.bit_rate = max(1_000_000, int(stream.width * stream.height * float(self.fps) * 0.5))
        self._container, self._stream, self._size = container, stream, (height, width)

    def _frame_rgb(self, frame_idx: int) -> np.ndarray:
        rgb = self._frame_getter(frame_idx)
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(
                f"the RGB frame {frame_idx} must be a (H, W, 3) uint8 array, got "
                f"shape={getattr(rgb, 'shape', None)} dtype={getattr(rgb, 'dtype', type(rgb).__name__)}"
            )
        return rgb

    def _write(self, frame_idx: int, obj_ids: list[int], masks: np.ndarray) -> None:
        rgb = self._frame_rgb(frame_idx)
        if self._size is None:
            self._open(int(rgb.shape[0]), int(rgb.shape[1]))
        elif rgb.shape[:2] != self._size:
            raise ValueError(f"RGB frame {frame_idx} is {rgb.shape[:2]} (H, W), earlier frames were {self._size}")
        blended = overlay_masks(rgb, masks, obj_ids, alpha=self.alpha)
        if frame_idx in self.marks:
            blended = draw_prompts(blended, self.marks[frame_idx])
        if self.labels:
            blended = draw_mask_labels(blended, masks, obj_ids, self.labels)
        height, width = blended.shape[:2]
        if height % 2 or width % 2:
            blended = np.pad(blended, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(blended), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)  # a keyframe packet closes the previous fragment

    def _finish(self) -> None:
        if self._container is None:
            return
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None
        os.replace(self.partial_path, self.path)

    def _discard(self) -> None:
        try:
            self._finish()  # keep what was done: a valid video of the frames written so far
            return
        except Exception:  # noqa: BLE001 - the encoder itself failed: fall back to deleting
            pass
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - best effort while already failing
                pass
            self._container = None
        try:
            os.unlink(self.partial_path)
        except FileNotFoundError:
            pass
