"""Video-consistent augmentation: one set of parameters per clip, applied to every frame.

Horizontal flip, a random scale-crop resized to the model's square input size, and
colour jitter (brightness, contrast, saturation, hue factors drawn once per clip),
using torchvision's v2 functional ops. Masks follow the geometry with nearest
interpolation. The crop is redrawn (up to ``max_crop_tries`` times) when it would
hide every object on the first frame; after that the whole frame is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from samstream.training.config import AugmentConfig
from samstream.training.data.sample import BadSampleError, ClipSample, keep_first_frame_objects

__all__ = ["AugmentParams", "draw_params", "apply_params", "VideoAugment"]


@dataclass(frozen=True)
class AugmentParams:
    """The parameters of one clip: crop box (top, left, height, width) in source pixels, and jitter factors."""

    flip: bool
    crop: tuple[int, int, int, int]
    brightness: float
    contrast: float
    saturation: float
    hue: float


def _crop_box(h: int, w: int, config: AugmentConfig, rng: np.random.Generator) -> tuple[int, int, int, int]:
    area = h * w
    log_ratio = (math.log(config.aspect_range[0]), math.log(config.aspect_range[1]))
    for _ in range(10):
        target = area * rng.uniform(*config.scale_range)
        ratio = math.exp(rng.uniform(*log_ratio))
        cw = int(round(math.sqrt(target * ratio)))
        ch = int(round(math.sqrt(target / ratio)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1)), ch, cw
    return 0, 0, h, w


def _factor(strength: float, rng: np.random.Generator) -> float:
    return float(rng.uniform(max(0.0, 1 - strength), 1 + strength)) if strength > 0 else 1.0


def draw_params(h: int, w: int, config: AugmentConfig, rng: np.random.Generator) -> AugmentParams:
    return AugmentParams(
        flip=bool(rng.uniform() < config.hflip_prob),
        crop=_crop_box(h, w, config, rng),
        brightness=_factor(config.brightness, rng),
        contrast=_factor(config.contrast, rng),
        saturation=_factor(config.saturation, rng),
        hue=float(rng.uniform(-config.hue, config.hue)) if config.hue > 0 else 0.0,
    )


def apply_params(sample: ClipSample, params: AugmentParams, size: int) -> ClipSample:
    """The clip with these parameters applied, resized to [T, size, size]."""
    t, n, h, w = sample.masks.shape
    frames = torch.from_numpy(np.ascontiguousarray(sample.frames)).permute(0, 3, 1, 2)  # [T, 3, H, W] uint8
    masks = torch.from_numpy(np.ascontiguousarray(sample.masks)).reshape(t * n, 1, h, w).to(torch.uint8)
    top, left, ch, cw = params.crop
    frames = TF.resized_crop(frames, top, left, ch, cw, [size, size], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    masks = TF.resized_crop(masks, top, left, ch, cw, [size, size], interpolation=TF.InterpolationMode.NEAREST)
    if params.flip:
        frames, masks = TF.horizontal_flip(frames), TF.horizontal_flip(masks)
    if params.brightness != 1.0:
        frames = TF.adjust_brightness(frames, params.brightness)
    if params.contrast != 1.0:
        frames = TF.adjust_contrast(frames, params.contrast)
    if params.saturation != 1.0:
        frames = TF.adjust_saturation(frames, params.saturation)
    if params.hue != 0.0:
        frames = TF.adjust_hue(frames, params.hue)
    return ClipSample(
        frames.permute(0, 2, 3, 1).contiguous().numpy(),
        masks.reshape(t, n, size, size).bool().numpy(),
        sample.obj_ids,
        sample.source,
    )


class VideoAugment:
    """Draw parameters once per clip and apply them to every frame; output is [T, size, size].

    Args:
        config: augmentation strengths.
        size: the model's square input size.
        max_objects: objects kept (those visible on the first frame after the crop).
        max_crop_tries: crops drawn before falling back to the whole frame.
    """

    def __init__(self, config: AugmentConfig, size: int, *, max_objects: int = 3, max_crop_tries: int = 5) -> None:
        if size < 8:
            raise ValueError(f"size must be >= 8, got {size}")
        self.config, self.size, self.max_objects, self.max_crop_tries = config, size, max_objects, max_crop_tries

    def __call__(self, sample: ClipSample, rng: np.random.Generator) -> ClipSample:
        h, w = sample.frames.shape[1:3]
        for attempt in range(self.max_crop_tries + 1):
            params = draw_params(h, w, self.config, rng)
            if attempt == self.max_crop_tries:
                params = AugmentParams(params.flip, (0, 0, h, w), params.brightness, params.contrast,
                                       params.saturation, params.hue)
            out = apply_params(sample, params, self.size)
            if out.masks[0].any():
                break
        try:
            masks, obj_ids = keep_first_frame_objects(out.masks, out.obj_ids, self.max_objects, rng, sample.source)
        except BadSampleError:
            raise BadSampleError(sample.source, "every object vanishes when resized to the model input") from None
        return ClipSample(out.frames, masks, obj_ids, out.source)
