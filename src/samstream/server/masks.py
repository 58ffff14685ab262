"""The masks a session has produced so far, kept as COCO RLE, and the frames worth a look.

A :class:`MaskStore` holds, per frame, each object's newest mask (RLE), its area and its
presence score; prompts and propagation write into it, the page and the exports read it.
:func:`problem_frames` is a pure function over the stored areas and scores.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Sequence

import numpy as np

from ..io.rle import encode_coco_rle

ProblemKind = Literal["vanished", "score_drop", "area_jump"]


class ObjectMask(NamedTuple):
    """One object's mask on one frame: COCO RLE ``{"size": [H, W], "counts": str}``, its
    foreground pixel count and its presence logit (> 0: the model sees the object)."""

    rle: dict[str, Any]
    area: int
    score: float


def encode_frame(obj_ids: Sequence[int], masks: np.ndarray, scores: Sequence[float | None]) -> dict[int, ObjectMask]:
    """Bool masks [N, H, W] of ``obj_ids`` -> {obj_id: ObjectMask}; objects whose score is None
    (no output on this frame) are left out."""
    keep = [i for i, s in enumerate(scores) if s is not None]
    if not keep:
        return {}
    chosen = masks[keep]
    rles = encode_coco_rle(chosen)
    areas = chosen.reshape(len(keep), -1).sum(axis=1)
    return {int(obj_ids[i]): ObjectMask(rle, int(a), float(scores[i])) for i, rle, a in zip(keep, rles, areas)}  # type: ignore[arg-type]


class MaskStore:
    """Per-frame object masks of one session (thread-safe)."""

    def __init__(self) -> None:
        self._frames: dict[int, dict[int, ObjectMask]] = {}
        self._lock = threading.Lock()

    def put(self, frame_idx: int, masks: dict[int, ObjectMask], *, replace: bool = True) -> None:
        """Record a frame's masks; ``replace`` drops objects of that frame not in ``masks``."""
        with self._lock:
            if replace:
                self._frames[frame_idx] = dict(masks)
            else:
                self._frames.setdefault(frame_idx, {}).update(masks)
            if not self._frames[frame_idx]:
                del self._frames[frame_idx]

    def frame(self, frame_idx: int) -> dict[int, ObjectMask]:
        with self._lock:
            return dict(self._frames.get(frame_idx, {}))

    def snapshot(self) -> dict[int, dict[int, ObjectMask]]:
        """A copy of everything: {frame: {obj_id: ObjectMask}}."""
        with self._lock:
            return {t: dict(objs) for t, objs in self._frames.items()}

    def drop_object(self, obj_id: int) -> None:
        with self._lock:
            for t in list(self._frames):
                self._frames[t].pop(obj_id, None)
                if not self._frames[t]:
                    del self._frames[t]

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    def timeline(self, obj_ids: Sequence[int], num_frames: int) -> dict[int, tuple[list[int | None], list[float | None]]]:
        """Per object, areas and scores of every frame (None where the object has no mask yet)."""
        with self._lock:
            out: dict[int, tuple[list[int | None], list[float | None]]] = {
                o: ([None] * num_frames, [None] * num_frames) for o in obj_ids
            }
            for t, objs in self._frames.items():
                if not 0 <= t < num_frames:
                    continue
                for o, m in objs.items():
                    if o in out:
                        out[o][0][t] = m.area
                        out[o][1][t] = m.score
            return out


@dataclass(frozen=True)
class Problem:
    """A frame where an object may need a correction."""

    frame_index: int
    obj_id: int
    kind: ProblemKind
    detail: str


def _probability(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit))))


def problem_frames(
    timeline: dict[int, tuple[list[int | None], list[float | None]]],
    *,
    score_drop: float = 0.25,
    area_ratio: float = 2.0,
) -> list[Problem]:
    """Frames where an object vanishes (no pixels, or presence below one half, right after
    a frame where it was there), where its presence probability falls by more than
    ``score_drop`` from one known frame to the next, or where its area grows or shrinks by
    more than ``area_ratio`` times. Sorted by frame, then object."""
    found: list[Problem] = []
    for obj_id, (areas, scores) in timeline.items():
        prev: tuple[int, float] | None = None  # (area, probability) of the previous known frame
        for t, (area, score) in enumerate(zip(areas, scores)):
            if area is None or score is None:
                prev = None  # unknown frames break the chain: only consecutive frames compare
                continue
            p = _probability(score)
            present = area > 0 and p >= 0.5
            if prev is not None:
                prev_area, prev_p = prev
                was_present = prev_area > 0 and prev_p >= 0.5
                if was_present and not present:
                    found.append(Problem(t, obj_id, "vanished", f"present on frame {t - 1}, gone on frame {t}"))
                elif present and prev_p - p > score_drop:
                    found.append(Problem(t, obj_id, "score_drop", f"presence {prev_p:.2f} -> {p:.2f}"))
                elif present and was_present and max(area / prev_area, prev_area / area) > area_ratio:
                    found.append(Problem(t, obj_id, "area_jump", f"area {prev_area} -> {area} pixels"))
            prev = (area, p)
    found.sort(key=lambda p: (p.frame_index, p.obj_id))
    return found
