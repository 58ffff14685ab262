"""Dataset layouts of the video object segmentation benchmarks, and their mask files.

Three layouts are known (:data:`LAYOUTS`):

* ``davis``: ``ROOT/JPEGImages[/480p]/<video>/<frame>.jpg`` and
  ``ROOT/Annotations[/480p]/<video>/<frame>.png``, one palette PNG per frame whose pixel
  values are object ids (0 background, 255 void);
* ``sav`` (SA-V): ``ROOT/JPEGImages_24fps/<video>/<frame>.jpg`` and
  ``ROOT/Annotations_6fps/<video>/<obj:03d>/<frame>.png``, one binary PNG per object per
  annotated frame;
* ``ytvos`` (YouTube-VOS): like DAVIS (no ``480p`` level), with ``ROOT/meta.json``;
  objects may first appear on later frames.

Masks of one video are read into a stack ``[T, K, H, W]`` of booleans (T frames, K objects)
by :func:`load_video_masks`, whichever of the two file formats (palette or per-object) holds
them. Written masks go through :mod:`samstream.io.atomic`, so a crash never leaves half a PNG.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..io.atomic import atomic_save_png

__all__ = [
    "LAYOUTS",
    "DAVIS_PALETTE",
    "VOID_ID",
    "LayoutError",
    "DatasetLayout",
    "VideoInput",
    "MaskFolder",
    "get_layout",
    "list_videos",
    "frame_sort_key",
    "read_id_png",
    "read_binary_png",
    "write_palette_png",
    "write_binary_png",
    "open_mask_folder",
    "load_video_masks",
    "labels_from_masks",
]

VOID_ID = 255
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


class LayoutError(ValueError):
    """A dataset folder that does not follow the layout it was read as."""


def _davis_palette() -> bytes:
    """The 256 colours of the PASCAL VOC / DAVIS palette (the index's bits spread over R, G, B)."""
    out = bytearray()
    for index in range(256):
        rgb = [0, 0, 0]
        code = index
        for level in range(8):
            for channel in range(3):
                rgb[channel] |= ((code >> channel) & 1) << (7 - level)
            code >>= 3
        out += bytes(rgb)
    return bytes(out)


#: 768 bytes: RGB of ids 0..255 (0 black, 1 dark red, 2 dark green, ...).
DAVIS_PALETTE: bytes = _davis_palette()

_DIGIT_RUNS = re.compile(r"(\d+)")


def frame_sort_key(name: str) -> tuple[Any, ...]:
    """Digit runs compare by value ("2.jpg" < "10.jpg"), text case-insensitively; the full
    name breaks ties. This is the order in which the video predictor reads a frame folder."""
    parts = _DIGIT_RUNS.split(name)
    return (tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)), name)


@dataclass(frozen=True)
class DatasetLayout:
    """Where a layout keeps frames and annotations (first existing candidate wins)."""

    name: str
    image_dirs: tuple[str, ...]
    annotation_dirs: tuple[str, ...]
    per_object: bool  # one PNG per object per frame (else one palette PNG per frame)
    objects_appear_later: bool  # objects may first appear after the first annotated frame

    def find_dir(self, root: Path, candidates: tuple[str, ...], what: str) -> Path:
        for name in candidates:
            if (root / name).is_dir():
                return root / name
        tried = ", ".join(str(root / c) for c in candidates)
        raise LayoutError(f"{self.name} layout: no {what} folder under {root} (looked for {tried})")


_LAYOUTS: dict[str, DatasetLayout] = {
    "davis": DatasetLayout("davis", ("JPEGImages/480p", "JPEGImages"), ("Annotations/480p", "Annotations"), False, False),
    "sav": DatasetLayout("sav", ("JPEGImages_24fps", "JPEGImages"), ("Annotations_6fps", "Annotations"), True, True),
    "ytvos": DatasetLayout("ytvos", ("JPEGImages",), ("Annotations",), False, True),
}
LAYOUTS: tuple[str, ...] = tuple(_LAYOUTS)


def get_layout(name: str) -> DatasetLayout:
    try:
        return _LAYOUTS[name]
    except KeyError:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {name!r}") from None


@dataclass(frozen=True)
class VideoInput:
    """One video of a dataset: its frames (in predictor order) and its annotation folder."""

    name: str
    frames_dir: Path
    frame_names: tuple[str, ...]  # file stems, e.g. "00000"
    annotations: Path  # the video's annotation folder


def _frame_stems(folder: Path) -> tuple[str, ...]:
    names = [
        e.name
        for e in os.scandir(folder)
        if e.is_file() and not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in FRAME_SUFFIXES
    ]
    names.sort(key=frame_sort_key)
    stems = tuple(os.path.splitext(n)[0] for n in names)
    if len(set(stems)) != len(stems):
        raise LayoutError(f"frame folder {folder} holds two frames with the same name and different suffixes")
    return stems


def list_videos(root: Path | str, layout: DatasetLayout | str, videos: Sequence[str] | None = None) -> list[VideoInput]:
    """Every video of a dataset in ``layout`` (or only ``videos``), sorted by name.

    Raises :class:`LayoutError` for a missing folder, a video without frames or without
    annotations, or an empty dataset.
    """
    layout = get_layout(layout) if isinstance(layout, str) else layout
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"--input {root}: not a folder")
    images = layout.find_dir(root, layout.image_dirs, "frames")
    annotations = layout.find_dir(root, layout.annotation_dirs, "annotations")
    names = sorted(e.name for e in os.scandir(images) if e.is_dir() and not e.name.startswith("."))
    if videos is not None:
        unknown = sorted(set(videos) - set(names))
        if unknown:
            raise LayoutError(f"videos not found under {images}: {', '.join(unknown)}")
        names = [n for n in names if n in set(videos)]
    if not names:
        raise LayoutError(f"empty dataset: no video folders under {images}")
    out = []
    for name in names:
        frames = _frame_stems(images / name)
        if not frames:
            raise LayoutError(f"video {name}: no frames (.jpg/.jpeg/.png) in {images / name}")
        if not (annotations / name).is_dir():
            raise LayoutError(f"video {name}: no annotation folder {annotations / name}")
        out.append(VideoInput(name=name, frames_dir=images / name, frame_names=frames, annotations=annotations / name))
    return out


# --------------------------------------------------------------------------- PNG files


def read_id_png(path: Path) -> np.ndarray:
    """A palette (or grayscale) PNG as its pixel values: ``(H, W)`` uint8 ids."""
    try:
        with Image.open(path) as img:
            if img.mode not in ("P", "L", "1"):
                raise LayoutError(f"{path}: expected a palette or grayscale PNG of object ids, got mode {img.mode}")
            return np.array(img if img.mode != "1" else img.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise LayoutError(f"cannot read mask {path}: {exc}") from None


def read_binary_png(path: Path) -> np.ndarray:
    """A per-object PNG as a ``(H, W)`` bool mask (any non-zero pixel is the object)."""
    try:
        with Image.open(path) as img:
            if img.mode in ("P", "L", "1", "I", "I;16"):
                return np.array(img) > 0
            return np.array(img.convert("L")) > 0
    except (UnidentifiedImageError, OSError) as exc:
        raise LayoutError(f"cannot read mask {path}: {exc}") from None


def write_palette_png(path: Path, ids: np.ndarray) -> None:
    """Write ``(H, W)`` uint8 object ids as a DAVIS palette PNG, atomically."""
    if ids.dtype != np.uint8 or ids.ndim != 2:
        raise ValueError(f"ids must be a (H, W) uint8 array, got {ids.dtype} {ids.shape}")
    atomic_save_png(path, ids, palette=DAVIS_PALETTE)


def write_binary_png(path: Path, mask: np.ndarray) -> None:
    """Write a ``(H, W)`` bool mask as a 0/255 grayscale PNG, atomically."""
    atomic_save_png(path, np.asarray(mask, dtype=bool))


def labels_from_masks(masks: np.ndarray, obj_ids: Sequence[int]) -> np.ndarray:
    """Object masks ``[K, H, W]`` -> ids ``(H, W)`` uint8; where masks overlap the smaller id wins."""
    if masks.ndim != 3 or masks.shape[0] != len(obj_ids):
        raise ValueError(f"masks must be [K, H, W] with K = {len(obj_ids)} objects, got {masks.shape}")
    bad = [i for i in obj_ids if not 0 < int(i) < VOID_ID]
    if bad:
        raise ValueError(f"object ids must be in 1..254 to fit a palette PNG, got {bad}")
    ids = np.zeros(masks.shape[1:], dtype=np.uint8)
    for k in np.argsort(obj_ids)[::-1]:  # larger ids first, so smaller ids overwrite them
        ids[masks[k]] = obj_ids[k]
    return ids


# --------------------------------------------------------------------------- mask folders


@dataclass
class MaskFolder:
    """The masks of one video, in either format.

    ``files`` maps a frame stem to its palette PNG (``per_object=False``), or an object id to
    ``{frame stem: PNG}`` (``per_object=True``).
    """

    path: Path
    per_object: bool
    files: dict = field(default_factory=dict)

    def frames(self) -> list[str]:
        """Stems of every frame that has at least one mask file, in frame order."""
        if self.per_object:
            stems = {s for per in self.files.values() for s in per}
        else:
            stems = set(self.files)
        return sorted(stems, key=frame_sort_key)

    def object_frames(self, obj_id: int) -> list[str]:
        """Per-object folders: the frames annotated for one object."""
        return sorted(self.files.get(obj_id, {}), key=frame_sort_key)

    def read_frame(self, stem: str) -> dict[int, np.ndarray]:
        """``{object id: (H, W) bool}`` on one frame (void and background pixels are in no object)."""
        if self.per_object:
            return {o: read_binary_png(per[stem]) for o, per in sorted(self.files.items()) if stem in per}
        ids = read_id_png(self.files[stem])
        return {int(i): ids == i for i in np.unique(ids) if 0 < i < VOID_ID}


def open_mask_folder(path: Path | str, per_object: bool | None = None) -> MaskFolder:
    """Index a video's mask folder; ``per_object=None`` detects the format (numbered sub-folders)."""
    path = Path(path)
    if not path.is_dir():
        raise LayoutError(f"mask folder not found: {path}")
    entries = [e for e in os.scandir(path) if not e.name.startswith(".")]
    subdirs = [e for e in entries if e.is_dir()]
    if per_object is None:
        per_object = bool(subdirs) and not any(e.name.lower().endswith(".png") for e in entries if e.is_file())
    folder = MaskFolder(path=path, per_object=per_object)
    if per_object:
        for e in subdirs:
            if not e.name.isdigit():
                raise LayoutError(f"{path}: per-object folders must be named by object id (like 001), found {e.name!r}")
            obj_id = int(e.name)
            folder.files[obj_id] = {
                os.path.splitext(f.name)[0]: Path(f.path)
                for f in os.scandir(e.path)
                if f.is_file() and f.name.lower().endswith(".png") and not f.name.startswith(".")
            }
    else:
        folder.files = {
            os.path.splitext(e.name)[0]: Path(e.path) for e in entries if e.is_file() and e.name.lower().endswith(".png")
        }
    return folder


@dataclass(frozen=True)
class VideoMasks:
    """The masks of one video on chosen frames, for chosen objects.

    masks [T, K, H, W] bool; missing: frames with no file at all (scored as empty);
    unexpected_ids: ids found in files but not among the requested objects. In per-object
    folders a frame is missing when any requested object has no file on it.
    """

    masks: np.ndarray
    missing: tuple[str, ...]
    unexpected_ids: tuple[int, ...]


def load_video_masks(
    folder: MaskFolder, stems: Sequence[str], obj_ids: Sequence[int], shape: tuple[int, int]
) -> VideoMasks:
    """Read ``folder``'s masks of ``obj_ids`` on ``stems`` into ``[T, K, H, W]``.

    A frame without a file counts as empty (and is listed in ``missing``); a mask of another
    size than ``shape`` (H, W) raises :class:`LayoutError` naming the file.
    """
    index = {o: k for k, o in enumerate(obj_ids)}
    out = np.zeros((len(stems), len(obj_ids), *shape), dtype=bool)
    missing: list[str] = []
    unexpected: set[int] = set()
    for t, stem in enumerate(stems):
        if folder.per_object:
            present = [o for o, per in folder.files.items() if stem in per]
            if any(stem not in folder.files.get(o, {}) for o in obj_ids):
                missing.append(stem)
            for o in present:
                if o not in index:
                    unexpected.add(o)
                    continue
                mask = read_binary_png(folder.files[o][stem])
                _check_shape(mask, shape, folder.files[o][stem])
                out[t, index[o]] = mask
        else:
            path = folder.files.get(stem)
            if path is None:
                missing.append(stem)
                continue
            ids = read_id_png(path)
            _check_shape(ids, shape, path)
            for value in np.flatnonzero(np.bincount(ids.ravel(), minlength=256)):
                value = int(value)
                if value == 0 or value == VOID_ID:
                    continue
                if value in index:
                    out[t, index[value]] = ids == value
                else:
                    unexpected.add(value)
    return VideoMasks(masks=out, missing=tuple(missing), unexpected_ids=tuple(sorted(unexpected)))


def _check_shape(array: np.ndarray, shape: tuple[int, int], path: Path) -> None:
    if array.shape != tuple(shape):
        raise LayoutError(
            f"mask {path} is {array.shape[1]}x{array.shape[0]} (WxH) but the video is {shape[1]}x{shape[0]}"
        )


def read_meta(path: Path) -> Mapping[str, Any] | None:
    """YouTube-VOS ``meta.json`` (None when absent)."""
    import json

    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LayoutError(f"cannot read {path}: {exc}") from None
