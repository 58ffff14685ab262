"""The window of a large image that a prompted segmentation looks at."""

from __future__ import annotations

import math

import numpy as np

from .grid import Window


def prompt_window(
    width: int,
    height: int,
    side: int,
    *,
    points: np.ndarray | None = None,
    box: np.ndarray | None = None,
    margin: float = 0.1,
) -> Window:
    """A ``side`` x ``side`` window centred on the prompt, inside the image.

    The centre is the box's centre when there is a box, else the mean of ``points`` [N, 2]
    (image pixels). A window that cannot hold the box and every point with
    ``margin`` (a fraction of their extent) around them is enlarged until it does. The
    window is shifted to lie inside the image and clipped where the image is smaller.
    """
    if side < 1:
        raise ValueError(f"window side must be >= 1, got {side}")
    coords = []
    if points is not None and len(points):
        coords.append(np.asarray(points, dtype=np.float64).reshape(-1, 2))
    if box is not None:
        b = np.asarray(box, dtype=np.float64).reshape(4)
        coords.append(np.array([[b[0], b[1]], [b[2], b[3]]]))
    if not coords:
        raise ValueError("a prompt window needs points or a box")
    allxy = np.concatenate(coords)
    lo, hi = allxy.min(axis=0), allxy.max(axis=0)
    if box is not None:
        center = (coords[-1][0] + coords[-1][1]) / 2.0
    else:
        center = coords[0].mean(axis=0)
    extent = (hi - lo) * (1.0 + 2.0 * margin) + 1.0
    need = max(side, int(math.ceil(2.0 * max(np.max(center - lo), np.max(hi - center)) * (1.0 + margin) + 1.0)), int(math.ceil(extent.max())))
    w, h = min(need, width), min(need, height)
    x0 = int(round(center[0] - w / 2.0))
    y0 = int(round(center[1] - h / 2.0))
    x0 = min(max(x0, 0), width - w)
    y0 = min(max(y0, 0), height - h)
    return Window(x0, y0, x0 + w, y0 + h)
