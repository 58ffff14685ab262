"""Drawing masks on frames: a fixed color per object id, and alpha blending."""

from __future__ import annotations

import colorsys
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

__all__ = [
    "object_color",
    "overlay_masks",
    "as_bool_masks",
    "as_obj_ids",
    "PromptMarks",
    "draw_prompts",
    "draw_labels",
    "draw_mask_labels",
]


def object_color(obj_id: int) -> tuple[int, int, int]:
    """A fixed, saturated RGB color for an object id (golden-ratio hue spacing)."""
    hue = (0.08 + 0.618033988749895 * int(obj_id)) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(round(red * 255)), int(round(green * 255)), int(round(blue * 255))


def as_bool_masks(masks: Any, *, name: str = "masks") -> np.ndarray:
    """``(N, H, W)`` or ``(N, 1, H, W)`` bool array / tensor -> ``(N, H, W)`` bool numpy array."""
    if hasattr(masks, "detach") and hasattr(masks, "cpu"):  # torch tensor, without importing torch
        masks = masks.detach().cpu().numpy()
    if not isinstance(masks, np.ndarray):
        raise TypeError(f"{name} must be a numpy bool array (objects, H, W), got {type(masks).__name__}")
    if masks.dtype != np.bool_:
        raise ValueError(
            f"{name} must have dtype bool (threshold logits first, e.g. `logits > 0`), got {masks.dtype}"
        )
    if masks.ndim == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.ndim != 3:
        raise ValueError(f"{name} must have shape (objects, H, W) or (objects, 1, H, W), got {masks.shape}")
    return masks


def as_obj_ids(obj_ids: Sequence[int], count: int) -> list[int]:
    ids: list[int] = []
    for position, value in enumerate(obj_ids):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"obj_ids[{position}] must be an int, got {type(value).__name__}")
        if int(value) < 0:
            raise ValueError(f"obj_ids[{position}] must be >= 0, got {int(value)}")
        ids.append(int(value))
    if len(set(ids)) != len(ids):
        raise ValueError(f"obj_ids must be unique, got {ids}")
    if len(ids) != count:
        raise ValueError(f"got {len(ids)} obj_ids but {count} masks")
    return ids


def overlay_masks(
    rgb: np.ndarray,
    masks: np.ndarray,
    obj_ids: Sequence[int],
    *,
    alpha: float = 0.5,
) -> np.ndarray:
    """Blend each object's color into the frame where its mask is on.

    Args:
        rgb: ``(H, W, 3)`` uint8 frame (not modified).
        masks: ``(N, H, W)`` (or ``(N, 1, H, W)``) bool masks.
        obj_ids: the ``N`` object ids (they pick the colors, see :func:`object_color`).
        alpha: opacity of the colors, 0..1.

    Returns:
        new ``(H, W, 3)`` uint8 array; objects are blended in order, so later
        ones are on top where masks overlap.
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(
            f"rgb must be a (H, W, 3) uint8 array, got shape={getattr(rgb, 'shape', None)} "
            f"dtype={getattr(rgb, 'dtype', type(rgb).__name__)}"
        )
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], got {alpha}")
    bool_masks = as_bool_masks(masks)
    ids = as_obj_ids(obj_ids, bool_masks.shape[0])
    if bool_masks.shape[1:] != rgb.shape[:2]:
        raise ValueError(f"masks are {bool_masks.shape[1:]} (H, W) but the frame is {rgb.shape[:2]}")
    output = rgb.astype(np.float32)
    for obj_id, mask in zip(ids, bool_masks):
        color = np.asarray(object_color(obj_id), dtype=np.float32)
        output[mask] = output[mask] * (1.0 - alpha) + color * alpha
    return np.clip(np.rint(output), 0, 255).astype(np.uint8)


#: Colors of the clicks drawn by :func:`draw_prompts`: foreground green, background red.
FOREGROUND_COLOR: tuple[int, int, int] = (0, 220, 0)
BACKGROUND_COLOR: tuple[int, int, int] = (230, 0, 0)


class PromptMarks(NamedTuple):
    """What the user asked for on one image or frame, in its pixels.

    ``points`` [N, 2] (x, y) with ``labels`` [N] (1 foreground, 0 background), ``boxes`` [B, 4]
    (x0, y0, x1, y1), and the object id each point / box belongs to (it picks the box color).
    """

    points: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    point_obj_ids: tuple[int, ...] = ()
    box_obj_ids: tuple[int, ...] = ()
    box_labels: tuple[str, ...] = ()  # text drawn above each box (a phrase, a score); none when empty

    @classmethod
    def empty(cls) -> "PromptMarks":
        return cls(np.zeros((0, 2)), np.zeros((0,), dtype=np.int64), np.zeros((0, 4)))

    def merged(self, other: "PromptMarks") -> "PromptMarks":
        """Both sets of marks together (for several objects on one frame)."""
        return PromptMarks(
            np.concatenate([self.points, other.points]),
            np.concatenate([self.labels, other.labels]),
            np.concatenate([self.boxes, other.boxes]),
            self.point_obj_ids + other.point_obj_ids,
            self.box_obj_ids + other.box_obj_ids,
            _padded(self.box_labels, len(self.boxes)) + _padded(other.box_labels, len(other.boxes)),
        )


def _padded(labels: tuple[str, ...], count: int) -> tuple[str, ...]:
    return tuple(labels[:count]) + ("",) * max(count - len(labels), 0)


def draw_prompts(rgb: np.ndarray, marks: PromptMarks) -> np.ndarray:
    """Draw clicks (filled discs, green = foreground, red = background, white rim) and boxes
    (outlines in their object's color, see :func:`object_color`) on a copy of ``rgb`` (H, W, 3) uint8."""
    from PIL import Image, ImageDraw

    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be a (H, W, 3) uint8 array, got shape={getattr(rgb, 'shape', None)}")
    height, width = rgb.shape[:2]
    image = Image.fromarray(np.ascontiguousarray(rgb))
    draw = ImageDraw.Draw(image)
    line = max(1, round(min(height, width) / 200))
    radius = max(3, round(min(height, width) / 80))
    box_ids = marks.box_obj_ids or (1,) * len(marks.boxes)
    for (x0, y0, x1, y1), obj_id in zip(np.asarray(marks.boxes, dtype=np.float64).tolist(), box_ids):
        # clip to a little outside the frame so huge boxes draw as frame-sized outlines
        x0, x1 = (min(max(v, -line), width + line) for v in (x0, x1))
        y0, y1 = (min(max(v, -line), height + line) for v in (y0, y1))
        draw.rectangle((x0, y0, x1, y1), outline=object_color(obj_id), width=line + 1)
    for (x, y), label in zip(np.asarray(marks.points, dtype=np.float64).tolist(), np.asarray(marks.labels).tolist()):
        fill = FOREGROUND_COLOR if int(label) == 1 else BACKGROUND_COLOR
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill, outline=(255, 255, 255), width=line)
    if any(marks.box_labels):
        _draw_tags(draw, [(b[0], b[1], text, obj) for b, text, obj in zip(np.asarray(marks.boxes, dtype=np.float64).tolist(), marks.box_labels, box_ids)], height, width)
    return np.asarray(image).copy()


def _font_size(height: int, width: int) -> int:
    return max(10, round(min(height, width) / 30))


def _draw_tags(draw, tags: list[tuple[float, float, str, int]], height: int, width: int) -> None:
    """Each (x, y, text, obj_id): the text in white on its object's color, its lower-left corner at
    (x, y) (moved inside the image when it would leave it)."""
    from PIL import ImageFont

    font = ImageFont.load_default(size=_font_size(height, width))
    pad = 2
    for x, y, text, obj_id in tags:
        if not text:
            continue
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        w, h = right - left + 2 * pad, bottom - top + 2 * pad
        x0 = min(max(float(x), 0.0), max(width - w, 0))
        y0 = min(max(float(y) - h, 0.0), max(height - h, 0))
        draw.rectangle((x0, y0, x0 + w - 1, y0 + h - 1), fill=object_color(obj_id))
        draw.text((x0 + pad - left, y0 + pad - top), text, fill=(255, 255, 255), font=font)


def draw_labels(rgb: np.ndarray, boxes: np.ndarray, labels: Sequence[str], obj_ids: Sequence[int]) -> np.ndarray:
    """Write each label above its box [K, 4] (x0, y0, x1, y1), on its object's color, on a copy of ``rgb`` (H, W, 3) uint8."""
    from PIL import Image, ImageDraw

    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be a (H, W, 3) uint8 array, got shape={getattr(rgb, 'shape', None)}")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not len(boxes) == len(labels) == len(obj_ids):
        raise ValueError(f"need one label and one obj_id per box: {len(boxes)} boxes, {len(labels)} labels, {len(obj_ids)} obj_ids")
    image = Image.fromarray(np.ascontiguousarray(rgb))
    _draw_tags(ImageDraw.Draw(image), [(b[0], b[1], str(t), int(o)) for b, t, o in zip(boxes.tolist(), labels, obj_ids)], *rgb.shape[:2])
    return np.asarray(image).copy()


def draw_mask_labels(rgb: np.ndarray, masks: np.ndarray, obj_ids: Sequence[int], labels: Mapping[int, str]) -> np.ndarray:
    """Write ``labels[obj_id]`` at the top-left corner of each non-empty mask [N, H, W] (objects without a label are skipped)."""
    bool_masks = as_bool_masks(masks)
    ids = as_obj_ids(obj_ids, bool_masks.shape[0])
    boxes, texts, owners = [], [], []
    for obj_id, mask in zip(ids, bool_masks):
        text = labels.get(obj_id, "")
        ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        if text and len(ys):
            boxes.append((xs[0], ys[0], xs[-1] + 1, ys[-1] + 1))
            texts.append(text)
            owners.append(obj_id)
    if not boxes:
        return rgb
    return draw_labels(rgb, np.array(boxes, dtype=np.float64), texts, owners)
