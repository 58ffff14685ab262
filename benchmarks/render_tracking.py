"""A picture of tracked frames: a held-out synthetic video (and a real composite) tracked from
one click per object on frame 0, every k-th frame with the predicted masks drawn over it
(top row of each pair: ground truth; bottom row: the model).

    python benchmarks/render_tracking.py --model samstream-synthetic --out docs/images/tracking.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench_synthetic import HELD_OUT, deepest_point
from samstream.build import build_model
from samstream.io.overlay import overlay_masks
from samstream.training.synthetic import SyntheticVideoConfig, make_video, real_composite_config
from samstream.video.predictor import VideoPredictor


def track(model, clip) -> np.ndarray:
    """[T, N, H, W] bool predictions from one click per object visible on frame 0."""
    predictor = VideoPredictor(model)
    session = predictor.open_session(clip.frames)
    ids = [n for n in range(clip.masks.shape[1]) if clip.masks[0, n].any()]
    for n in ids:
        predictor.add_prompt(session, 0, n + 1, points=[deepest_point(clip.masks[0, n])], labels=[1])
    pred = np.zeros((clip.masks.shape[0], clip.masks.shape[1]) + clip.masks.shape[2:], dtype=bool)
    for result in predictor.propagate(session, progress=False):
        pred[result.frame_idx][ids] = result.binary_masks().cpu().numpy()
    return pred


def strip(clip, pred, every: int) -> np.ndarray:
    rows = []
    ids = list(range(1, clip.masks.shape[1] + 1))
    for masks in (clip.masks, pred):
        tiles = [overlay_masks(clip.frames[t], masks[t], ids) for t in range(0, clip.frames.shape[0], every)]
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="samstream-synthetic")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--seed", type=int, default=3, help="which held-out video")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = build_model(args.model, args.checkpoint, for_video=True)
    parts = []
    for config in (SyntheticVideoConfig(num_frames=args.frames), real_composite_config(num_frames=args.frames)):
        offset = 0 if config.objects == "shapes" else 90_000
        clip = make_video(HELD_OUT + offset + args.seed, config)
        parts.append(strip(clip, track(model, clip), args.every))
    gap = np.full((8, parts[0].shape[1], 3), 255, dtype=np.uint8)
    picture = np.concatenate([parts[0], gap, parts[1]], axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
