"""Image datasets (1-frame clips): SA-1B style and plain folders of images with instance masks.

SA-1B: ``<root>/sa_<id>.jpg`` with ``<root>/sa_<id>.json`` holding ``{"image": {...},
"annotations": [{"segmentation": {"size": [h, w], "counts": ...}, "area": ...}, ...]}``
(COCO RLE, decoded with pycocotools). Annotations with zero area are dropped, as the
reference does.

Instance folders: ``<root>/images/<name>.<jpg|png>`` and either ``<root>/masks/<name>.png``
(an id map, palette or greyscale: 0 background, each other value one instance) or
``<root>/masks/<name>/<k>.png`` (one binary PNG per instance, id k).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from samstream.training.data.sample import (
    BadSampleError,
    ClipSample,
    keep_first_frame_objects,
    read_label_png,
    read_rgb,
)

__all__ = ["SA1BDataset", "InstanceFolderDataset", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _decode_rles(rles: list, where: Path, height: int, width: int) -> np.ndarray:
    from pycocotools import mask as mask_utils

    for rle in rles:
        size = rle.get("size") if isinstance(rle, dict) else None
        if size is None or list(size) != [height, width]:
            raise BadSampleError(where, f"annotation size {size} does not match its image ({height}, {width})")
    try:
        encoded = [
            {"size": rle["size"], "counts": rle["counts"].encode() if isinstance(rle["counts"], str) else rle["counts"]}
            for rle in rles
        ]
        decoded = mask_utils.decode(encoded)  # [H, W, N] uint8
    except (KeyError, TypeError, ValueError) as exc:
        raise BadSampleError(where, f"cannot decode RLE ({exc})") from None
    return np.moveaxis(decoded, -1, 0).astype(bool)  # [N, H, W]


class SA1BDataset:
    """SA-1B style images; each item is one image with up to ``max_objects`` of its masks."""

    def __init__(self, root: str | Path, *, max_objects: int = 3, name: str | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"SA-1B folder not found: {self.root}")
        self.images = sorted(p for p in self.root.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
        self.max_objects = max_objects
        self.name = name or f"sa1b:{self.root.name}"

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int, rng: np.random.Generator) -> ClipSample:
        image_path = self.images[index]
        json_path = image_path.with_suffix(".json")
        if not json_path.is_file():
            raise BadSampleError(json_path, "annotation file missing")
        try:
            annotations = json.loads(json_path.read_text())["annotations"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BadSampleError(json_path, f"not an SA-1B annotation file ({exc})") from None
        image = read_rgb(image_path)
        h, w = image.shape[:2]
        rles = [a["segmentation"] for a in annotations if isinstance(a, dict) and a.get("area", 1) > 0]
        if not rles:
            raise BadSampleError(json_path, "no annotation with a non-empty mask")
        masks = _decode_rles(rles, json_path, h, w)[None]  # [1, N, H, W]
        masks, obj_ids = keep_first_frame_objects(masks, list(range(1, masks.shape[1] + 1)), self.max_objects, rng, str(json_path))
        return ClipSample(image[None], masks, obj_ids, f"{self.name}:{image_path.stem}")


class InstanceFolderDataset:
    """Images with instance masks (see the module docstring for the layout)."""

    def __init__(self, root: str | Path, *, max_objects: int = 3, name: str | None = None) -> None:
        self.root = Path(root)
        images = self.root / "images"
        if not images.is_dir() or not (self.root / "masks").is_dir():
            raise FileNotFoundError(f"{self.root} must hold images/ and masks/ folders")
        self.images = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        self.max_objects = max_objects
        self.name = name or f"folder:{self.root.name}"

    def __len__(self) -> int:
        return len(self.images)

    def _masks(self, stem: str, h: int, w: int) -> tuple[np.ndarray, list[int]]:
        id_map_path = self.root / "masks" / f"{stem}.png"
        per_instance = self.root / "masks" / stem
        if id_map_path.is_file():
            labels = read_label_png(id_map_path)
            if labels.shape != (h, w):
                raise BadSampleError(id_map_path, f"mask size {labels.shape} does not match its image ({h}, {w})")
            ids = [int(v) for v in np.unique(labels) if v != 0]
            return np.stack([labels == i for i in ids]) if ids else np.zeros((0, h, w), bool), ids
        if per_instance.is_dir():
            files = sorted(per_instance.glob("*.png"))
            masks, ids = [], []
            for k, path in enumerate(files, start=1):
                mask = read_label_png(path) > 0
                if mask.shape != (h, w):
                    raise BadSampleError(path, f"mask size {mask.shape} does not match its image ({h}, {w})")
                masks.append(mask)
                ids.append(int(path.stem) if path.stem.isdigit() else k)
            return (np.stack(masks) if masks else np.zeros((0, h, w), bool)), ids
        raise BadSampleError(id_map_path, "no mask for this image")

    def load(self, index: int, rng: np.random.Generator) -> ClipSample:
        image_path = self.images[index]
        image = read_rgb(image_path)
        masks, ids = self._masks(image_path.stem, *image.shape[:2])
        if masks.shape[0] == 0:
            raise BadSampleError(image_path, "no instance in its mask (empty masks)")
        masks, obj_ids = keep_first_frame_objects(masks[None], ids, self.max_objects, rng, str(image_path))
        return ClipSample(image[None], masks, obj_ids, f"{self.name}:{image_path.stem}")
