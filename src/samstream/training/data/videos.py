"""Video datasets: SA-V style (JPEG frames + masklet JSON) and DAVIS / YouTube-VOS (JPEG + palette PNG).

A clip is ``num_frames`` consecutive annotated frames from a random start, with the
objects visible on its first frame (at most ``max_objects``, chosen at random).

SA-V: frames ``<frames_root>/<video>/<frame:05d>.jpg``; annotations
``<annotations_root>/<video>_manual.json`` (or ``<video>.json``), a mapping with
``"masklet"`` (or ``"masks"``): for each annotated frame, a list over objects of COCO
RLEs (``null`` where an object has no mask on that frame). Annotated frame ``i`` is
video frame ``i * ann_every``; ``ann_every`` is given, or ``24 // fps`` when the JSON
has ``"fps"``, or ``video_frame_count / len(masklet)`` rounded when it has that, else 1.

DAVIS / YouTube-VOS: ``<root>/JPEGImages/<video>/<name>.jpg`` and
``<root>/Annotations/<video>/<name>.png`` palette PNGs (pixel value = object id).
Frames without an annotation PNG (YouTube-VOS annotates every 5th frame) are left out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from samstream.training.data.images import _decode_rles
from samstream.training.data.sample import (
    BadSampleError,
    ClipSample,
    keep_first_frame_objects,
    pick_clip_start,
    read_label_png,
    read_rgb,
)

__all__ = ["SAVDataset", "DavisDataset"]


def _frame_files(folder: Path) -> dict[int, Path]:
    frames = {}
    for path in folder.glob("*.jpg"):
        if path.stem.isdigit():
            frames[int(path.stem)] = path
    return frames


class SAVDataset:
    """SA-V style videos (see the module docstring)."""

    def __init__(
        self,
        frames_root: str | Path,
        annotations_root: str | Path | None = None,
        *,
        num_frames: int = 8,
        max_objects: int = 3,
        ann_every: int | None = None,
        frames_fps: int = 24,
        name: str | None = None,
    ) -> None:
        self.frames_root = Path(frames_root)
        self.annotations_root = Path(annotations_root) if annotations_root is not None else self.frames_root
        if not self.frames_root.is_dir():
            raise FileNotFoundError(f"SA-V frames folder not found: {self.frames_root}")
        self.videos = sorted(p.name for p in self.frames_root.iterdir() if p.is_dir())
        self.num_frames, self.max_objects = num_frames, max_objects
        self.ann_every, self.frames_fps = ann_every, frames_fps
        self.name = name or f"sav:{self.frames_root.name}"

    def __len__(self) -> int:
        return len(self.videos)

    def _json_path(self, video: str) -> Path:
        for candidate in (f"{video}_manual.json", f"{video}.json"):
            path = self.annotations_root / candidate
            if path.is_file():
                return path
        raise BadSampleError(self.annotations_root / f"{video}_manual.json", "annotation file missing")

    def _ann_every(self, data: dict, num_annotated: int) -> int:
        if self.ann_every is not None:
            return self.ann_every
        if "fps" in data:
            fps = data["fps"][0] if isinstance(data["fps"], list) else data["fps"]
            return max(1, self.frames_fps // int(fps))
        if "video_frame_count" in data and num_annotated:
            return max(1, round(int(data["video_frame_count"]) / num_annotated))
        return 1

    def load(self, index: int, rng: np.random.Generator) -> ClipSample:
        video = self.videos[index]
        json_path = self._json_path(video)
        try:
            data = json.loads(json_path.read_text())
            masklet = data if isinstance(data, list) else data.get("masklet", data.get("masks"))
            if not isinstance(masklet, list) or not masklet:
                raise ValueError("no masklet list")
        except (OSError, ValueError, AttributeError) as exc:
            raise BadSampleError(json_path, f"not an SA-V annotation file ({exc})") from None
        every = self._ann_every(data if isinstance(data, dict) else {}, len(masklet))
        files = _frame_files(self.frames_root / video)
        annotated = [i for i in range(len(masklet)) if masklet[i] is not None and i * every in files]
        start = pick_clip_start(len(annotated), self.num_frames, rng, str(json_path))
        chosen = annotated[start : start + self.num_frames]
        frames = [read_rgb(files[i * every]) for i in chosen]
        h, w = frames[0].shape[:2]
        for i, frame in zip(chosen, frames):
            if frame.shape[:2] != (h, w):
                raise BadSampleError(files[i * every], f"frame size {frame.shape[:2]} differs from the first ({h}, {w})")
        num_objects = len(masklet[chosen[0]])
        masks = np.zeros((len(chosen), num_objects, h, w), dtype=bool)
        for t, i in enumerate(chosen):
            entries = masklet[i]
            if len(entries) != num_objects:
                raise BadSampleError(json_path, f"annotated frame {i} has {len(entries)} objects, expected {num_objects}")
            present = [k for k, rle in enumerate(entries) if rle is not None]
            if present:
                masks[t, present] = _decode_rles([entries[k] for k in present], json_path, h, w)
        masks, obj_ids = keep_first_frame_objects(masks, list(range(num_objects)), self.max_objects, rng, str(json_path))
        return ClipSample(np.stack(frames), masks, obj_ids, f"{self.name}:{video}@{chosen[0] * every}")


class DavisDataset:
    """DAVIS / YouTube-VOS folders (see the module docstring)."""

    def __init__(
        self, root: str | Path, *, num_frames: int = 8, max_objects: int = 3, name: str | None = None
    ) -> None:
        self.root = Path(root)
        annotations = self.root / "Annotations"
        if not (self.root / "JPEGImages").is_dir() or not annotations.is_dir():
            raise FileNotFoundError(f"{self.root} must hold JPEGImages/ and Annotations/ folders")
        self.videos = sorted(p.name for p in annotations.iterdir() if p.is_dir())
        self.num_frames, self.max_objects = num_frames, max_objects
        self.name = name or f"davis:{self.root.name}"

    def __len__(self) -> int:
        return len(self.videos)

    def load(self, index: int, rng: np.random.Generator) -> ClipSample:
        video = self.videos[index]
        frame_dir = self.root / "JPEGImages" / video
        pngs = sorted((self.root / "Annotations" / video).glob("*.png"))
        pairs = [(frame_dir / f"{png.stem}.jpg", png) for png in pngs if (frame_dir / f"{png.stem}.jpg").is_file()]
        start = pick_clip_start(len(pairs), self.num_frames, rng, str(self.root / "Annotations" / video))
        chosen = pairs[start : start + self.num_frames]
        frames, labels = [], []
        for jpg, png in chosen:
            frame, label = read_rgb(jpg), read_label_png(png)
            if label.shape != frame.shape[:2]:
                raise BadSampleError(png, f"annotation size {label.shape} does not match its frame {frame.shape[:2]}")
            if frames and frame.shape != frames[0].shape:
                raise BadSampleError(jpg, f"frame size {frame.shape[:2]} differs from the first {frames[0].shape[:2]}")
            frames.append(frame)
            labels.append(label)
        label_stack = np.stack(labels)  # [T, H, W]
        ids = [int(v) for v in np.unique(label_stack) if v != 0]
        if not ids:
            raise BadSampleError(chosen[0][1], "no object in the clip's annotations (empty masks)")
        masks = np.stack([label_stack == i for i in ids], axis=1)  # [T, N, H, W]
        masks, obj_ids = keep_first_frame_objects(masks, ids, self.max_objects, rng, str(chosen[0][1]))
        return ClipSample(np.stack(frames), masks, obj_ids, f"{self.name}:{video}@{chosen[0][0].stem}")
