"""Turning user images and video frames into model input, and coordinates into the model's frame.

The ImageNet mean / std that SAM 2 normalizes with are defined here once, for every caller.
There are two resize recipes, because the reference uses two and parity needs both:

* :func:`preprocess` (images): torch bilinear resize with antialiasing, like the reference
  image predictor;
* :func:`preprocess_frame` (video frames from any source): PIL's default (bicubic) resize,
  ``/ 255`` in float64, then float32 normalization, like the reference JPEG-folder loader
  (``Image.open(p).convert("RGB").resize((S, S))``).  Video files and arrays go through
  the same recipe, so a video file, the same frames exported losslessly to a folder and the
  same frames in an array give bit-identical model inputs.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from .rgb import to_rgb_array  # noqa: F401 (callers take it from here too)

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

_MEAN_CHW = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]  # (3, 1, 1)
_STD_CHW = torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None, None]  # (3, 1, 1)


#: Default pixel limit for every image and frame read from a file (64 megapixels): an RGB image
#: of that size takes 192 MB as uint8, and the model's float copies several times more.
DEFAULT_MAX_PIXELS = 64_000_000

_PIL_LIMIT_LOCK = threading.Lock()


class ImageTooLargeError(ValueError):
    """An image above the pixel limit (``max_pixels``); the message says how to process it anyway."""

    def __init__(self, name: str, width: int, height: int, max_pixels: int) -> None:
        self.width, self.height, self.max_pixels = width, height, max_pixels
        pixels = width * height
        need_gb = pixels * 3 * 4 * 4 / 1e9  # float32 RGB plus a few full-size copies
        super().__init__(
            f"{name} is {width}x{height} = {pixels / 1e6:.1f} megapixels, above the limit of "
            f"{max_pixels / 1e6:.1f} megapixels (--max-pixels {max_pixels}); working on it at full size "
            f"would need about {need_gb:.1f} GB. Downscale it, or cut it into tiles below the limit and "
            f"process each tile (large satellite or slide images), or raise --max-pixels if this machine "
            f"has the memory"
        )


def check_max_pixels(max_pixels: int) -> int:
    """``max_pixels`` as an int, or a ValueError naming it when it is not a positive int."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or int(max_pixels) <= 0:
        raise ValueError(f"max_pixels must be a positive int, got {max_pixels!r}")
    return int(max_pixels)


@contextlib.contextmanager
def open_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[Image.Image]:
    """Open an image file lazily (header only) after checking its size against ``max_pixels``.

    PIL's own decompression-bomb guard is replaced by this limit while the header is read, so
    a huge image gets :class:`ImageTooLargeError` with its real size (never PIL's
    ``DecompressionBombError``).  Unreadable files raise ``ValueError`` naming the file.
    """
    path = Path(path)
    limit = check_max_pixels(max_pixels)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with _PIL_LIMIT_LOCK:
            previous = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None  # the size is checked below, with the caller's limit
            try:
                image = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = previous
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(f"cannot read image file {path}: {exc}") from None
    with image:
        width, height = image.size
        if width * height > limit:
            raise ImageTooLargeError(f"image {path}", width, height, limit)
        yield image


def read_image_size(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) of an image file from its header, checked against ``max_pixels``."""
    with open_image(path, max_pixels=max_pixels) as image:
        return image.size


def load_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as RGB uint8 [H, W, 3] (grayscale, palette, RGBA and 16-bit converted).

    Images above ``max_pixels`` raise :class:`ImageTooLargeError` before any pixel is decoded.
    """
    with open_image(path, max_pixels=max_pixels) as img:
        try:
            img.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise ValueError(f"cannot read image file {path}: {exc}") from None
        return to_rgb_array(img, name=str(path))


def image_to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """RGB [H, W, 3] uint8 or float -> float32 [3, H, W] in [0, 1] (uint8 divided by 255)."""
    t = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
    if t.dtype == torch.uint8:
        return t.float().div(255)
    return t.float()


def preprocess(rgb: np.ndarray, image_size: int) -> torch.Tensor:
    """RGB [H, W, 3] -> normalized model input [3, S, S]: bilinear antialiased resize, then
    ImageNet normalization (the reference image predictor's recipe)."""
    t = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).unsqueeze(0)
    # resizing is linear, so the uint8 -> [0, 1] scaling is folded into the normalization:
    # one multiply-add per pixel after the resize (equal to float rounding)
    unit = 255.0 if t.dtype == torch.uint8 else 1.0
    t = F.interpolate(t.float(), size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    scale = torch.tensor([1.0 / (unit * s) for s in IMAGENET_STD]).view(1, 3, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]).view(1, 3, 1, 1)
    return torch.addcmul(shift, t, scale)[0]


def check_image_size(image_size: int) -> int:
    """``image_size`` as an int, or a ValueError naming it when it is not a positive int."""
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or int(image_size) <= 0:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    return int(image_size)


def preprocess_frame(rgb: np.ndarray, image_size: int) -> torch.Tensor:
    """One video frame -> normalized model input (the reference frame-folder recipe).

    Args:
        rgb: ``(H, W, 3)`` uint8 frame.
        image_size: side ``S`` of the square model input.

    Returns:
        float32 tensor ``(3, S, S)``: PIL bicubic resize, ``/ 255`` in float64, cast to
        float32, then ``(x - IMAGENET_MEAN) / IMAGENET_STD``.
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise ValueError(f"rgb must be a (H, W, 3) uint8 numpy array, got shape={shape} dtype={dtype}")
    size = check_image_size(image_size)
    resized = Image.fromarray(np.ascontiguousarray(rgb)).resize((size, size))
    scaled = np.asarray(resized) / 255.0  # (S, S, 3) float64, as the reference computes it
    chw = torch.from_numpy(scaled).permute(2, 0, 1).to(torch.float32)  # (3, S, S)
    return (chw - _MEAN_CHW) / _STD_CHW


def coords_to_model(coords: torch.Tensor, orig_hw: tuple[int, int], image_size: int, normalized: bool) -> torch.Tensor:
    """Points [..., 2] (x, y) in image pixels (or in [0, 1] when ``normalized``) -> model input pixels."""
    if not normalized:
        h, w = orig_hw
        coords = coords.clone()
        coords[..., 0] = coords[..., 0] / w
        coords[..., 1] = coords[..., 1] / h
    return coords * image_size
