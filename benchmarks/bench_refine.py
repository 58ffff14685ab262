"""Zoom-in refinement (``--refine``) on synthetic thin structures and large objects.

Seeded synthetic images (``--size`` x ``--size``, default 1024, textured background) with one
object each, in four kinds: thin rings, thin curves, branching lines (2-4 pixels wide, each
spanning about a quarter to a half of the image side, so a crop around it zooms in) and large
objects (discs and rectangles covering a good part of the image). Each object is
prompted with its tight box and one click on it; the mask is predicted on the whole image
(:class:`ImagePredictor`), then refined (:class:`samstream.image.refine.MaskRefiner`). Per
kind: J (IoU) and boundary F against the drawn mask without and with refinement, and the
time of the plain prediction (``set_image`` + ``predict``) next to the time with refinement.
The goal of the issue: boundary F +0.05 on thin structures at no more than 2x the time.

Model: the tests' tiny model by default (random weights: the numbers only show that the
script runs); ``--config`` / ``--checkpoint`` for a real one, e.g. the bundled
``samstream-synthetic`` model.

Example::

    python benchmarks/bench_refine.py --config model.yaml --checkpoint model.pt --per-kind 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
KINDS = ("ring", "curve", "branches", "large")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    base = 110 + 40 * np.sin(xx / rng.uniform(40, 120) + rng.uniform(0, 6)) * np.cos(yy / rng.uniform(40, 120))
    noise = rng.normal(0, 12, (size, size, 3))
    tint = rng.uniform(0.7, 1.3, 3)
    return np.clip(base[:, :, None] * tint + noise, 0, 255).astype(np.uint8)


def _draw(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """uint8 [size, size] mask (0/1) of one object of ``kind``."""
    mask = np.zeros((size, size), dtype=np.uint8)
    width = int(rng.integers(2, 5))
    if kind == "ring":
        centre = tuple(int(v) for v in rng.uniform(0.3, 0.7, 2) * size)
        cv2.circle(mask, centre, int(rng.uniform(0.06, 0.18) * size), 1, thickness=width, lineType=cv2.LINE_8)
    elif kind == "curve":
        extent = rng.uniform(0.25, 0.45) * size
        x0, y0 = rng.uniform(0.05, 0.95 - extent / size, 2) * size
        xs = x0 + np.linspace(0.0, 1.0, 200) * extent
        ys = y0 + extent / 2 + rng.uniform(0.15, 0.35) * extent * np.sin(np.linspace(0, rng.uniform(4, 10), 200) + rng.uniform(0, 6))
        cv2.polylines(mask, [np.stack([xs, ys], 1).astype(np.int32)], False, 1, thickness=width)
    elif kind == "branches":
        trunk = rng.uniform(0.12, 0.18) * size
        base = (int(rng.uniform(0.35, 0.65) * size), int(rng.uniform(0.7, 0.85) * size))
        stack = [(base, -np.pi / 2, trunk, 0)]
        while stack:
            (x, y), angle, length, depth = stack.pop()
            end = (int(x + length * np.cos(angle)), int(y + length * np.sin(angle)))
            cv2.line(mask, (x, y), end, 1, thickness=width)
            if depth < 3:
                for turn in (-0.5, 0.5):
                    stack.append((end, angle + turn + rng.uniform(-0.2, 0.2), length * 0.65, depth + 1))
    else:
        if rng.random() < 0.5:
            centre = tuple(int(v) for v in rng.uniform(0.4, 0.6, 2) * size)
            cv2.circle(mask, centre, int(rng.uniform(0.2, 0.3) * size), 1, thickness=-1)
        else:
            x0, y0 = (rng.uniform(0.1, 0.3, 2) * size).astype(int)
            x1, y1 = (rng.uniform(0.6, 0.9, 2) * size).astype(int)
            cv2.rectangle(mask, (int(x0), int(y0)), (int(x1), int(y1)), 1, thickness=-1)
    return mask


def make_case(kind: str, seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 image, bool mask) of one seeded case."""
    rng = np.random.default_rng([KINDS.index(kind), seed])
    image = _background(rng, size)
    mask = _draw(kind, rng, size).astype(bool)
    colour = rng.integers(0, 256, 3)
    image[mask] = colour
    return image, mask


def _prompt(mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.nonzero(mask)
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)
    k = int(rng.integers(len(xs)))
    return box, np.array([[xs[k] + 0.5, ys[k] + 0.5]])


def load_model(args):
    from samstream.build import build_model

    if args.config is not None:
        return build_model(args.config, args.checkpoint)
    sys.path.insert(0, str(REPO / "tests"))
    from tiny import write_tiny_model

    files = write_tiny_model(Path(args.cache) / "tiny_model")
    return build_model(files.config, files.checkpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--per-kind", type=int, default=10, help="cases per kind (default: %(default)s)")
    parser.add_argument("--config", type=Path, help="model YAML (with --checkpoint); default: the tests' tiny model")
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/samstream-bench-refine"))
    parser.add_argument("--max-fraction", type=float, default=0.8, help="RefineConfig.max_fraction (default: %(default)s)")
    parser.add_argument("--min-iou", type=float, default=None, help="RefineConfig.min_iou (default: the config's)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from samstream.eval.metrics import boundary_f, jaccard
    from samstream.image.predictor import ImagePredictor
    from samstream.image.refine import MaskRefiner, RefineConfig

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = load_model(args)
    predictor, refiner = ImagePredictor(model), MaskRefiner(model, RefineConfig(
        max_fraction=args.max_fraction, **({} if args.min_iou is None else {"min_iou": args.min_iou})))
    rows = {}
    for kind in KINDS:
        stats = {"J": [], "J_refined": [], "F": [], "F_refined": [], "seconds": [], "seconds_refined": [], "accepted": []}
        for seed in range(args.per_kind):
            image, truth = make_case(kind, seed, args.size)
            box, point = _prompt(truth, np.random.default_rng(seed))
            start = time.perf_counter()
            predictor.set_image(image)
            coarse = predictor.predict(points=point, labels=[1], box=box, multimask_output=False).masks[0]
            plain = time.perf_counter() - start
            refined = refiner.refine(image, coarse, points=point, labels=np.array([1]), box=box)
            total = time.perf_counter() - start
            stats["J"].append(float(jaccard(truth, coarse)))
            stats["J_refined"].append(float(jaccard(truth, refined.mask)))
            stats["F"].append(float(boundary_f(truth, coarse)))
            stats["F_refined"].append(float(boundary_f(truth, refined.mask)))
            stats["seconds"].append(plain)
            stats["seconds_refined"].append(total)
            stats["accepted"].append(refined.accepted)
        rows[kind] = {k: float(np.mean(v)) for k, v in stats.items()}
    print(f"{'kind':10s} {'J':>6s} {'J+ref':>6s} {'F':>6s} {'F+ref':>6s} {'dF':>6s} {'s':>7s} {'s+ref':>7s} {'x time':>6s} {'kept':>5s}")
    for kind, r in rows.items():
        print(
            f"{kind:10s} {r['J']:6.3f} {r['J_refined']:6.3f} {r['F']:6.3f} {r['F_refined']:6.3f} "
            f"{r['F_refined'] - r['F']:+6.3f} {r['seconds']:7.3f} {r['seconds_refined']:7.3f} "
            f"{r['seconds_refined'] / r['seconds']:6.2f} {r['accepted']:5.2f}"
        )
    model_name = str(args.config) if args.config else "tests/tiny.py tiny model (random weights)"
    print(f"model: {model_name}; {args.size}x{args.size} images, {args.per_kind} per kind; {os.cpu_count()} CPU(s)")
    if args.json is not None:
        args.json.write_text(json.dumps({"model": model_name, "size": args.size, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
