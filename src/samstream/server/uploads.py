"""Receiving an upload into a session folder and checking it before any model work.

The file is written under a name the server chooses (``upload`` plus the suffix of its
declared content type), never a name from the request. Checks, each with its own error:
content type (:class:`UploadError` 415), size (413, also while streaming), emptiness (400),
whether it decodes (400: not an image or video, truncated), resolution and duration (422).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .settings import ServerSettings

IMAGE_TYPES: dict[str, str] = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
    "image/tiff": ".tif",
}
VIDEO_TYPES: dict[str, str] = {
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/x-matroska": ".mkv",
    "video/x-msvideo": ".avi",
}
#: frames per second assumed for a video whose container does not say
FALLBACK_FPS = 25.0

UploadKind = Literal["image", "video"]


class UploadError(ValueError):
    """A refused upload: an HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def upload_kind(content_type: str | None) -> tuple[UploadKind, str]:
    """("image" | "video", file suffix) for a Content-Type header; 415 otherwise."""
    accepted = ", ".join(sorted(IMAGE_TYPES) + sorted(VIDEO_TYPES))
    if not content_type:
        raise UploadError(415, f"the upload has no Content-Type; send one of: {accepted}")
    media = content_type.split(";", 1)[0].strip().lower()
    if media in IMAGE_TYPES:
        return "image", IMAGE_TYPES[media]
    if media in VIDEO_TYPES:
        return "video", VIDEO_TYPES[media]
    if media.startswith("multipart/"):
        raise UploadError(
            415,
            "send the file itself as the request body with its own Content-Type "
            "(e.g. curl --data-binary @clip.mp4 -H 'Content-Type: video/mp4'), not a multipart form",
        )
    raise UploadError(415, f"unsupported Content-Type {media!r}; send one of: {accepted}")


def check_declared_size(content_length: str | None, limit: int) -> None:
    """413 before reading anything when Content-Length already exceeds the limit."""
    if content_length is None:
        return
    try:
        size = int(content_length)
    except ValueError:
        raise UploadError(400, f"invalid Content-Length {content_length!r}") from None
    if size > limit:
        raise UploadError(413, f"the upload is {size} bytes; the limit is {limit} bytes")
    if size == 0:
        raise UploadError(400, "the upload is empty (0 bytes)")


class UploadSink:
    """Writes streamed chunks to ``folder/upload<suffix>`` and enforces the size limit."""

    def __init__(self, folder: Path, suffix: str, limit: int) -> None:
        self.path = Path(folder) / f"upload{suffix}"
        self.limit = int(limit)
        self.size = 0
        self._file = open(self.path, "xb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            self.close()
            raise UploadError(413, f"the upload exceeds the limit of {self.limit} bytes")
        self._file.write(chunk)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def finish(self) -> Path:
        self.close()
        if self.size == 0:
            raise UploadError(400, "the upload is empty (0 bytes)")
        return self.path


@dataclass
class CheckedImage:
    rgb: np.ndarray  # [H, W, 3] uint8


@dataclass
class CheckedVideo:
    source: object  # a VideoFileFrameSource at the model's input size (already indexed)
    fps: float


def check_image(path: Path, settings: ServerSettings) -> CheckedImage:
    """Decode an uploaded image completely; refuse what is too large or does not decode."""
    from ..image.transforms import ImageTooLargeError, load_image

    try:
        rgb = load_image(path, max_pixels=settings.max_pixels)
    except ImageTooLargeError as exc:
        raise UploadError(422, _without_path(str(exc), path)) from None
    except (OSError, ValueError) as exc:
        raise UploadError(400, f"the upload is not a readable image (or is truncated): {_without_path(str(exc), path)}") from None
    if rgb.dtype != np.uint8:
        rgb = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return CheckedImage(np.ascontiguousarray(rgb))


def check_video(path: Path, image_size: int, settings: ServerSettings) -> CheckedVideo:
    """Index an uploaded video (lazily: frame 0 is the only one decoded); refuse what does
    not decode, is truncated, too large or too long."""
    from ..video.sources.base import FrameSourceError
    from ..video.sources.video_file import VideoFileFrameSource

    try:
        source = VideoFileFrameSource(path, image_size)
    except (FrameSourceError, OSError) as exc:
        raise UploadError(400, f"the upload is not a readable video (or is truncated): {_without_path(str(exc), path)}") from None
    try:
        pixels = source.video_width * source.video_height
        if pixels > settings.max_pixels:
            raise UploadError(
                422,
                f"the video's frames are {source.video_width}x{source.video_height} = {pixels} pixels; "
                f"the limit is {settings.max_pixels} pixels",
            )
        fps = float(source.fps) if source.fps else FALLBACK_FPS
        duration = source.num_frames / fps
        if duration > settings.max_duration_s:
            raise UploadError(
                422,
                f"the video lasts {duration:.1f} s ({source.num_frames} frames at {fps:g} fps); "
                f"the limit is {settings.max_duration_s:g} s",
            )
    except BaseException:
        source.close()
        raise
    return CheckedVideo(source, fps)


def _without_path(message: str, path: Path) -> str:
    """Error text with the server's file path replaced by 'the upload'."""
    return message.replace(f"'{path}'", "the upload").replace(str(path), "the upload")
