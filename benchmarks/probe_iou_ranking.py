"""How well a model's predicted IoUs rank the candidates of a single click.

On held-out synthetic images (the seeds of ``bench_synthetic.py``), one click per object with
multimask output: the IoU of each of the three candidates with the ground truth, against the IoU
the model predicts for it. Prints the mean IoU of the candidate the predictor picks (the highest
predicted IoU), of the best of the three (an oracle), of each candidate taken always, how far the
predictions miss (mean |predicted - actual| per candidate), and how often the pick is the best.

    python benchmarks/probe_iou_ranking.py --model samstream-synthetic
    python benchmarks/probe_iou_ranking.py --config runs/x/final/model.yaml --checkpoint runs/x/final/model.pt --click random
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from bench_synthetic import HELD_OUT, deepest_point

from samstream.build import build_model
from samstream.eval.metrics import jaccard
from samstream.image.predictor import ImagePredictor
from samstream.training.synthetic import make_image


def click_for(mask: np.ndarray, how: str, rng: np.random.Generator) -> list[float]:
    """(x, y): the pixel deepest inside ``mask`` [H, W] bool, or a uniformly random one of it."""
    if how == "deepest":
        return deepest_point(mask)
    ys, xs = np.nonzero(mask)
    k = int(rng.integers(len(ys)))
    return [float(xs[k]), float(ys[k])]


def ranking_report(predicted: np.ndarray, actual: np.ndarray) -> dict:
    """Summary of predicted [K, M] against actual [K, M] IoUs (K clicks, M candidates)."""
    rows = np.arange(len(actual))
    picked = predicted.argmax(axis=1)
    return {
        "clicks": int(len(actual)),
        "picked (highest predicted IoU)": round(float(actual[rows, picked].mean()), 4),
        "best of the candidates": round(float(actual.max(axis=1).mean()), 4),
        "each candidate always": [round(float(v), 4) for v in actual.mean(axis=0)],
        "mean |predicted - actual| per candidate": [round(float(v), 4) for v in np.abs(predicted - actual).mean(axis=0)],
        "picked is the best": round(float((actual[rows, picked] >= actual.max(axis=1)).mean()), 4),
        "times each candidate is picked": np.bincount(picked, minlength=actual.shape[1]).tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a model name (e.g. samstream-synthetic)")
    parser.add_argument("--config", default=None, help="a model YAML (with --checkpoint)")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--click", choices=("deepest", "random"), default="deepest")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name = args.model or args.config
    if name is None:
        parser.error("give --model or --config")
    model = build_model(name, args.checkpoint, download=args.model is not None)
    predictor = ImagePredictor(model)
    rng = np.random.default_rng(0)
    predicted, actual = [], []
    for i in range(args.images):
        clip = make_image(HELD_OUT + 50_000 + i)
        predictor.set_image(clip.frames[0])
        for n in range(clip.masks.shape[1]):
            gt = clip.masks[0, n]
            if not gt.any():
                continue
            result = predictor.predict(points=[click_for(gt, args.click, rng)], labels=[1], multimask_output=True)
            predicted.append(np.asarray(result.scores, dtype=np.float64))
            actual.append([float(jaccard(gt, m)) for m in result.masks])
    report = {"model": name, "click": args.click, **ranking_report(np.array(predicted), np.array(actual))}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
