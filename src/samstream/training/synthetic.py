"""Seeded synthetic images and videos of objects moving over backgrounds, with exact instance masks.

Every clip is a pure function of ``(seed, config)``. Objects are sprites (a
texture and an exact mask): ellipses, polygons, stars, smooth blobs and
silhouettes (the horse of scikit-image), or, on request, thin structures (rings,
curves and branching lines a few pixels wide), textured with crops of photographs or
procedural patterns; in the real-composite mode they are objects cut from real
photographs (see :mod:`samstream.training.synthetic_assets`) over frames of real
videos.

Per clip and object: a depth (z-order; objects occlude those below), a path of
its centre, a scale that grows or shrinks geometrically and a rotation at a
constant angular speed. Some objects leave the frame entirely and come back
later. Look-alike distractors copy an annotated object's shape and texture and
move on their own; with ``distractors_annotated=False`` (the default) they are
not annotated (they are background: a tracker must not switch to them), with
True they are annotated as additional objects with their own ids.

Masks hold the visible pixels of each annotated object (the pixels it paints
after occlusion), so the masks of one frame are disjoint and the painted frame
agrees with them exactly.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

from samstream.training.synthetic_assets import AssetBank, Sprite, default_bank

__all__ = [
    "SyntheticVideoConfig",
    "SyntheticClip",
    "make_video",
    "make_image",
    "real_composite_config",
    "SHAPE_KINDS",
    "THIN_SHAPES",
]

ShapeKind = Literal["ellipse", "polygon", "star", "blob", "silhouette", "ring", "curve", "branches"]
SHAPE_KINDS: tuple[str, ...] = typing.get_args(ShapeKind)
THIN_SHAPES: tuple[ShapeKind, ...] = ("ring", "curve", "branches")
_SPRITE_SIZE = 128  # sprite resolution (pixels of its square canvas)


@dataclass(frozen=True)
class SyntheticVideoConfig:
    """What the generated clips look like.

    Sizes are fractions of the frame side unless named ``_px``; ranges are (low, high).
    """

    height: int = 256
    width: int = 256
    num_frames: int = 8
    num_objects: tuple[int, int] = (1, 3)  # annotated objects per clip
    num_distractors: tuple[int, int] = (0, 1)  # look-alikes of annotated objects
    distractors_annotated: bool = False  # annotate look-alikes as extra ids (else they are background)
    object_size: tuple[float, float] = (0.18, 0.4)  # object extent at the first frame
    shapes: tuple[ShapeKind, ...] = ("ellipse", "polygon", "star", "blob", "silhouette")
    max_speed: float = 0.06  # centre displacement per frame
    max_scale_change: float = 0.06  # |log scale| change per frame
    max_rotation_deg: float = 12.0  # rotation per frame
    prob_leave_and_return: float = 0.3  # an object leaves the frame entirely and comes back
    background_pan: float = 0.02  # background shift per frame (camera motion)
    background: Literal["auto", "photo", "procedural", "video"] = "auto"
    objects: Literal["shapes", "cutouts"] = "shapes"

    def __post_init__(self) -> None:
        if self.height < 16 or self.width < 16:
            raise ValueError(f"height and width must be >= 16, got {self.height}x{self.width}")
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        for name in ("num_objects", "num_distractors", "object_size"):
            low, high = getattr(self, name)
            if low > high or low < 0:
                raise ValueError(f"{name} must be a (low, high) range with 0 <= low <= high, got {(low, high)}")
        if self.num_objects[0] < 1:
            raise ValueError(f"num_objects must allow at least 1 object, got {self.num_objects}")
        if not self.shapes:
            raise ValueError("shapes must name at least one shape kind")
        unknown = set(self.shapes) - set(SHAPE_KINDS)
        if unknown:
            raise ValueError(f"shapes: unknown kinds {sorted(unknown)}")
        if self.background not in ("auto", "photo", "procedural", "video"):
            raise ValueError(f"background must be auto, photo, procedural or video, got {self.background!r}")
        if self.objects not in ("shapes", "cutouts"):
            raise ValueError(f"objects must be 'shapes' or 'cutouts', got {self.objects!r}")
        if not 0.0 <= self.prob_leave_and_return <= 1.0:
            raise ValueError(f"prob_leave_and_return must be in [0, 1], got {self.prob_leave_and_return}")

    def replace(self, **changes) -> "SyntheticVideoConfig":
        return dataclasses.replace(self, **changes)


def real_composite_config(**changes) -> SyntheticVideoConfig:
    """The real-composite mode: real video backgrounds and objects cut from real photographs."""
    base = SyntheticVideoConfig(background="video", objects="cutouts", num_distractors=(0, 0))
    return base.replace(**changes)


@dataclass(frozen=True)
class SyntheticClip:
    """A generated clip (an image is a 1-frame clip).

    frames: [T, H, W, 3] uint8.
    masks: [T, N, H, W] bool, visible pixels of each annotated object (disjoint).
    visible: [T, N] bool, the object has at least one visible pixel.
    obj_ids: the N object ids (1, 2, ...), in mask order.
    seed: the seed it was made from.
    full_areas: [T, N] int, pixels each object covers in the frame before occlusion
        (``masks.sum((2, 3)) / full_areas`` is the visible fraction).
    """

    frames: np.ndarray
    masks: np.ndarray
    visible: np.ndarray
    obj_ids: tuple[int, ...]
    seed: int
    full_areas: np.ndarray

    def reentry_frames(self) -> np.ndarray:
        """[T, N] bool: frames at or after an object's first return after being absent."""
        out = np.zeros_like(self.visible)
        for n in range(self.visible.shape[1]):
            seen = absent_after_seen = returned = False
            for t, present in enumerate(self.visible[:, n]):
                if present and absent_after_seen:
                    returned = True
                if present:
                    seen = True
                elif seen:
                    absent_after_seen = True
                out[t, n] = returned
        return out


# ----------------------------------------------------------------------------------- shapes


def _polygon_mask(points: np.ndarray) -> np.ndarray:
    canvas = Image.new("L", (_SPRITE_SIZE, _SPRITE_SIZE), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in points.tolist()], fill=255)
    return np.asarray(canvas) > 127


def _radial_points(radii: np.ndarray, angles: np.ndarray) -> np.ndarray:
    centre = _SPRITE_SIZE / 2
    return np.stack([centre + radii * np.cos(angles), centre + radii * np.sin(angles)], axis=1)


def _thin_mask(kind: ShapeKind, rng: np.random.Generator) -> np.ndarray:
    """A [128, 128] bool mask of a thin structure: strokes 5-12 canvas pixels wide."""
    canvas = Image.new("L", (_SPRITE_SIZE, _SPRITE_SIZE), 0)
    draw = ImageDraw.Draw(canvas)
    width = int(rng.integers(5, 13))
    margin = width / 2 + 2
    if kind == "ring":
        ratio = rng.uniform(0.5, 1.0)
        half_h = (_SPRITE_SIZE / 2 - margin) * ratio
        top = _SPRITE_SIZE / 2 - half_h
        draw.ellipse((margin, top, _SPRITE_SIZE - margin, _SPRITE_SIZE - top), outline=255, width=width)
    elif kind == "curve":
        xs = np.linspace(margin, _SPRITE_SIZE - margin, 64)
        amplitude = rng.uniform(0.1, 0.35) * _SPRITE_SIZE
        ys = _SPRITE_SIZE / 2 + amplitude * np.sin(xs / _SPRITE_SIZE * rng.uniform(4, 12) + rng.uniform(0, 2 * np.pi))
        draw.line(list(zip(xs.tolist(), ys.tolist())), fill=255, width=width, joint="curve")
    else:
        # a tree of strokes: a trunk that splits in two, three times
        stack = [((_SPRITE_SIZE / 2, _SPRITE_SIZE - margin), -np.pi / 2, 0.36 * _SPRITE_SIZE, 0)]
        while stack:
            (x, y), angle, length, depth = stack.pop()
            end = (float(np.clip(x + length * np.cos(angle), margin, _SPRITE_SIZE - margin)),
                   float(np.clip(y + length * np.sin(angle), margin, _SPRITE_SIZE - margin)))
            draw.line([(x, y), end], fill=255, width=width)
            if depth < 3:
                for turn in (-0.5, 0.5):
                    stack.append((end, angle + turn + rng.uniform(-0.25, 0.25), length * 0.65, depth + 1))
    return np.asarray(canvas) > 127


def _shape_mask(kind: ShapeKind, rng: np.random.Generator, bank: AssetBank) -> np.ndarray:
    """A [128, 128] bool mask of a random shape of this kind, roughly filling the canvas."""
    half = _SPRITE_SIZE / 2 - 2
    if kind in THIN_SHAPES:
        return _thin_mask(kind, rng)
    if kind == "ellipse":
        ratio = rng.uniform(0.4, 1.0)
        angles = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        points = np.stack([half * np.cos(angles), half * ratio * np.sin(angles)], axis=1) + _SPRITE_SIZE / 2
        return _polygon_mask(points)
    if kind == "polygon":
        count = int(rng.integers(3, 9))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count))
        return _polygon_mask(_radial_points(half * rng.uniform(0.55, 1.0, count), angles))
    if kind == "star":
        count = int(rng.integers(4, 9))
        angles = np.linspace(0, 2 * np.pi, 2 * count, endpoint=False) + rng.uniform(0, np.pi)
        radii = np.where(np.arange(2 * count) % 2 == 0, half, half * rng.uniform(0.35, 0.6))
        return _polygon_mask(_radial_points(radii, angles))
    if kind == "silhouette" and bank.silhouettes:
        silhouette = bank.silhouettes[int(rng.integers(len(bank.silhouettes)))]
        if rng.uniform() < 0.5:
            silhouette = silhouette[:, ::-1]
        h, w = silhouette.shape
        scale = (_SPRITE_SIZE - 4) / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = np.asarray(Image.fromarray(silhouette.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 127
        canvas = np.zeros((_SPRITE_SIZE, _SPRITE_SIZE), dtype=bool)
        y, x = (_SPRITE_SIZE - size[1]) // 2, (_SPRITE_SIZE - size[0]) // 2
        canvas[y : y + size[1], x : x + size[0]] = small
        return canvas
    # a smooth random blob (also the silhouette fallback without scikit-image)
    angles = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    radii = np.ones_like(angles)
    for harmonic in range(2, 6):
        radii += rng.uniform(-0.25, 0.25) / harmonic * 2 * np.cos(harmonic * angles + rng.uniform(0, 2 * np.pi))
    radii = half * np.clip(radii / radii.max(), 0.25, 1.0)
    return _polygon_mask(_radial_points(radii, angles))


def _make_sprite(config: SyntheticVideoConfig, rng: np.random.Generator, bank: AssetBank) -> Sprite:
    if config.objects == "cutouts":
        return bank.cutouts[int(rng.integers(len(bank.cutouts)))]
    kind = config.shapes[int(rng.integers(len(config.shapes)))]
    mask = _shape_mask(kind, rng, bank)
    return Sprite(bank.texture(rng, _SPRITE_SIZE), mask)


# ----------------------------------------------------------------------------------- motion


@dataclass(frozen=True)
class _Track:
    """Per-frame pose of one painted object: centre (x, y) px, scale (frame px per sprite px), angle (rad)."""

    centres: np.ndarray  # [T, 2]
    scales: np.ndarray  # [T]
    angles: np.ndarray  # [T]


def _outside_point(rng: np.random.Generator, height: int, width: int, margin: float) -> np.ndarray:
    side = int(rng.integers(4))
    along = rng.uniform(0.2, 0.8)
    if side == 0:
        return np.array([-margin, along * height])
    if side == 1:
        return np.array([width + margin, along * height])
    if side == 2:
        return np.array([along * width, -margin])
    return np.array([along * width, height + margin])


def _make_track(
    config: SyntheticVideoConfig, sprite: Sprite, rng: np.random.Generator, allow_leave: bool
) -> _Track:
    t_count, h, w = config.num_frames, config.height, config.width
    side = min(h, w)
    extent = rng.uniform(*config.object_size) * side
    base_scale = extent / max(sprite.mask.shape)
    log_rate = rng.uniform(-config.max_scale_change, config.max_scale_change)
    scales = base_scale * np.exp(log_rate * np.arange(t_count))
    angle_rate = np.deg2rad(rng.uniform(-config.max_rotation_deg, config.max_rotation_deg))
    angles = rng.uniform(0, 2 * np.pi) + angle_rate * np.arange(t_count)

    start = np.array([rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h])
    velocity = rng.uniform(-1, 1, 2) * config.max_speed * side
    times = np.arange(t_count, dtype=np.float64)
    centres = start + velocity * times[:, None]
    if allow_leave and t_count >= 5 and rng.uniform() < config.prob_leave_and_return:
        # go out at t_out, stay out until t_back, come back in to a point inside by the last frame
        radius = 0.75 * max(sprite.mask.shape) * scales.max()
        out_point = _outside_point(rng, h, w, radius + 2)
        t_out = int(rng.integers(1, t_count - 3))
        t_back = int(rng.integers(t_out + 1, t_count - 1))
        end = np.array([rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.75) * h])
        keys_t = np.array([0.0, t_out, t_back, t_count - 1])
        keys = np.stack([start, out_point, out_point, end])
        centres = np.stack([np.interp(times, keys_t, keys[:, k]) for k in range(2)], axis=1)
    else:
        # bounce off the borders so that ordinary objects stay mostly in view
        for k, limit in ((0, w), (1, h)):
            span = 2 * limit
            folded = np.mod(centres[:, k], span)
            centres[:, k] = np.where(folded > limit, span - folded, folded)
    return _Track(centres, scales, angles)


# ----------------------------------------------------------------------------------- painting


def _affine(sprite_shape: tuple[int, int], centre: np.ndarray, scale: float, angle: float) -> tuple[float, ...]:
    """PIL affine coefficients mapping a frame pixel to the sprite pixel it shows."""
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    sprite_cy, sprite_cx = (sprite_shape[0] - 1) / 2, (sprite_shape[1] - 1) / 2
    a, b, d, e = cos, sin, -sin, cos
    c = sprite_cx - a * centre[0] - b * centre[1]
    f = sprite_cy - d * centre[0] - e * centre[1]
    return (a, b, c, d, e, f)


def _paint_layer(
    sprite_images: tuple[Image.Image, Image.Image], shape: tuple[int, int], size: tuple[int, int],
    centre: np.ndarray, scale: float, angle: float,
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
    """The sprite at this pose, inside its bounding box in the frame.

    Returns (box, colours [h, w, 3] uint8, mask [h, w] bool) where box is the
    (rows, cols) slice of the frame, or None when the sprite is entirely outside.
    """
    # the frame box the rotated, scaled sprite covers
    half_diag = 0.5 * float(np.hypot(*shape)) * scale + 1
    x0, x1 = max(int(centre[0] - half_diag), 0), min(int(np.ceil(centre[0] + half_diag)), size[0])
    y0, y1 = max(int(centre[1] - half_diag), 0), min(int(np.ceil(centre[1] + half_diag)), size[1])
    if x0 >= x1 or y0 >= y1:
        return None
    a, b, c, d, e, f = _affine(shape, centre, scale, angle)
    coefficients = (a, b, c + a * x0 + b * y0, d, e, f + d * x0 + e * y0)  # box origin at (x0, y0)
    box_size = (x1 - x0, y1 - y0)
    rgb_image, mask_image = sprite_images
    mask = np.asarray(mask_image.transform(box_size, Image.AFFINE, coefficients, resample=Image.NEAREST)) > 127
    if not mask.any():
        return None
    rgb = np.asarray(rgb_image.transform(box_size, Image.AFFINE, coefficients, resample=Image.BILINEAR))
    return (slice(y0, y1), slice(x0, x1)), rgb, mask


def _backgrounds(config: SyntheticVideoConfig, rng: np.random.Generator, bank: AssetBank) -> np.ndarray:
    """[T, H, W, 3] uint8 background frames (a panning crop, or consecutive frames of a real video)."""
    t_count, h, w = config.num_frames, config.height, config.width
    if config.background == "video":
        video = bank.videos[int(rng.integers(len(bank.videos)))]
        stride = int(rng.integers(1, 3))
        needed = (t_count - 1) * stride + 1
        if needed > video.shape[0]:
            stride, needed = 1, t_count
        start = int(rng.integers(max(video.shape[0] - needed, 0) + 1))
        indices = np.minimum(start + stride * np.arange(t_count), video.shape[0] - 1)
        y = int(rng.integers(video.shape[1] - h + 1))
        x = int(rng.integers(video.shape[2] - w + 1))
        return video[indices, y : y + h, x : x + w].copy()
    big = bank.background(rng, h, w)
    room_y, room_x = big.shape[0] - h, big.shape[1] - w
    start = np.array([rng.uniform(0, room_y), rng.uniform(0, room_x)])
    shift = rng.uniform(-1, 1, 2) * config.background_pan * min(h, w) * np.arange(t_count)[:, None]
    offsets = np.clip(start + shift, 0, [room_y, room_x]).round().astype(int)
    return np.stack([big[oy : oy + h, ox : ox + w] for oy, ox in offsets])


def _bank_for(config: SyntheticVideoConfig) -> AssetBank:
    use_photos = config.background != "procedural"
    return default_bank(
        use_photos,
        max(config.height, config.width),
        config.objects == "cutouts",
        config.background == "video",
    )


def make_video(seed: int, config: SyntheticVideoConfig = SyntheticVideoConfig(), bank: AssetBank | None = None) -> SyntheticClip:
    """Generate the clip of ``seed`` (same seed and config, same clip).

    Args:
        seed: any non-negative int.
        config: what to generate.
        bank: assets to paint with (default: the shared bank for the config's sources).
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    bank = bank if bank is not None else _bank_for(config)
    if config.background == "photo" and not bank.use_photos:
        raise ModuleNotFoundError("background='photo' needs scikit-image: pip install 'samstream[train]'")
    rng = np.random.default_rng(seed)
    t_count, h, w = config.num_frames, config.height, config.width
    frames = _backgrounds(config, rng, bank)

    num_objects = int(rng.integers(config.num_objects[0], config.num_objects[1] + 1))
    num_distractors = int(rng.integers(config.num_distractors[0], config.num_distractors[1] + 1))
    sprites = [_make_sprite(config, rng, bank) for _ in range(num_objects)]
    # look-alikes copy an annotated object's sprite (same shape and texture)
    sprites += [sprites[int(rng.integers(num_objects))] for _ in range(num_distractors)]
    annotated = [True] * num_objects + [config.distractors_annotated] * num_distractors
    tracks = [_make_track(config, sprite, rng, allow_leave=True) for sprite in sprites]
    depth_order = rng.permutation(len(sprites))  # painted first = deepest

    pil_sprites = [
        (Image.fromarray(np.ascontiguousarray(s.rgb)), Image.fromarray(s.mask.astype(np.uint8) * 255))
        for s in sprites
    ]
    owner = np.zeros((t_count, h, w), dtype=np.int16)  # painted layer + 1, 0 = background
    full_areas = np.zeros((t_count, len(sprites)), dtype=np.int64)
    for t in range(t_count):
        for layer in depth_order:
            track = tracks[layer]
            painted = _paint_layer(
                pil_sprites[layer], sprites[layer].mask.shape, (w, h),
                track.centres[t], float(track.scales[t]), float(track.angles[t]),
            )
            if painted is None:
                continue
            box, rgb, mask = painted
            full_areas[t, layer] = int(mask.sum())
            frames[t][box][mask] = rgb[mask]
            owner[t][box][mask] = layer + 1

    annotated_layers = [i for i, flag in enumerate(annotated) if flag]
    masks = np.stack([owner == layer + 1 for layer in annotated_layers], axis=1)  # [T, N, H, W]
    visible = masks.reshape(t_count, len(annotated_layers), -1).any(axis=2)
    obj_ids = tuple(range(1, len(annotated_layers) + 1))
    return SyntheticClip(frames, masks, visible, obj_ids, seed, full_areas[:, annotated_layers])


def make_image(seed: int, config: SyntheticVideoConfig = SyntheticVideoConfig(), bank: AssetBank | None = None) -> SyntheticClip:
    """A still image (a 1-frame clip) of ``seed``: the config with ``num_frames=1``."""
    return make_video(seed, config.replace(num_frames=1), bank)
