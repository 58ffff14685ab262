"""Frame sources: random access to the frames of a video, decoded on demand.

Every source exposes the same small interface (:class:`FrameSource`):

* ``get(i)``      -> ``torch.Tensor`` float32 ``(3, image_size, image_size)``, the
  model input for frame ``i`` (resized to a square and normalized with the
  ImageNet mean / std used by SAM 2);
* ``get_rgb(i)``  -> ``np.ndarray`` uint8 ``(video_height, video_width, 3)``, the
  frame at its own resolution (for overlays and other outputs);
* ``num_frames``  -> ``int`` or ``None`` when the length is not known yet (live
  iterables);
* ``video_height`` / ``video_width`` / ``image_size`` / ``fps``.

Frames are never all held in memory: each source keeps a small LRU cache of
decoded RGB frames and of model-input tensors (``cache_size`` entries each).

Preprocessing recipe (identical for every source, so that a video file, the
same video exported as a lossless PNG folder, and the same frames held in an
array give bit-identical model inputs)::

    rgb (H, W, 3) uint8
      -> PIL.Image.fromarray(rgb).resize((S, S))        # PIL default filter (bicubic)
      -> np.asarray(...) / 255.0                         # float64
      -> torch float32, permuted to (3, S, S)
      -> (x - mean) / std                                # float32, mean/std shaped (3, 1, 1)

For image folders this is exactly what the reference JPEG-folder loader does
(``Image.open(p).convert("RGB").resize((S, S))``).  For video files the
reference resizes inside its decoder instead; here the decoded RGB frame goes
through the PIL recipe above, so results agree with a frame folder exported
from the same video.  Rotation metadata of video files and EXIF orientation of
images are ignored, as in the reference.
"""

from __future__ import annotations

import bisect
import collections
import collections.abc
import operator
import os
import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Iterable, Iterator, Sequence, TypeVar, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

if TYPE_CHECKING:  # pragma: no cover
    import av.container

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_SUFFIXES",
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_ITERABLE_WINDOW",
    "FrameSourceError",
    "FrameDecodeError",
    "FrameIndexError",
    "FrameDroppedError",
    "CacheStats",
    "FrameSource",
    "FolderFrameSource",
    "VideoFileFrameSource",
    "ArrayFrameSource",
    "IterableFrameSource",
    "open_frame_source",
    "natural_sort_key",
    "preprocess_frame",
    "to_rgb_uint8",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png"})
DEFAULT_CACHE_SIZE = 4
DEFAULT_ITERABLE_WINDOW = 16

_MEAN_TENSOR = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]
_STD_TENSOR = torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None, None]

PathLike = Union[str, "os.PathLike[str]"]
FrameLike = Union[np.ndarray, torch.Tensor, Image.Image]


# --------------------------------------------------------------------------- errors


class FrameSourceError(ValueError):
    """A frame source cannot be built from the given input (bad folder, array, file...)."""


class FrameDecodeError(FrameSourceError):
    """A frame file or a video file could not be read or decoded."""


class FrameIndexError(IndexError):
    """A frame index is outside the valid range of a source."""


class FrameDroppedError(RuntimeError):
    """A live (iterable) source was asked for a frame that has already left its window."""


# --------------------------------------------------------------------------- helpers


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


def _check_image_size(image_size: int) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or int(image_size) <= 0:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    return int(image_size)


def _check_count(value: int, *, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def preprocess_frame(rgb: np.ndarray, image_size: int) -> torch.Tensor:
    """Turn one RGB frame into the normalized model input.

    Args:
        rgb: ``(H, W, 3)`` uint8 frame.
        image_size: side ``S`` of the square model input.

    Returns:
        float32 tensor ``(3, S, S)``: bicubic PIL resize, ``/ 255`` in float64,
        cast to float32, then ``(x - mean) / std`` with the ImageNet statistics.
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise ValueError(f"rgb must be a (H, W, 3) uint8 numpy array, got shape={shape} dtype={dtype}")
    size = _check_image_size(image_size)
    resized = Image.fromarray(np.ascontiguousarray(rgb)).resize((size, size))
    scaled = np.asarray(resized) / 255.0  # float64, like the reference
    tensor = torch.from_numpy(scaled).permute(2, 0, 1).to(torch.float32)
    return (tensor - _MEAN_TENSOR) / _STD_TENSOR


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


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


# --------------------------------------------------------------------------- base class


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
        self.image_size = _check_image_size(image_size)
        cache_size = _check_count(cache_size, name="cache_size", minimum=0)
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
            cached = _read_only(self._load_rgb(index))
            self._rgb_cache.put(index, cached)
        return cached


# --------------------------------------------------------------------------- folder


class FolderFrameSource(FrameSource):
    """Frames stored as image files (``.jpg``, ``.jpeg``, ``.png``, any case) in one folder.

    Files are ordered by :func:`natural_sort_key`; names starting with ``"."``
    (hidden / AppleDouble files) and sub-folders are ignored.  At construction
    every file's header is read (cheap) to check that all frames have the same
    size; pixels are decoded on demand.
    """

    def __init__(self, path: PathLike, image_size: int, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        super().__init__(image_size=image_size, cache_size=cache_size)
        folder = Path(path)
        if not folder.exists():
            raise FileNotFoundError(f"frame folder not found: '{folder}'")
        if not folder.is_dir():
            raise FrameSourceError(f"not a folder: '{folder}' (use VideoFileFrameSource for video files)")
        self.path = folder
        names = [
            entry.name
            for entry in os.scandir(folder)
            if not entry.name.startswith(".")
            and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
            and entry.is_file()
        ]
        if not names:
            raise FrameSourceError(
                f"no frames found in folder '{folder}' (expected {', '.join(sorted(IMAGE_SUFFIXES))} files)"
            )
        names.sort(key=natural_sort_key)
        self.frame_paths: tuple[Path, ...] = tuple(folder / name for name in names)
        first_size = self._header_size(self.frame_paths[0])
        for frame_path in self.frame_paths[1:]:
            size = self._header_size(frame_path)
            if size != first_size:
                raise FrameSourceError(
                    f"frame '{frame_path}' is {size[0]}x{size[1]} (WxH) but the first frame "
                    f"'{self.frame_paths[0].name}' is {first_size[0]}x{first_size[1]}: all frames must have the same size"
                )
        self.video_width, self.video_height = first_size

    @property
    def num_frames(self) -> int:
        return len(self.frame_paths)

    def _describe(self) -> str:
        return f"folder '{self.path}'"

    @staticmethod
    def _header_size(frame_path: Path) -> tuple[int, int]:
        try:
            with Image.open(frame_path) as image:
                return image.size
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise FrameDecodeError(f"cannot read frame '{frame_path}': {error}") from None

    def _load_rgb(self, index: int) -> np.ndarray:
        frame_path = self.frame_paths[index]
        try:
            with Image.open(frame_path) as image:
                rgb = np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise FrameDecodeError(f"cannot decode frame '{frame_path}': {error}") from None
        if rgb.shape[:2] != (self.video_height, self.video_width):
            raise FrameDecodeError(
                f"frame '{frame_path}' decoded to {rgb.shape[1]}x{rgb.shape[0]} (WxH), "
                f"expected {self.video_width}x{self.video_height}"
            )
        return rgb


# --------------------------------------------------------------------------- video file


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


# --------------------------------------------------------------------------- arrays


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


# --------------------------------------------------------------------------- live iterables


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
        self.max_cached = _check_count(max_cached, name="max_cached", minimum=1)
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


# --------------------------------------------------------------------------- dispatch


FrameSourceInput = Union[PathLike, np.ndarray, torch.Tensor, Sequence[FrameLike], Iterable[FrameLike], FrameSource]


def open_frame_source(
    source: FrameSourceInput,
    image_size: int,
    *,
    cache_size: int = DEFAULT_CACHE_SIZE,
    max_cached: int = DEFAULT_ITERABLE_WINDOW,
) -> FrameSource:
    """Build the right :class:`FrameSource` for ``source``.

    * ``str`` / ``os.PathLike``: a folder -> :class:`FolderFrameSource`, a file ->
      :class:`VideoFileFrameSource`; a missing path raises ``FileNotFoundError``;
    * numpy array, torch tensor, list or tuple -> :class:`ArrayFrameSource`;
    * any other iterable (generator, camera reader...) -> :class:`IterableFrameSource`
      (``max_cached`` sets its window);
    * an existing :class:`FrameSource` is returned as is (its ``image_size`` must match).
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
            return FolderFrameSource(path, image_size, cache_size=cache_size)
        if path.is_file():
            return VideoFileFrameSource(path, image_size, cache_size=cache_size)
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

