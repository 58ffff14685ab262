"""Mask writers fed frame by frame while a video is being tracked.

Every writer implements :class:`MaskWriter`::

    with PerObjectPngWriter("out/video1") as writer:
        for frame_idx, obj_ids, masks in tracker_results:      # masks: bool (N, H, W)
            writer.write(frame_idx, obj_ids, masks)

Formats (see :func:`make_writer`):

* ``"png"``     :class:`PerObjectPngWriter`  ``out/<obj_id:03d>/<frame_idx:05d>.png`` binary 0/255 (SA-V layout);
* ``"palette"`` :class:`PalettePngWriter`    ``out/<frame_idx:05d>.png`` indexed PNG, value = object id (DAVIS);
* ``"rle"``     :class:`CocoRleWriter`       COCO RLE records in one ``.json`` or ``.jsonl`` file;
* ``"mp4"``     :class:`OverlayVideoWriter`  the video with colored masks blended in.

Crash safety: PNG and JSON files are written with :mod:`samstream.io.atomic`
(temp file + ``os.replace``), so after an interruption every file on disk is
complete.  JSON-lines files are appended one whole frame per ``write`` system
call; :func:`read_coco_rle` ignores a torn last line.  A video cannot be
finalized incrementally, so :class:`OverlayVideoWriter` encodes into
``<path>.partial`` and renames it to ``<path>`` on :meth:`~MaskWriter.close`.
"""

from __future__ import annotations

import colorsys
import json
import os
from abc import ABC, abstractmethod
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Protocol, Sequence, Union, runtime_checkable

import numpy as np

from samstream.io.atomic import atomic_save_png, atomic_write_bytes

__all__ = [
    "WRITER_FORMATS",
    "DAVIS_PALETTE",
    "MaskWriter",
    "PerObjectPngWriter",
    "PalettePngWriter",
    "CocoRleWriter",
    "OverlayVideoWriter",
    "RgbFrameProvider",
    "object_color",
    "overlay_masks",
    "make_writer",
    "read_coco_rle",
    "encode_rle_records",
]

PathLike = Union[str, "os.PathLike[str]"]
WRITER_FORMATS: tuple[str, ...] = ("png", "palette", "rle", "mp4")


def _voc_palette() -> bytes:
    """The 256-colour PASCAL VOC / DAVIS palette: bits of the index spread over R, G, B."""
    values = bytearray()
    for index in range(256):
        red = green = blue = 0
        code = index
        for bit in range(8):
            red |= ((code >> 0) & 1) << (7 - bit)
            green |= ((code >> 1) & 1) << (7 - bit)
            blue |= ((code >> 2) & 1) << (7 - bit)
            code >>= 3
        values += bytes((red, green, blue))
    return bytes(values)


#: 768 bytes, RGB for indices 0..255 (0 = black background, 1 = (128, 0, 0), 2 = (0, 128, 0), ...)
DAVIS_PALETTE: bytes = _voc_palette()


# --------------------------------------------------------------------------- colors and overlays


def object_color(obj_id: int) -> tuple[int, int, int]:
    """A fixed, saturated RGB color for an object id (golden-ratio hue spacing)."""
    hue = (0.08 + 0.618033988749895 * int(obj_id)) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(round(red * 255)), int(round(green * 255)), int(round(blue * 255))


def _as_bool_masks(masks: Any, *, name: str = "masks") -> np.ndarray:
    """``(N, H, W)`` or ``(N, 1, H, W)`` bool array / tensor -> ``(N, H, W)`` bool numpy array."""
    if hasattr(masks, "detach") and hasattr(masks, "cpu"):  # torch tensor, without importing torch
        masks = masks.detach().cpu().numpy()
    if not isinstance(masks, np.ndarray):
        raise TypeError(f"{name} must be a numpy bool array (objects, H, W), got {type(masks).__name__}")
    if masks.dtype != np.bool_:
        raise ValueError(
            f"{name} must have dtype bool (threshold logits first, e.g. `logits > 0`), got {masks.dtype}"
        )
    if masks.ndim == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.ndim != 3:
        raise ValueError(f"{name} must have shape (objects, H, W) or (objects, 1, H, W), got {masks.shape}")
    return masks


def _as_obj_ids(obj_ids: Sequence[int], count: int) -> list[int]:
    ids: list[int] = []
    for position, value in enumerate(obj_ids):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"obj_ids[{position}] must be an int, got {type(value).__name__}")
        if int(value) < 0:
            raise ValueError(f"obj_ids[{position}] must be >= 0, got {int(value)}")
        ids.append(int(value))
    if len(set(ids)) != len(ids):
        raise ValueError(f"obj_ids must be unique, got {ids}")
    if len(ids) != count:
        raise ValueError(f"got {len(ids)} obj_ids but {count} masks")
    return ids


def overlay_masks(
    rgb: np.ndarray,
    masks: np.ndarray,
    obj_ids: Sequence[int],
    *,
    alpha: float = 0.5,
) -> np.ndarray:
    """Blend each object's color into the frame where its mask is on.

    Args:
        rgb: ``(H, W, 3)`` uint8 frame (not modified).
        masks: ``(N, H, W)`` (or ``(N, 1, H, W)``) bool masks.
        obj_ids: the ``N`` object ids (they pick the colors, see :func:`object_color`).
        alpha: opacity of the colors, 0..1.

    Returns:
        new ``(H, W, 3)`` uint8 array; objects are blended in order, so later
        ones are on top where masks overlap.
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(
            f"rgb must be a (H, W, 3) uint8 array, got shape={getattr(rgb, 'shape', None)} "
            f"dtype={getattr(rgb, 'dtype', type(rgb).__name__)}"
        )
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], got {alpha}")
    bool_masks = _as_bool_masks(masks)
    ids = _as_obj_ids(obj_ids, bool_masks.shape[0])
    if bool_masks.shape[1:] != rgb.shape[:2]:
        raise ValueError(f"masks are {bool_masks.shape[1:]} (H, W) but the frame is {rgb.shape[:2]}")
    output = rgb.astype(np.float32)
    for obj_id, mask in zip(ids, bool_masks):
        color = np.asarray(object_color(obj_id), dtype=np.float32)
        output[mask] = output[mask] * (1.0 - alpha) + color * alpha
    return np.clip(np.rint(output), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- base class


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
        bool_masks = _as_bool_masks(masks)
        ids = _as_obj_ids(obj_ids, bool_masks.shape[0])
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


# --------------------------------------------------------------------------- PNG writers


class PerObjectPngWriter(MaskWriter):
    """SA-V layout: ``out_dir/<obj_id:03d>/<frame_idx:05d>.png``, grayscale 0 / 255, one file per object and frame."""

    def __init__(self, out_dir: PathLike) -> None:
        super().__init__()
        self.out_dir = Path(out_dir)
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ValueError(f"out_dir '{self.out_dir}' exists and is not a folder")
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, frame_idx: int, obj_id: int) -> Path:
        """File that holds object ``obj_id`` at frame ``frame_idx``."""
        return self.out_dir / f"{obj_id:03d}" / f"{frame_idx:05d}.png"

    def _write(self, frame_idx: int, obj_ids: list[int], masks: np.ndarray) -> None:
        for obj_id, mask in zip(obj_ids, masks):
            atomic_save_png(self.path_for(frame_idx, obj_id), mask)


class PalettePngWriter(MaskWriter):
    """DAVIS layout: ``out_dir/<frame_idx:05d>.png``, one indexed PNG per frame.

    Pixel value = object id (1..255; 0 is background), colors from
    :data:`DAVIS_PALETTE`.  Objects are painted in the order given, so later
    entries of ``obj_ids`` win where masks overlap (with ids sorted ascending,
    the larger id wins).
    """

    def __init__(self, out_dir: PathLike) -> None:
        super().__init__()
        self.out_dir = Path(out_dir)
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ValueError(f"out_dir '{self.out_dir}' exists and is not a folder")
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, frame_idx: int) -> Path:
        """File that holds frame ``frame_idx``."""
        return self.out_dir / f"{frame_idx:05d}.png"

    def _write(self, frame_idx: int, obj_ids: list[int], masks: np.ndarray) -> None:
        bad = [obj_id for obj_id in obj_ids if not 1 <= obj_id <= 255]
        if bad:
            raise ValueError(f"palette PNGs store object ids 1..255 (0 is background), got {bad}")
        labels = np.zeros(masks.shape[1:], dtype=np.uint8)
        for obj_id, mask in zip(obj_ids, masks):
            labels[mask] = obj_id
        atomic_save_png(self.path_for(frame_idx), labels, palette=DAVIS_PALETTE)


# --------------------------------------------------------------------------- COCO RLE


def _import_mask_api() -> Any:
    try:
        from pycocotools import mask as mask_api
    except ImportError:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "writing COCO RLE needs pycocotools: install it with `pip install pycocotools`"
        ) from None
    return mask_api


def encode_rle_records(frame_idx: int, obj_ids: Sequence[int], masks: np.ndarray) -> list[dict[str, Any]]:
    """COCO RLE records (``frame_idx``, ``obj_id``, ``segmentation``, ``area``, ``bbox`` XYWH) for one frame."""
    mask_api = _import_mask_api()
    if len(obj_ids) == 0:
        return []
    stacked = np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8))  # (H, W, N), Fortran order
    rles = mask_api.encode(stacked)
    areas = mask_api.area(rles)
    boxes = mask_api.toBbox(rles)
    records: list[dict[str, Any]] = []
    for obj_id, rle, area, box in zip(obj_ids, rles, areas, boxes):
        counts = rle["counts"]
        records.append(
            {
                "frame_idx": int(frame_idx),
                "obj_id": int(obj_id),
                "segmentation": {
                    "size": [int(rle["size"][0]), int(rle["size"][1])],
                    "counts": counts.decode("ascii") if isinstance(counts, bytes) else str(counts),
                },
                "area": int(area),
                "bbox": [float(value) for value in box],
            }
        )
    return records


class CocoRleWriter(MaskWriter):
    """COCO run-length-encoded masks of all frames in one file (masks at video resolution).

    The file format follows the suffix of ``path``:

    * ``.jsonl``: JSON lines, one record per line, appended frame by frame (one
      ``write`` system call per frame, cheap for long videos).  A crash can at
      worst leave a torn last line, which :func:`read_coco_rle` ignores.
    * anything else (e.g. ``.json``): one JSON list of records, rewritten
      atomically after every frame, so the file is always a valid, complete
      JSON document.  Each rewrite costs the size of the whole file: prefer
      ``.jsonl`` for very long videos.

    Record: ``{"frame_idx", "obj_id", "segmentation": {"size": [H, W], "counts": str},
    "area": int, "bbox": [x, y, w, h]}``.  A frame written twice appears twice;
    readers should let the last record of each ``(frame_idx, obj_id)`` win.
    """

    def __init__(self, path: PathLike, video_height: int, video_width: int) -> None:
        super().__init__()
        for name, value in (("video_height", video_height), ("video_width", video_width)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        _import_mask_api()
        self.path = Path(path)
        self.video_height = int(video_height)
        self.video_width = int(video_width)
        self.json_lines = self.path.suffix.lower() == ".jsonl"
        self._records: list[str] = []
        self._descriptor: int | None = None
        if self.json_lines:
            atomic_write_bytes(self.path, b"")
            self._descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0))
        else:
            self._flush_document()

    def _flush_document(self) -> None:
        body = ",\n".join(self._records)
        text = "[\n" + body + "\n]\n" if body else "[]\n"
        atomic_write_bytes(self.path, text.encode("utf-8"))

    def _write(self, frame_idx: int, obj_ids: list[int], masks: np.ndarray) -> None:
        if masks.shape[1:] != (self.video_height, self.video_width):
            raise ValueError(
                f"masks of frame {frame_idx} are {masks.shape[1:]} (H, W) but the writer expects "
                f"({self.video_height}, {self.video_width})"
            )
        lines = [json.dumps(record, separators=(",", ":")) for record in encode_rle_records(frame_idx, obj_ids, masks)]
        if self.json_lines:
            if not lines:
                return
            assert self._descriptor is not None
            data = "".join(line + "\n" for line in lines).encode("utf-8")
            view = memoryview(data)
            while view:
                written = os.write(self._descriptor, view)
                view = view[written:]
        else:
            self._records.extend(lines)
            self._flush_document()

    def _finish(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


def read_coco_rle(path: PathLike) -> list[dict[str, Any]]:
    """Read the records written by :class:`CocoRleWriter` (``.json`` list or ``.jsonl`` lines).

    In a ``.jsonl`` file, a last line without its newline (a write torn by a
    crash) is ignored; any other malformed line raises ``ValueError``.
    """
    file_path = Path(path)
    try:
        text = file_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"RLE file not found: '{file_path}'") from None
    if file_path.suffix.lower() != ".jsonl":
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"'{file_path}' is not valid JSON: {error}") from None
        if not isinstance(records, list):
            raise ValueError(f"'{file_path}' must hold a JSON list of records")
        return records
    # the piece after the last newline is "" for a complete file, or a torn record: skip it
    complete_lines = text.split("\n")[:-1]
    records = []
    for number, line in enumerate(complete_lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"'{file_path}' line {number} is not valid JSON: {error}") from None
    return records


# --------------------------------------------------------------------------- overlay video


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

    Args:
        path: output video (``.mp4``; ``.mov`` / ``.mkv`` also work).
        fps: frame rate of the output.
        frames: a frame source (``get_rgb``) or a callable ``frame_idx -> (H, W, 3) uint8``.
        alpha: mask opacity.
        codec: force an encoder name (default: libx264, else mpeg4).
    """

    def __init__(
        self,
        path: PathLike,
        fps: float,
        frames: RgbFrameProvider | Callable[[int], np.ndarray],
        *,
        alpha: float = 0.5,
        codec: str | None = None,
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
        self.codec = codec if codec is not None else _pick_codec(av)
        self._container: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None  # (height, width) of the input frames

    def _open(self, height: int, width: int) -> None:
        av = self._av
        self.partial_path.parent.mkdir(parents=True, exist_ok=True)
        container_format = _CONTAINER_FORMATS.get(self.path.suffix.lower(), "mp4")
        try:
            container = av.open(str(self.partial_path), mode="w", format=container_format)
            stream = container.add_stream(self.codec, rate=self.fps)
        except (av.FFmpegError, ValueError) as error:
            raise RuntimeError(f"cannot create video '{self.partial_path}' with codec {self.codec}: {error}") from None
        stream.width = width + width % 2
        stream.height = height + height % 2
        stream.pix_fmt = "yuv420p"
        if self.codec == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast"}
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
        height, width = blended.shape[:2]
        if height % 2 or width % 2:
            blended = np.pad(blended, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(blended), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

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


# --------------------------------------------------------------------------- factory


def make_writer(
    format: str,
    output: PathLike,
    *,
    video_height: int | None = None,
    video_width: int | None = None,
    fps: float | None = None,
    frames: RgbFrameProvider | Callable[[int], np.ndarray] | None = None,
    alpha: float = 0.5,
) -> MaskWriter:
    """Create the writer for ``format`` (one of :data:`WRITER_FORMATS`).

    * ``"png"`` / ``"palette"``: ``output`` is a folder;
    * ``"rle"``: ``output`` is a ``.json`` / ``.jsonl`` file; needs ``video_height`` and
      ``video_width`` (taken from ``frames`` when it is a frame source);
    * ``"mp4"``: ``output`` is a video file; needs ``frames`` and ``fps`` (taken
      from ``frames.fps`` when available).
    """
    if format not in WRITER_FORMATS:
        raise ValueError(f"unknown writer format {format!r}; valid formats are: {', '.join(WRITER_FORMATS)}")
    if format == "png":
        return PerObjectPngWriter(output)
    if format == "palette":
        return PalettePngWriter(output)
    if format == "rle":
        height = video_height if video_height is not None else getattr(frames, "video_height", None)
        width = video_width if video_width is not None else getattr(frames, "video_width", None)
        if height is None or width is None:
            raise ValueError("format 'rle' needs video_height and video_width (or a frame source as frames)")
        return CocoRleWriter(output, height, width)
    if frames is None:
        raise ValueError("format 'mp4' needs frames (a frame source or a callable giving RGB frames)")
    rate = fps if fps is not None else getattr(frames, "fps", None)
    if rate is None:
        raise ValueError("format 'mp4' needs fps (the frame source does not know its frame rate)")
    return OverlayVideoWriter(output, rate, frames, alpha=alpha)
