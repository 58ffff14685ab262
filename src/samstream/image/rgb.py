"""User images as RGB arrays, in numpy and PIL alone (no torch): the one set of rules for which
images are accepted, shared by the predictors (:mod:`samstream.image.transforms`) and the ONNX
runtime (:mod:`samstream.onnx`)."""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image

__all__ = ["to_rgb_array"]


def to_rgb_array(image, name: str = "image") -> np.ndarray:
    """Any supported image -> RGB [H, W, 3], uint8 or float32 in [0, 1] (16-bit and float inputs).

    Accepts numpy [H, W], [H, W, 1], [H, W, 3], [H, W, 4] of uint8, uint16 or float in [0, 1],
    and PIL images of any mode.
    """
    if isinstance(image, Image.Image):
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(image)
            if image.mode == "I" and arr.max(initial=0) > 65535:
                raise ValueError(f"{name}: 32-bit integer images are not supported")
            arr = arr.astype(np.uint16)
        elif image.mode == "F":
            arr = np.asarray(image, dtype=np.float32)
        else:
            arr = np.asarray(image.convert("RGB"))
        image = arr
    if _is_tensor(image):
        raise TypeError(f"{name}: expected a numpy array or PIL image, got a torch.Tensor")
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array (HWC, RGB) or a PIL image, got {type(image).__name__}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"{name}: expected shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name}: empty image of shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype == np.uint16:
        return (image.astype(np.float32) / 65535.0).astype(np.float32)
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ValueError(f"{name}: contains NaN or infinite values")
        if image.min() < 0.0 or image.max() > 1.0:
            raise ValueError(f"{name}: float images must be in [0, 1], got [{image.min()}, {image.max()}]")
        return image.astype(np.float32)
    raise ValueError(f"{name}: unsupported dtype {image.dtype} (use uint8, uint16 or float in [0, 1])")


def _is_tensor(value) -> bool:
    torch = sys.modules.get("torch")  # a tensor can only exist once torch is imported
    return torch is not None and isinstance(value, torch.Tensor)
