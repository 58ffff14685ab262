"""Zoom-in refinement: decode a mask again on a crop around it, at the model's full input size.

A mask predicted on a whole image (or video frame) was decoded from the image shrunk to the
model's input size S, so structures thinner than image_side / S pixels are lost. Refinement
takes the mask's box, adds a margin, crops that window from the original image, embeds the
crop alone (so it fills the model's whole input) and decodes it again with the box (and the
clicks inside the crop) as prompt. Inside the crop the new mask replaces the old one;
outside it the old mask is kept.

A refined mask must agree with the coarse one, or the coarse mask is kept. It agrees when
their IoU is at least ``min_iou``, or when at least ``min_containment`` of it lies inside the
coarse mask grown by one cell of the decoder's low-resolution grid (the coarse mask's own
uncertainty: image side / (model input / 4) pixels). The second test is the one thin
structures pass: the coarse mask of a 2-pixel ring is a blurred band a few times wider, so
the sharp ring inside it has a low IoU with it although it is the same object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..tiling.grid import Window
from .predictor import ImagePredictor

__all__ = ["RefineConfig", "RefinedMask", "refine_window", "MaskRefiner", "refine_all"]


@dataclass(frozen=True)
class RefineConfig:
    """margin: added on each side of the mask's box, as a fraction of the box's longer side;
    min_side: the crop's smallest side in image pixels; min_iou: the refined mask is kept when
    its IoU with the coarse mask is at least this (0 keeps it always); min_containment: or when
    at least this fraction of it lies inside the coarse mask grown by one low-resolution cell
    (above 1 switches this test off); max_fraction: no refinement when the crop would cover
    more than this fraction of the image (nothing to zoom)."""

    margin: float = 0.15
    min_side: int = 32
    min_iou: float = 0.3
    min_containment: float = 0.75
    max_fraction: float = 0.8

    def __post_init__(self) -> None:
        if not 0.0 <= self.margin <= 2.0:
            raise ValueError(f"margin must be in [0, 2], got {self.margin!r}")
        if self.min_side < 1:
            raise ValueError(f"min_side must be >= 1, got {self.min_side!r}")
        if not 0.0 <= self.min_iou <= 1.0:
            raise ValueError(f"min_iou must be in [0, 1], got {self.min_iou!r}")
        if self.min_containment < 0.0:
            raise ValueError(f"min_containment must be >= 0, got {self.min_containment!r}")
        if not 0.0 < self.max_fraction <= 1.0:
            raise ValueError(f"max_fraction must be in (0, 1], got {self.max_fraction!r}")


@dataclass(frozen=True)
class RefinedMask:
    """mask: bool [H, W] at the image's size; window: the crop decoded (None when the mask was
    empty); accepted: whether the refined mask replaced the coarse one; score: its predicted IoU."""

    mask: np.ndarray
    window: Window | None
    accepted: bool
    score: float


def _mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def refine_window(
    mask: np.ndarray, config: RefineConfig = RefineConfig(), *, box: np.ndarray | None = None
) -> Window | None:
    """The square crop around ``mask`` [H, W] (its box, grown to hold ``box`` [x0, y0, x1, y1]
    when given, plus the margin, inside the image), or None if the mask is empty."""
    found = _mask_box(mask)
    if found is None:
        return None
    x0, y0, x1, y1 = found
    if box is not None:
        bx0, by0, bx1, by1 = (float(v) for v in np.asarray(box).reshape(4))
        x0, y0 = min(x0, max(0, int(np.floor(bx0)))), min(y0, max(0, int(np.floor(by0))))
        x1, y1 = max(x1, min(mask.shape[1], int(np.ceil(bx1)))), max(y1, min(mask.shape[0], int(np.ceil(by1))))
    height, width = mask.shape
    side = max(x1 - x0, y1 - y0)
    side = max(config.min_side, int(np.ceil(side * (1.0 + 2.0 * config.margin))))
    w, h = min(side, width), min(side, height)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    left = min(max(int(round(cx - w / 2.0)), 0), width - w)
    top = min(max(int(round(cy - h / 2.0)), 0), height - h)
    return Window(left, top, left + w, top + h)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b)) / union if union else 1.0


def containment(fine: np.ndarray, coarse: np.ndarray, grow: float) -> float:
    """The fraction of ``fine`` [h, w] within ``grow`` pixels of ``coarse`` [h, w] (1 when
    ``fine`` is empty, 0 when ``coarse`` is)."""
    from scipy.ndimage import distance_transform_edt

    count = np.count_nonzero(fine)
    if count == 0:
        return 1.0
    if not coarse.any():
        return 0.0
    near = distance_transform_edt(~coarse) <= grow
    return float(np.count_nonzero(fine & near)) / count


class MaskRefiner:
    """Refines masks of one image at a time; holds its own :class:`ImagePredictor` (the
    caller's predictor and its embedding are left alone)."""

    def __init__(self, model, config: RefineConfig = RefineConfig()) -> None:
        self.predictor = ImagePredictor(model)
        self.config = config
        self.low_res_side = max(1, int(model.image_size) // 4)  # the decoder's low-resolution grid

    def refine(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        *,
        points: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
    ) -> RefinedMask:
        """``image`` RGB [H, W, 3]; ``mask`` bool [H, W]; ``points`` [N, 2] (x, y) image pixels
        with ``labels`` [N]: the clicks that made the mask (those inside the crop are used);
        ``box`` [x0, y0, x1, y1]: the box prompt that made it (the crop then holds it too, and
        the prompt box is the union of it and the mask's box)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask is {mask.shape}, the image {image.shape[:2]}")
        window = refine_window(mask, self.config, box=box)
        if window is None or window.area > self.config.max_fraction * mask.size:
            return RefinedMask(mask, None, False, 0.0)
        crop = np.ascontiguousarray(image[window.y0 : window.y1, window.x0 : window.x1])
        coarse = mask[window.y0 : window.y1, window.x0 : window.x1]
        x0, y0, x1, y1 = _mask_box(coarse)
        if box is not None:
            b = np.asarray(box, dtype=np.float64).reshape(4) - [window.x0, window.y0, window.x0, window.y0]
            x0, y0 = min(x0, max(0.0, b[0])), min(y0, max(0.0, b[1]))
            x1, y1 = max(x1, min(window.width, b[2])), max(y1, min(window.height, b[3]))
        box = np.array([x0, y0, x1, y1], dtype=np.float64)
        crop_points = crop_labels = None
        if points is not None and len(points):
            pts = np.asarray(points, dtype=np.float64).reshape(-1, 2) - [window.x0, window.y0]
            inside = (pts[:, 0] >= 0) & (pts[:, 0] < window.width) & (pts[:, 1] >= 0) & (pts[:, 1] < window.height)
            if inside.any():
                crop_points = pts[inside]
                crop_labels = np.asarray(labels).reshape(-1)[inside]
        self.predictor.set_image(crop)
        result = self.predictor.predict(points=crop_points, labels=crop_labels, box=box, multimask_output=False)
        self.predictor.reset()
        fine = result.masks[0]
        score = float(result.scores[0])
        if not self.agrees(fine, coarse, mask.shape):
            return RefinedMask(mask, window, False, score)
        out = mask.copy()
        out[window.y0 : window.y1, window.x0 : window.x1] = fine
        return RefinedMask(out, window, True, score)

    def agrees(self, fine: np.ndarray, coarse: np.ndarray, image_shape: tuple[int, int]) -> bool:
        """Whether the refined crop mask ``fine`` may replace ``coarse`` (both [h, w]) on an
        image of ``image_shape`` (the coarse mask's cell is its long side / the low-res grid)."""
        if not fine.any():
            return False
        if _iou(fine, coarse) >= self.config.min_iou:
            return True
        if self.config.min_containment > 1.0:
            return False
        cell = max(image_shape) / self.low_res_side
        return containment(fine, coarse, cell) >= self.config.min_containment


def refine_all(refiner: MaskRefiner, image: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Each of masks [N, H, W] refined on ``image`` (box prompts) -> bool [N, H, W]."""
    return np.stack([refiner.refine(image, m).mask for m in masks]) if len(masks) else np.asarray(masks, dtype=bool)
