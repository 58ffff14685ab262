"""Video frames for the ONNX runtime: a folder of images, an array or list of frames, or frames
pushed one at a time, each turned into model input by the frame-folder recipe (PIL bicubic
resize, ``/ 255`` in float64, ImageNet normalization in float32), like
:func:`samstream.image.transforms.preprocess_frame`."""

from __future__ import annotations

import collections
import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from .image import IMAGENET_MEAN, IMAGENET_STD

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
_MEAN = np.array(IMAGENET_MEAN, dtype=np.float32).reshape(3, 1, 1)
_STD = np.array(IMAGENET_STD, dtype=np.float32).reshape(3, 1, 1)
_DIGITS = re.compile(r"(\d+)")


def natural_sort_key(name: str) -> tuple[Any, ...]:
    """Digit runs by value, text case-insensitively, the full name as tie-break (as the folder source sorts)."""
    parts = _DIGITS.split(name)
    return (tuple(int(p) if i % 2 == 1 else p.casefold() for i, p in enumerate(parts)), name)


def preprocess_frame(rgb: np.ndarray, image_size: int) -> np.ndarray:
    """RGB [H, W, 3] uint8 -> normalized model input [3, S, S] float32."""
    resized = Image.fromarray(np.ascontiguousarray(rgb)).resize((image_size, image_size))
    chw = (np.asarray(resized) / 255.0).transpose(2, 0, 1).astype(np.float32)  # [3, S, S]
    return (chw - _MEAN) / _STD


def to_rgb_uint8(frame, what: str) -> np.ndarray:
    """A PIL image or an [H, W, 3] uint8 array as a contiguous RGB uint8 array."""
    if isinstance(frame, Image.Image):
        return np.asarray(frame.convert("RGB"))
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"{what}: expected a numpy array or a PIL image, got {type(frame).__name__}")
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or 0 in frame.shape[:2]:
        raise ValueError(f"{what}: expected an (H, W, 3) uint8 RGB array, got shape {frame.shape} dtype {frame.dtype}")
    return np.ascontiguousarray(frame)


class Frames:
    """Frames decoded on demand. ``num_frames`` is None for a live source."""

    video_height: int
    video_width: int

    def __init__(self, image_size: int) -> None:
        self.image_size = image_size

    @property
    def num_frames(self) -> int | None:
        raise NotImplementedError

    def rgb(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def has_frame(self, index: int) -> bool:
        n = self.num_frames
        return 0 <= index < n if n is not None else False

    def get(self, index: int) -> np.ndarray:
        """Frame ``index`` as model input [3, S, S]."""
        return preprocess_frame(self.rgb(index), self.image_size)


class FolderFrames(Frames):
    """``.jpg`` / ``.jpeg`` / ``.png`` files of one folder in natural order (hidden files ignored)."""

    def __init__(self, path: str | Path, image_size: int) -> None:
        super().__init__(image_size)
        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"frame folder not found: '{folder}'")
        names = [
            e.name
            for e in os.scandir(folder)
            if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file()
        ]
        if not names:
            raise ValueError(f"no frames found in folder '{folder}' (expected .jpg, .jpeg or .png files)")
        self.paths = [folder / n for n in sorted(names, key=natural_sort_key)]
        with Image.open(self.paths[0]) as first:
            self.video_width, self.video_height = first.size

    @property
    def num_frames(self) -> int:
        return len(self.paths)

    def rgb(self, index: int) -> np.ndarray:
        with Image.open(self.paths[index]) as image:
            rgb = np.asarray(image.convert("RGB"))
        if rgb.shape[:2] != (self.video_height, self.video_width):
            raise ValueError(f"frame '{self.paths[index]}' is {rgb.shape[1]}x{rgb.shape[0]}, expected {self.video_width}x{self.video_height}")
        return rgb


class ArrayFrames(Frames):
    """Frames given at once: an array [T, H, W, 3] uint8 or a list of [H, W, 3] arrays / PIL images."""

    def __init__(self, frames: np.ndarray | Sequence, image_size: int) -> None:
        super().__init__(image_size)
        if isinstance(frames, np.ndarray) and frames.ndim == 4:
            items = [frames[i] for i in range(frames.shape[0])]
        elif isinstance(frames, (list, tuple)):
            items = list(frames)
        else:
            raise TypeError(f"frames must be a (T, H, W, 3) array or a list of frames, got {type(frames).__name__}")
        if not items:
            raise ValueError("frames is empty")
        self._frames = [to_rgb_uint8(f, f"frame {i}") for i, f in enumerate(items)]
        self.video_height, self.video_width = self._frames[0].shape[:2]
        for i, f in enumerate(self._frames):
            if f.shape[:2] != (self.video_height, self.video_width):
                raise ValueError(f"frame {i} is {f.shape[1]}x{f.shape[0]} but frame 0 is {self.video_width}x{self.video_height}")

    @property
    def num_frames(self) -> int:
        return len(self._frames)

    def rgb(self, index: int) -> np.ndarray:
        return self._frames[index]


class PushFrames(Frames):
    """Frames appended one at a time (a live source); the last ``window`` are kept."""

    def __init__(self, image_size: int, *, window: int = 2) -> None:
        super().__init__(image_size)
        self._window: collections.deque[np.ndarray] = collections.deque(maxlen=max(1, window))
        self.frames_pushed = 0
        self.video_height = self.video_width = 0

    @property
    def num_frames(self) -> None:
        return None

    def push(self, frame) -> int:
        rgb = to_rgb_uint8(frame, f"frame {self.frames_pushed}")
        if self.frames_pushed and rgb.shape[:2] != (self.video_height, self.video_width):
            raise ValueError(
                f"frame {self.frames_pushed} is {rgb.shape[1]}x{rgb.shape[0]} but the stream is {self.video_width}x{self.video_height}"
            )
        self.video_height, self.video_width = rgb.shape[:2]
        self._window.append(rgb)
        self.frames_pushed += 1
        return self.frames_pushed - 1

    def has_frame(self, index: int) -> bool:
        return self.frames_pushed - len(self._window) <= index < self.frames_pushed

    def rgb(self, index: int) -> np.ndarray:
        if not self.has_frame(index):
            raise IndexError(f"frame {index} is no longer available from this live source")
        return self._window[index - (self.frames_pushed - len(self._window))]


def open_frames(source, image_size: int) -> Frames:
    """A folder path, an array / list of frames, or a :class:`Frames`."""
    if isinstance(source, Frames):
        return source
    if isinstance(source, (str, Path)):
        if Path(source).is_file():
            raise ValueError(f"video files need PyAV, which the ONNX runtime does not use: give a folder of frames or an array ({source})")
        return FolderFrames(source, image_size)
    return ArrayFrames(source, image_size)
