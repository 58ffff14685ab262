"""Write synthetic clips to disk in the DAVIS layout, for held-out evaluation.

Layout under ``root``::

    JPEGImages/<video>/00000.jpg ...    frames (JPEG, quality 95)
    Annotations/<video>/00000.png ...   palette PNGs, pixel value = object id (0 = background)
    ImageSets/val.txt                   one video name per line
    meta.json                           generator config, and per video: seed, object ids,
                                        visible [T][N] and after_reentry [T][N] flags

Every file is written atomically (:mod:`samstream.io.atomic`), so an interrupted
export leaves only complete files; ``meta.json`` is written last.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from samstream.io.atomic import atomic_save_png, atomic_write_bytes, atomic_write_json
from samstream.io.writers import DAVIS_PALETTE
from samstream.training.synthetic import SyntheticClip, SyntheticVideoConfig, make_video

__all__ = ["DavisExport", "clip_to_labels", "write_davis_clip", "write_davis_dataset"]


@dataclass(frozen=True)
class DavisExport:
    """What :func:`write_davis_dataset` wrote: the root and the video names, in order."""

    root: Path
    videos: tuple[str, ...]


def clip_to_labels(clip: SyntheticClip) -> np.ndarray:
    """[T, H, W] uint8 id maps of a clip (its masks are disjoint; 0 = background)."""
    if len(clip.obj_ids) and max(clip.obj_ids) > 255:
        raise ValueError(f"palette PNGs hold ids up to 255, clip {clip.seed} has {max(clip.obj_ids)}")
    labels = np.zeros(clip.masks.shape[:1] + clip.masks.shape[2:], dtype=np.uint8)
    for index, obj_id in enumerate(clip.obj_ids):
        labels[clip.masks[:, index]] = obj_id
    return labels


def _jpeg_bytes(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def write_davis_clip(root: str | Path, name: str, clip: SyntheticClip) -> None:
    """Write one clip's frames and annotations under ``root`` as video ``name``."""
    root = Path(root)
    labels = clip_to_labels(clip)
    for t, frame in enumerate(clip.frames):
        atomic_write_bytes(root / "JPEGImages" / name / f"{t:05d}.jpg", _jpeg_bytes(frame))
        atomic_save_png(root / "Annotations" / name / f"{t:05d}.png", labels[t], palette=DAVIS_PALETTE)


def write_davis_dataset(
    root: str | Path,
    seeds: Iterable[int],
    config: SyntheticVideoConfig = SyntheticVideoConfig(),
    *,
    name_format: str = "synth_{seed:05d}",
) -> DavisExport:
    """Generate the clip of every seed and write them all (see the module docstring).

    Held-out sets should use seeds that training does not draw (the bundled model's
    training configs draw below 5 * 10**6; evaluation could start at 10**9).
    """
    root = Path(root)
    names: list[str] = []
    meta_videos: dict[str, dict] = {}
    for seed in seeds:
        name = name_format.format(seed=seed)
        if name in meta_videos:
            raise ValueError(f"name_format gives the same video name {name!r} twice")
        clip = make_video(seed, config)
        write_davis_clip(root, name, clip)
        names.append(name)
        meta_videos[name] = {
            "seed": int(seed),
            "obj_ids": list(clip.obj_ids),
            "visible": clip.visible.astype(int).tolist(),
            "after_reentry": clip.reentry_frames().astype(int).tolist(),
        }
    atomic_write_bytes(root / "ImageSets" / "val.txt", ("\n".join(names) + "\n").encode())
    config_dict = dataclasses.asdict(config)
    atomic_write_json(root / "meta.json", {"generator": config_dict, "videos": meta_videos}, indent=1)
    return DavisExport(root, tuple(names))
