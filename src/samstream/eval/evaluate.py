"""Scoring a folder of predicted masks against the ground truth, video by video.

Which frames count (``convention``):

* ``davis``: every ground-truth frame but the first and the last, for every object found
  in the ground truth;
* ``ytvos``: like ``davis``, but each object from the frame after its first appearance in
  the ground truth (the frame it was given on);
* ``sav``: only annotated frames (those with ground-truth files), the first and the last
  left out; each object from its first appearance in the ground truth or the prediction
  on those frames (an object that appears in neither scores every frame, each 1).

The overall J, F and J&F average over every (video, object) pair; an object left with no
frame to score (a video with fewer than 3 annotated frames, say) is listed, not averaged.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .layouts import (
    VOID_ID,
    LayoutError,
    MaskFolder,
    get_layout,
    load_video_masks,
    open_mask_folder,
    read_binary_png,
    read_id_png,
    read_meta,
)
from .metrics import BOUNDARY_THRESHOLD, SequenceStats, boundary_f, boundary_radius, jaccard, sequence_stats

__all__ = ["ObjectScore", "VideoScore", "EvalReport", "evaluate_video", "evaluate_dataset", "resolve_gt_root"]


@dataclass(frozen=True)
class ObjectScore:
    """J and F statistics of one object of one video over its scored frames."""

    video: str
    obj_id: int
    frames: int
    j: SequenceStats
    f: SequenceStats
    seen: bool | None = None  # YouTube-VOS: whether its class is seen in training (None: unknown)

    @property
    def jf(self) -> float:
        return (self.j.mean + self.f.mean) / 2


@dataclass(frozen=True)
class VideoScore:
    """Scores of one video; ``error`` is set (and ``objects`` empty) when it could not be scored."""

    video: str
    objects: tuple[ObjectScore, ...] = ()
    missing_frames: tuple[str, ...] = ()  # ground-truth frames without any prediction (scored empty)
    unexpected_ids: tuple[int, ...] = ()  # predicted ids absent from the ground truth (ignored)
    error: str | None = None
    unscored_objects: tuple[int, ...] = ()  # ground-truth objects left with no frame to score

    def mean(self, what: str) -> float:
        values = [getattr(o, what).mean if what in ("j", "f") else o.jf for o in self.objects]
        return float(np.mean(values)) if values else math.nan


@dataclass(frozen=True)
class EvalReport:
    """Every video's scores and the dataset averages over (video, object) pairs."""

    convention: str
    videos: tuple[VideoScore, ...]
    extra_predictions: tuple[str, ...] = ()  # predicted videos that have no ground truth

    @property
    def objects(self) -> list[ObjectScore]:
        return [o for v in self.videos for o in v.objects]

    @property
    def failed(self) -> list[VideoScore]:
        return [v for v in self.videos if v.error is not None]

    def _mean(self, values: Iterable[float]) -> float:
        values = list(values)
        return float(np.mean(values)) if values else math.nan

    @property
    def j(self) -> float:
        return self._mean(o.j.mean for o in self.objects)

    @property
    def f(self) -> float:
        return self._mean(o.f.mean for o in self.objects)

    @property
    def jf(self) -> float:
        return (self.j + self.f) / 2

    def seen_unseen(self) -> dict[str, float] | None:
        """YouTube-VOS: J and F over seen and unseen classes and G (their mean), when known."""
        groups = {True: [o for o in self.objects if o.seen is True], False: [o for o in self.objects if o.seen is False]}
        if not groups[True] and not groups[False]:
            return None
        out = {}
        for seen, name in ((True, "seen"), (False, "unseen")):
            out[f"J_{name}"] = self._mean(o.j.mean for o in groups[seen])
            out[f"F_{name}"] = self._mean(o.f.mean for o in groups[seen])
        parts = [v for v in out.values() if not math.isnan(v)]
        out["G"] = float(np.mean(parts)) if parts else math.nan
        return out

    @property
    def missing_frames(self) -> int:
        return sum(len(v.missing_frames) for v in self.videos)


# --------------------------------------------------------------------------- one video


def _first_shape(folder: MaskFolder) -> tuple[int, int]:
    if folder.per_object:
        for per in folder.files.values():
            for path in per.values():
                return read_binary_png(path).shape
    for path in folder.files.values():
        return read_id_png(path).shape
    raise LayoutError(f"no ground-truth masks in {folder.path}")


def _first_true(flags: np.ndarray) -> int | None:
    hits = np.flatnonzero(flags)
    return int(hits[0]) if hits.size else None


def _scores(gt: np.ndarray, pred: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """J and F [T, K] of masks [T, K, H, W], each object on the crop around everything it ever
    covers (padded by 2 px, so boundaries and matches are exactly those of the full frame)."""
    t, k = gt.shape[:2]
    j = np.ones((t, k))
    f = np.ones((t, k))
    for i in range(k):
        cover = (gt[:, i] | pred[:, i]).any(axis=0)  # [H, W]
        rows, cols = np.flatnonzero(cover.any(axis=1)), np.flatnonzero(cover.any(axis=0))
        if rows.size == 0:
            continue  # empty in both on every frame: 1 everywhere
        y0, y1 = max(rows[0] - 2, 0), rows[-1] + 3
        x0, x1 = max(cols[0] - 2, 0), cols[-1] + 3
        g, p = gt[:, i, y0:y1, x0:x1], pred[:, i, y0:y1, x0:x1]
        j[:, i] = jaccard(g, p)
        f[:, i] = boundary_f(g, p, radius=radius)
    return j, f


def evaluate_video(
    name: str,
    gt_dir: Path,
    pred_dir: Path,
    convention: str = "davis",
    *,
    bound_th: float = BOUNDARY_THRESHOLD,
    seen: Mapping[int, bool] | None = None,
) -> VideoScore:
    """Score one video's predictions ``pred_dir`` against ``gt_dir`` (formats detected)."""
    layout = get_layout(convention)
    gt = open_mask_folder(gt_dir, per_object=layout.per_object)
    stems = gt.frames()
    if not stems:
        raise LayoutError(f"video {name}: no ground-truth masks in {gt_dir}")
    if convention in ("davis", "sav"):
        scored = stems[1:-1]
    else:  # ytvos: from each object's first appearance; the first frame holds no later frame
        scored = stems
    if gt.per_object:
        obj_ids = sorted(gt.files)
        shape = _first_shape(gt)
        gt_masks = load_video_masks(gt, scored, obj_ids, shape).masks  # [T, K, H, W]
    else:  # read every ground-truth frame once: the ids present, then the masks
        frames = [read_id_png(gt.files[s]) for s in stems]
        seen_ids = np.zeros(256, dtype=bool)
        for stem, ids in zip(stems, frames):
            if ids.shape != frames[0].shape:
                raise LayoutError(f"ground truth {gt.files[stem]} is {ids.shape[::-1]} (WxH), {stems[0]} is {frames[0].shape[::-1]}")
            seen_ids |= np.bincount(ids.ravel(), minlength=256) > 0
        labels = np.stack(frames)  # [T_all, H, W]
        present = np.flatnonzero(seen_ids)
        obj_ids = [int(i) for i in present if 0 < i < VOID_ID]
        shape = labels.shape[1:]
        position = {stem: i for i, stem in enumerate(stems)}
        chosen = labels[[position[s] for s in scored]]
        gt_masks = chosen[:, None] == np.array(obj_ids, dtype=np.uint8)[None, :, None, None]
    pred = open_mask_folder(pred_dir) if pred_dir.is_dir() else MaskFolder(path=pred_dir, per_object=False)
    loaded = load_video_masks(pred, scored, obj_ids, shape)
    pred_masks = loaded.masks
    j_all, f_all = _scores(gt_masks, pred_masks, boundary_radius(*shape, bound_th))  # [T, K] each
    objects = []
    unscored: list[int] = []
    for k, obj in enumerate(obj_ids):
        if convention == "davis":
            start, stop = 0, len(scored)
        elif convention == "sav":
            present = gt_masks[:, k].any(axis=(1, 2)) | pred_masks[:, k].any(axis=(1, 2))
            first = _first_true(present)
            start, stop = (0 if first is None else first), len(scored)
        else:
            first = _first_true(gt_masks[:, k].any(axis=(1, 2)))
            if first is None:  # never visible on the ground truth's frames: nothing to score
                unscored.append(obj)
                continue
            start, stop = first + 1, len(scored) - 1
        if stop <= start:
            unscored.append(obj)
            continue
        j_stats = sequence_stats(j_all[start:stop, k])
        f_stats = sequence_stats(f_all[start:stop, k])
        objects.append(
            ObjectScore(
                video=name,
                obj_id=obj,
                frames=stop - start,
                j=j_stats,
                f=f_stats,
                seen=None if seen is None else seen.get(obj),
            )
        )
    return VideoScore(
        video=name,
        objects=tuple(objects),
        missing_frames=loaded.missing,
        unexpected_ids=loaded.unexpected_ids,
        unscored_objects=tuple(unscored),
    )


# --------------------------------------------------------------------------- a dataset


def resolve_gt_root(gt: Path, convention: str) -> Path:
    """The folder holding one sub-folder per video: ``gt`` itself, or its layout annotation folder."""
    layout = get_layout(convention)
    for name in layout.annotation_dirs:
        if (gt / name).is_dir():
            return gt / name
    if not gt.is_dir():
        raise LayoutError(f"--gt {gt}: not a folder")
    return gt


def _seen_map(meta: Mapping[str, Any] | None, video: str) -> dict[int, bool] | None:
    """YouTube-VOS meta.json: per object, whether its class is seen (``"seen"`` on the object,
    or top-level ``"unseen_categories"`` / ``"seen_categories"`` lists with the object's ``"category"``)."""
    if not meta:
        return None
    objects = meta.get("videos", {}).get(video, {}).get("objects", {})
    unseen_cats = set(meta.get("unseen_categories", ()))
    seen_cats = set(meta.get("seen_categories", ()))
    out: dict[int, bool] = {}
    for key, info in objects.items():
        if "seen" in info:
            out[int(key)] = bool(info["seen"])
        elif info.get("category") in unseen_cats:
            out[int(key)] = False
        elif info.get("category") in seen_cats or (unseen_cats and "category" in info):
            out[int(key)] = True
    return out or None


def _score_one(job: tuple) -> VideoScore:
    name, gt_dir, pred_dir, convention, bound_th, seen = job
    try:
        return evaluate_video(name, gt_dir, pred_dir, convention, bound_th=bound_th, seen=seen)
    except (LayoutError, ValueError, OSError) as exc:
        return VideoScore(video=name, error=str(exc))


def evaluate_dataset(
    gt: Path | str,
    pred: Path | str,
    convention: str = "davis",
    *,
    videos: Sequence[str] | None = None,
    bound_th: float = BOUNDARY_THRESHOLD,
    meta: Path | str | None = None,
    workers: int = 1,
) -> EvalReport:
    """Score every ground-truth video (or ``videos``) of ``gt`` against ``pred``.

    A video that cannot be scored (masks of another size, unreadable files) is reported in
    :attr:`EvalReport.failed` with its error; the others are still scored. A predicted video
    folder that is missing entirely scores every frame as empty (listed as missing frames).
    ``meta``: YouTube-VOS ``meta.json`` (default: ``gt``'s own, when there is one).
    """
    get_layout(convention)
    gt_path, pred_path = Path(gt), Path(pred)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if not pred_path.is_dir():
        raise LayoutError(f"--pred {pred_path}: not a folder")
    root = resolve_gt_root(gt_path, convention)
    names = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if videos is not None:
        unknown = sorted(set(videos) - set(names))
        if unknown:
            raise LayoutError(f"videos without ground truth in {root}: {', '.join(unknown)}")
        names = [n for n in names if n in set(videos)]
    if not names:
        raise LayoutError(f"empty dataset: no video folders in {root}")
    meta_path = Path(meta) if meta is not None else gt_path / "meta.json"
    meta_data = read_meta(meta_path) if convention == "ytvos" or meta is not None else None
    jobs = [(n, root / n, pred_path / n, convention, bound_th, _seen_map(meta_data, n)) for n in names]
    if workers == 1 or len(jobs) == 1:
        scores = [_score_one(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            scores = list(pool.map(_score_one, jobs))
    extra = sorted(
        e.name for e in os.scandir(pred_path) if e.is_dir() and not e.name.startswith(".") and e.name not in set(names)
    )
    return EvalReport(convention=convention, videos=tuple(scores), extra_predictions=tuple(extra) if videos is None else ())
