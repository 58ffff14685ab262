"""Memory strategies side by side on synthetic videos made to be hard: J&F and time per frame.

Videos come from samstream's generator (:func:`samstream.training.synthetic.make_video`), one
set per scenario:

  crossing     look-alike distractors (same shape and texture, not annotated) moving across the targets
  occlusion    many large objects occluding each other
  reentry      every object leaves the frame and comes back
  fast         fast motion
  pan          a fast camera pan

Every object visible on frame 0 is prompted with its frame-0 mask (the VOS convention) and
tracked by each strategy. Scores use samstream's evaluator (J = IoU, F = boundary F, first
and last frame left out): J&F overall is the mean over (video, object) pairs; on each hard
category it is the mean over the (object, frame) pairs in the category, which come from the
generator's ground truth:

  after re-entry       frames after an object came back into view after having been absent
  after occlusion      the first 10 frames after an occlusion of at least 3 frames ends
                       (occluded: in the frame but less than 25 % of it visible)
  distractor nearby    frames where a look-alike's box, grown by half the object's size, touches
                       the object's box

Time per frame is the tracking time (image encoding included) over the frames tracked. The
strategies take turns video by video, so that their times are measured under the same load.

    python benchmarks/bench_memory.py --model samstream-synthetic
    python benchmarks/bench_memory.py --config model.yaml --checkpoint model.pt --videos 4 --frames 24
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass

import numpy as np
import torch

from samstream.build import build_model
from samstream.eval.metrics import boundary_f, jaccard
from samstream.io.atomic import atomic_write_json
from samstream.training.synthetic import SyntheticClip, SyntheticVideoConfig, make_video
from samstream.video.memory import check_strategy
from samstream.video.predictor import VideoPredictor

SEED_BASE = 20_000_000  # seeds the training never draws (its datasets use seeds below 10^7)
STRATEGIES = ("default", "motion", "multipath", "distractor", "motion+distractor")
CATEGORIES = ("after re-entry", "after occlusion", "distractor nearby")
OCCLUDED_FRACTION = 0.25
MIN_OCCLUSION = 3
AFTER_OCCLUSION = 10


def scenarios(frames: int, size: int) -> dict[str, SyntheticVideoConfig]:
    base = SyntheticVideoConfig(
        height=size, width=size, num_frames=frames, num_objects=(1, 2), num_distractors=(0, 0),
        prob_leave_and_return=0.0, background_pan=0.01,
    )
    return {
        "crossing": base.replace(num_distractors=(2, 3), max_speed=0.05),
        "occlusion": base.replace(num_objects=(3, 4), object_size=(0.3, 0.45), num_distractors=(0, 1)),
        "reentry": base.replace(prob_leave_and_return=1.0, num_distractors=(0, 1)),
        "fast": base.replace(max_speed=0.12, num_distractors=(0, 1)),
        "pan": base.replace(background_pan=0.06, num_distractors=(1, 1)),
    }


@dataclass(frozen=True)
class Video:
    """A clip and its per-frame hard categories: categories[name] [T, N] bool for the N targets."""

    scenario: str
    clip: SyntheticClip
    categories: dict[str, np.ndarray]


def _boxes(masks: np.ndarray) -> np.ndarray:
    """[..., H, W] bool -> [..., 4] (x0, y0, x1, y1), NaN where empty."""
    rows, cols = masks.any(axis=-1), masks.any(axis=-2)
    out = np.full(masks.shape[:-2] + (4,), np.nan)
    present = rows.any(axis=-1)
    ys, xs = np.arange(masks.shape[-2]), np.arange(masks.shape[-1])
    out[..., 0] = np.where(present, np.where(cols, xs, np.inf).min(axis=-1), np.nan)
    out[..., 1] = np.where(present, np.where(rows, ys, np.inf).min(axis=-1), np.nan)
    out[..., 2] = np.where(present, np.where(cols, xs + 1, -np.inf).max(axis=-1), np.nan)
    out[..., 3] = np.where(present, np.where(rows, ys + 1, -np.inf).max(axis=-1), np.nan)
    return out


def after_occlusion(clip: SyntheticClip) -> np.ndarray:
    """[T, N]: the first frames after an occlusion of at least MIN_OCCLUSION frames, while visible."""
    visible_px = clip.masks.reshape(clip.masks.shape[0], clip.masks.shape[1], -1).sum(axis=2)
    in_frame = clip.full_areas > 0
    occluded = in_frame & (visible_px < OCCLUDED_FRACTION * np.maximum(clip.full_areas, 1))
    out = np.zeros_like(occluded)
    for n in range(occluded.shape[1]):
        run = 0
        for t in range(occluded.shape[0]):
            if occluded[t, n]:
                run += 1
                continue
            if run >= MIN_OCCLUSION:
                out[t : t + AFTER_OCCLUSION, n] = True
            run = 0
    return out & clip.visible


def distractor_nearby(targets: np.ndarray, lookalikes: np.ndarray) -> np.ndarray:
    """[T, N]: a look-alike's box touches the target's box grown by half its size on each side.
    targets [T, N, H, W], lookalikes [T, D, H, W]."""
    t_box, d_box = _boxes(targets), _boxes(lookalikes)  # [T, N, 4], [T, D, 4]
    if d_box.shape[1] == 0:
        return np.zeros(targets.shape[:2], dtype=bool)
    w = (t_box[..., 2] - t_box[..., 0])[..., None] / 2
    h = (t_box[..., 3] - t_box[..., 1])[..., None] / 2
    grown = t_box[:, :, None, :]  # [T, N, 1, 4]
    dx = (np.minimum(grown[..., 2] + w, d_box[:, None, :, 2]) - np.maximum(grown[..., 0] - w, d_box[:, None, :, 0]))
    dy = (np.minimum(grown[..., 3] + h, d_box[:, None, :, 3]) - np.maximum(grown[..., 1] - h, d_box[:, None, :, 1]))
    with np.errstate(invalid="ignore"):
        touch = (dx > 0) & (dy > 0)  # NaN (an empty mask) compares False
    return touch.any(axis=2)


def split_strategies(text: str) -> list[str]:
    """``"default,multipath:pathways=2,memory_iou=0.4,motion"`` -> the three strategies (a piece
    with ``=`` and no ``:`` is one more option of the strategy before it)."""
    out: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        if out and "=" in piece and ":" not in piece:
            out[-1] += "," + piece
        else:
            out.append(piece)
    return out


def make_videos(per_scenario: int, frames: int, size: int, only: list[str] | None) -> list[Video]:
    videos = []
    for s, (name, config) in enumerate(scenarios(frames, size).items()):
        if only and name not in only:
            continue
        for i in range(per_scenario):
            seed = SEED_BASE + 1000 * s + i
            clip = make_video(seed, config)
            with_lookalikes = make_video(seed, config.replace(distractors_annotated=True))  # same clip, look-alikes annotated
            n = len(clip.obj_ids)
            categories = {
                "after re-entry": clip.reentry_frames(),
                "after occlusion": after_occlusion(clip),
                "distractor nearby": distractor_nearby(clip.masks, with_lookalikes.masks[:, n:]),
            }
            videos.append(Video(name, clip, categories))
    return videos


def track(model, memory: str, clip: SyntheticClip) -> tuple[np.ndarray, list[int], float, int]:
    """Predicted masks [T, K, H, W] of the K objects visible on frame 0, their indices, seconds, frames."""
    predictor = VideoPredictor(model, memory=memory)
    ids = [n for n in range(clip.masks.shape[1]) if clip.masks[0, n].any()]
    start = time.perf_counter()
    session = predictor.open_session(clip.frames)
    for n in ids:
        predictor.add_mask(session, 0, n + 1, clip.masks[0, n])
    pred = np.zeros((clip.masks.shape[0], len(ids)) + clip.masks.shape[2:], dtype=bool)
    for result in predictor.propagate(session, progress=False):
        pred[result.frame_idx] = result.binary_masks().cpu().numpy()
    return pred, ids, time.perf_counter() - start, clip.masks.shape[0]


class _Tally:
    """One strategy's scores and time as videos are added."""

    def __init__(self) -> None:
        self.pairs: list[tuple[float, float]] = []
        self.pooled: dict[str, list[tuple[float, float]]] = {c: [] for c in CATEGORIES}
        self.per_scenario: dict[str, list[tuple[float, float]]] = {}
        self.seconds, self.frames = 0.0, 0

    def add(self, video: Video, pred: np.ndarray, ids: list[int], seconds: float, count: int) -> None:
        self.seconds, self.frames = self.seconds + seconds, self.frames + count
        if not ids:
            return
        inner = slice(1, pred.shape[0] - 1)
        gt = video.clip.masks[inner][:, ids].transpose(1, 0, 2, 3)  # [K, T-2, H, W]
        pr = pred[inner].transpose(1, 0, 2, 3)
        j, f = jaccard(gt, pr), boundary_f(gt, pr)  # [K, T-2]
        for k in range(len(ids)):
            self.pairs.append((float(j[k].mean()), float(f[k].mean())))
            self.per_scenario.setdefault(video.scenario, []).append(self.pairs[-1])
        for name in CATEGORIES:
            mask = video.categories[name][inner][:, ids].T  # [K, T-2]
            self.pooled[name] += list(zip(j[mask].tolist(), f[mask].tolist()))

    def report(self) -> dict:
        def jf(values):
            return None if not values else round(100 * float(np.mean([(a + b) / 2 for a, b in values])), 2)

        pairs = self.pairs
        return {
            "J&F": jf(pairs),
            "J": None if not pairs else round(100 * float(np.mean([a for a, _ in pairs])), 2),
            "F": None if not pairs else round(100 * float(np.mean([b for _, b in pairs])), 2),
            **{f"J&F {c}": jf(self.pooled[c]) for c in CATEGORIES},
            **{f"frames {c}": len(self.pooled[c]) for c in CATEGORIES},
            "J&F per scenario": {s: jf(v) for s, v in self.per_scenario.items()},
            "seconds per frame": round(self.seconds / max(self.frames, 1), 4),
            "objects": len(pairs),
        }


def evaluate_all(model, strategies: list[str], videos: list[Video]) -> dict[str, dict]:
    """Every strategy on every video, interleaved: each video is tracked by all strategies in
    turn (the order rotating from video to video), so that a slow spell of a shared machine
    falls on all of them alike and the time ratios stay comparable."""
    tallies = {memory: _Tally() for memory in strategies}
    for v, video in enumerate(videos):
        for i in range(len(strategies)):
            memory = strategies[(v + i) % len(strategies)]
            tallies[memory].add(video, *track(model, memory, video.clip))
    return {memory: tallies[memory].report() for memory in strategies}


def evaluate(model, memory: str, videos: list[Video]) -> dict:
    """One strategy's row (see :func:`evaluate_all`)."""
    return evaluate_all(model, [memory], videos)[memory]


def print_table(report: dict) -> None:
    rows = report["strategies"]
    base = rows.get("default", {}).get("seconds per frame")
    head = ["strategy", "J&F", *[f"J&F {c}" for c in CATEGORIES], "s/frame", "x default"]
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for name, r in rows.items():
        cells = [name, r["J&F"], *[r[f"J&F {c}"] for c in CATEGORIES], r["seconds per frame"]]
        cells.append(round(r["seconds per frame"] / base, 2) if base else None)
        print(" | ".join("-" if c is None else str(c) for c in cells))
    counts = ", ".join(f"{c}: {next(iter(rows.values()))[f'frames {c}']}" for c in CATEGORIES)
    print(f"(object-frames per category: {counts})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a model name (e.g. samstream-synthetic, sam2.1_hiera_tiny)")
    parser.add_argument("--config", default=None, help="a model YAML (with --checkpoint)")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated, options allowed (multipath:pathways=2) (default: %(default)s)")
    parser.add_argument("--scenarios", default=None, help="comma-separated subset of: " + ", ".join(scenarios(8, 64)))
    parser.add_argument("--videos", type=int, default=8, help="videos per scenario (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=48, help="frames per video (default: %(default)s)")
    parser.add_argument("--size", type=int, default=256, help="frame side in pixels (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--apply-postprocessing", action="store_true", help="as in interactive use (the VOS evaluation runs without)"
    )
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name = args.model or args.config
    if name is None:
        parser.error("give --model, or --config with --checkpoint")
    if args.config is not None and args.checkpoint is None:
        parser.error("--config needs --checkpoint")
    strategies = split_strategies(args.strategies)
    for memory in strategies:
        try:
            check_strategy(memory)
        except ValueError as exc:
            parser.error(f"--strategies: {exc}")
    model = build_model(
        name, args.checkpoint, device=args.device, for_video=True, download=args.model is not None,
        apply_postprocessing=args.apply_postprocessing,
    )
    only = [s for s in args.scenarios.split(",") if s] if args.scenarios else None
    t0 = time.perf_counter()
    videos = make_videos(args.videos, args.frames, args.size, only)
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {args.device}",
        "model": name,
        "videos": len(videos),
        "frames per video": args.frames,
        "strategies": {},
    }
    with torch.inference_mode():
        if videos:
            track(model, "default", videos[0].clip)  # warm-up, not timed
        report["strategies"] = evaluate_all(model, strategies, videos)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print_table(report)
    print(json.dumps(report, indent=2))
    if args.json:
        atomic_write_json(args.json, report, indent=2)


if __name__ == "__main__":
    main()
