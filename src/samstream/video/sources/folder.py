"""Frames stored as image files in one folder, read exactly like the reference reads JPEG folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ...image.transforms import DEFAULT_MAX_PIXELS, ImageTooLargeError, check_max_pixels, open_image
from .base import DEFAULT_CACHE_SIZE, FrameDecodeError, FrameSource, FrameSourceError, PathLike, natural_sort_key

__all__ = ["IMAGE_SUFFIXES", "FolderFrameSource"]

IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png"})


class FolderFrameSource(FrameSource):
    """Frames stored as image files (``.jpg``, ``.jpeg``, ``.png``, any case) in one folder.

    Files are ordered by :func:`natural_sort_key`; names starting with ``"."``
    (hidden / AppleDouble files) and sub-folders are ignored.  At construction
    every file's header is read (cheap) to check that all frames have the same
    size and are within ``max_pixels`` (:class:`ImageTooLargeError` otherwise); pixels are
    decoded on demand.
    """

    def __init__(
        self,
        path: PathLike,
        image_size: int,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        super().__init__(image_size=image_size, cache_size=cache_size)
        self.max_pixels = check_max_pixels(max_pixels)
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

    def _header_size(self, frame_path: Path) -> tuple[int, int]:
        try:
            with open_image(frame_path, max_pixels=self.max_pixels) as image:
                return image.size
        except ImageTooLargeError:
            raise
        except (OSError, ValueError) as error:
            raise FrameDecodeError(f"cannot read frame '{frame_path}': {error}") from None

    def _load_rgb(self, index: int) -> np.ndarray:
        frame_path = self.frame_paths[index]
        try:
            with open_image(frame_path, max_pixels=self.max_pixels) as image:
                rgb = np.asarray(image.convert("RGB"))
        except ImageTooLargeError:
            raise
        except (OSError, ValueError) as error:
            raise FrameDecodeError(f"cannot decode frame '{frame_path}': {error}") from None
        if rgb.shape[:2] != (self.video_height, self.video_width):
            raise FrameDecodeError(
                f"frame '{frame_path}' decoded to {rgb.shape[1]}x{rgb.shape[0]} (WxH), "
                f"expected {self.video_width}x{self.video_height}"
            )
        return rgb
