"""Can a model fit a few images at all? A probe that tells "cannot fit" from "trained too little".

Three numbers, on held-out synthetic images (the seeds of ``bench_synthetic.py``), one click per
object at its deepest point, the multimask candidate with the highest predicted IoU:

- ``resolution bound``: the mIoU of the ground truth itself kept at the decoder's output
  resolution (image size / 4: area-averaged down, bilinear up, cut at 0.5), what a perfect
  decoder could reach on these objects;
- ``before``: the model's mIoU on the ``--images`` first images, also by object area;
- ``after``: the same after ``--steps`` optimiser steps on those images alone (one image a step,
  in turn; the training config's prompts, losses and optimiser, ``--config`` + ``--lr``).

A model that goes far above its held-out mIoU here has the capacity to draw the masks, so a flat
held-out figure means it does not generalise from what it was trained on, not that it cannot
fit. The probe trains on held-out seeds by design: its weights are thrown away.

    python benchmarks/probe_fit.py --model samstream-synthetic
    python benchmarks/probe_fit.py --model samstream-synthetic --images 50 --steps 1   # bound and areas of all 50
    python benchmarks/probe_fit.py --model-config runs/x/final/model.yaml --checkpoint runs/x/final/model.pt --images 8
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from bench_synthetic import HELD_OUT, single_click_ious
from machine import cpu_name

from samstream.build import build_model
from samstream.eval.metrics import jaccard
from samstream.training.config import load_train_config
from samstream.training.data.mix import collate_clips
from samstream.training.data.sample import ClipSample
from samstream.training.optim import build_optimizer, clip_gradients
from samstream.training.synthetic import SyntheticClip, SyntheticVideoConfig, make_image
from samstream.training.trainer import Trainer

DEFAULT_TRAIN_CONFIG = "configs/train/samstream_synthetic_stage9.yaml"
IMAGE_SEED = HELD_OUT + 50_000  # bench_synthetic.py's held-out images
AREA_EDGES = (0.0, 0.01, 0.03, 0.1, 1.01)  # object area bands of the report


def resolution_bound(clips: list[SyntheticClip], stride: int = 4) -> float:
    """mIoU of every object's ground truth [H, W] kept at 1/stride resolution and upsampled again."""
    ious = []
    for clip in clips:
        for gt in clip.masks[0]:
            if not gt.any():
                continue
            low = F.avg_pool2d(torch.from_numpy(gt).float()[None, None], stride)
            up = F.interpolate(low, size=gt.shape, mode="bilinear", align_corners=False)[0, 0].numpy() > 0.5
            ious.append(float(jaccard(gt, up)))
    return float(np.mean(ious))


def by_area(ious: np.ndarray, areas: np.ndarray, edges: tuple[float, ...] = AREA_EDGES) -> dict[str, list]:
    """Mean IoU and object count per band of object area (fraction of the image)."""
    bands = {}
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (areas >= low) & (areas < high)
        if inside.any():
            bands[f"{low:g}-{high:g}"] = [round(float(ious[inside].mean()), 4), int(inside.sum())]
    return bands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a model name (e.g. samstream-synthetic)")
    parser.add_argument("--model-config", default=None, help="a model YAML (with --checkpoint)")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--config", default=DEFAULT_TRAIN_CONFIG, help="training config: prompts, losses, optimiser")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name = args.model or args.model_config
    if name is None:
        parser.error("give --model or --model-config")
    if args.images < 1 or args.steps < 1:
        parser.error("--images and --steps must be >= 1")
    model = build_model(name, args.checkpoint, for_video=True, download=args.model is not None)
    config = load_train_config(args.config, [f"optimizer.lr={args.lr}"])
    trainer = Trainer(config)
    optimizer = build_optimizer(model, config.optimizer)
    side = model.image_size  # images at the model's input size: masks and frames need no resizing
    clips = [make_image(IMAGE_SEED + i, SyntheticVideoConfig(height=side, width=side)) for i in range(args.images)]
    samples = [ClipSample(c.frames, c.masks, tuple(range(1, c.masks.shape[1] + 1)), f"held-out image {i}")
               for i, c in enumerate(clips)]
    report = {"machine": f"{cpu_name()}, {torch.get_num_threads()} threads", "model": name, "images": args.images, "steps": args.steps, "lr": args.lr,
              "resolution bound": resolution_bound(clips)}
    model.eval()
    ious, areas = single_click_ious(model, clips)
    report["before"] = float(ious.mean())
    report["before by object area (mIoU, objects)"] = by_area(ious, areas)
    generator = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    model.train()
    for step in range(args.steps):
        optimizer.zero_grad(set_to_none=True)
        batch = collate_clips([samples[step % len(samples)]])
        terms = trainer.clip_loss(model, batch.frames[0], batch.masks[0][:, batch.object_valid[0]], generator)
        terms.total.backward()
        clip_gradients(model, config.optimizer.grad_clip_norm)
        optimizer.step()
    model.eval()
    report["after"] = float(single_click_ious(model, clips)[0].mean())
    report["train seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
