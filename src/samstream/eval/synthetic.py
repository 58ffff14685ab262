"""Small synthetic datasets in the benchmark layouts (moving shapes), for tests and benchmarks."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..io.atomic import atomic_write_bytes
from .layouts import get_layout, write_binary_png, write_palette_png

__all__ = ["shape_masks", "make_synthetic_dataset"]


def shape_masks(frames: int, height: int, width: int, objects: int, seed: int, appear_at: dict[int, int] | None = None) -> np.ndarray:
    """Masks [T, K, H, W] of K discs and rectangles drifting across the frame.

    ``appear_at``: object index -> first frame it is visible (empty before).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    out = np.zeros((frames, objects, height, width), dtype=bool)
    for k in range(objects):
        radius = rng.uniform(0.08, 0.18) * min(height, width)
        cy, cx = rng.uniform(radius, height - radius), rng.uniform(radius, width - radius)
        vy, vx = rng.uniform(-1, 1, size=2) * 0.01 * min(height, width)
        for t in range(frames):
            if appear_at and t < appear_at.get(k, 0):
                continue
            y, x = cy + vy * t, cx + vx * t
            if k % 2 == 0:
                out[t, k] = (yy - y) ** 2 + (xx - x) ** 2 <= radius**2
            else:
                out[t, k] = (abs(yy - y) <= radius * 0.8) & (abs(xx - x) <= radius * 1.2)
    return out


def _frame_image(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An RGB frame [H, W, 3] uint8 with each object in its own colour over a noisy background."""
    k, h, w = masks.shape
    rgb = rng.integers(20, 60, size=(h, w, 3), dtype=np.uint8)
    colours = [(230, 60, 40), (40, 200, 80), (60, 90, 230), (220, 220, 60)]
    for i in range(k):
        rgb[masks[i]] = colours[i % len(colours)]
    return rgb


def make_synthetic_dataset(
    root: Path | str,
    layout: str = "davis",
    *,
    videos: int = 2,
    frames: int = 4,
    height: int = 64,
    width: int = 64,
    objects: int = 2,
    seed: int = 0,
    appear_at: dict[int, int] | None = None,
    annotate_every: int = 1,
) -> dict[str, np.ndarray]:
    """Write a dataset under ``root`` in ``layout``; returns video name -> masks [T, K, H, W].

    Object ids are 1..K. ``annotate_every`` keeps ground truth on every n-th frame only (SA-V
    style; the first frame is always annotated). ``appear_at`` delays objects (YouTube-VOS).
    """
    spec = get_layout(layout)
    root = Path(root)
    images = root / next(d for d in spec.image_dirs if "/" not in d)  # e.g. JPEGImages_24fps
    annotations = root / next(d for d in spec.annotation_dirs if "/" not in d)
    rng = np.random.default_rng(seed)
    out = {}
    for v in range(videos):
        name = f"video{v:02d}"
        masks = shape_masks(frames, height, width, objects, seed * 1000 + v, appear_at)
        out[name] = masks
        for t in range(frames):
            stem = f"{t:05d}"
            buffer = io.BytesIO()
            Image.fromarray(_frame_image(masks[t], rng)).save(buffer, format="JPEG", quality=95)
            atomic_write_bytes(images / name / f"{stem}.jpg", buffer.getvalue())
            if t % annotate_every and t != 0:
                continue
            if spec.per_object:
                for k in range(objects):
                    write_binary_png(annotations / name / f"{k + 1:03d}" / f"{stem}.png", masks[t, k])
            else:
                ids = np.zeros((height, width), dtype=np.uint8)
                for k in range(objects - 1, -1, -1):
                    ids[masks[t, k]] = k + 1
                write_palette_png(annotations / name / f"{stem}.png", ids)
    return out
