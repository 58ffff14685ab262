"""Resizing and number formats in numpy, matching what the PyTorch path computes.

Resizes are separable: each axis is a weight matrix [out, in], applied as ``Wy @ x @ Wx.T``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def bilinear_weights(size_in: int, size_out: int) -> np.ndarray:
    """[size_out, size_in] weights of bilinear resizing with ``align_corners=False`` (no antialias),
    as ``torch.nn.functional.interpolate`` computes it."""
    scale = size_in / size_out
    w = np.zeros((size_out, size_in), dtype=np.float64)
    for i in range(size_out):
        src = max((i + 0.5) * scale - 0.5, 0.0)
        i0 = min(int(math.floor(src)), size_in - 1)
        i1 = min(i0 + 1, size_in - 1)
        frac = src - i0
        w[i, i0] += 1.0 - frac
        w[i, i1] += frac
    w.setflags(write=False)
    return w


@lru_cache(maxsize=64)
def antialias_weights(size_in: int, size_out: int) -> np.ndarray:
    """[size_out, size_in] weights of antialiased bilinear resizing (a triangle filter widened by
    the downscaling factor, normalized per output pixel), as ``interpolate(..., antialias=True)``."""
    scale = size_in / size_out
    support = scale if scale >= 1.0 else 1.0
    inv = 1.0 / scale if scale >= 1.0 else 1.0
    w = np.zeros((size_out, size_in), dtype=np.float64)
    for i in range(size_out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), size_in)
        j = np.arange(lo, hi)
        taps = np.clip(1.0 - np.abs((j - center + 0.5) * inv), 0.0, None)
        total = taps.sum()
        if total > 0:
            w[i, lo:hi] = taps / total
    w.setflags(write=False)
    return w


def resize(x: np.ndarray, size: tuple[int, int], *, antialias: bool) -> np.ndarray:
    """Resize the last two axes of x [..., H, W] to ``size`` (h, w) in float32."""
    h_in, w_in = x.shape[-2:]
    pick = antialias_weights if antialias else bilinear_weights
    wy = pick(h_in, size[0]).astype(np.float32)
    wx = pick(w_in, size[1]).astype(np.float32)
    return (wy @ x.astype(np.float32, copy=False) @ wx.T).astype(np.float32, copy=False)


def round_to_bfloat16(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even), kept as float32: what
    storing memories in bfloat16 and reading them back gives."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + (np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))) & np.uint32(0xFFFF0000)
    return rounded.view(np.float32)
