"""How fast the evaluator scores a dataset, and what 2 inference worker processes gain over 1.

    PYTHONPATH=src python benchmarks/bench_eval.py [--videos 30 --frames 50] [--skip-infer]

1. Evaluation: a synthetic DAVIS-layout dataset (default 30 videos x 50 frames, 480x854,
   2 objects) and predictions that are the ground truth shifted by a few pixels; the time of
   ``evaluate_dataset`` (reading PNGs + J + F) with 1 and 2 processes.
2. Inference: ``run_dataset`` over a few tiny videos with the small random-weight model
   (config from ../shared/fixtures/parity): 1 process with every core, 1 process with half
   of them, and 2 processes with half the cores each; wall time including model building
   and process start-up.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def make_predictions(truth: dict[str, np.ndarray], out: Path, shift: tuple[int, int]) -> None:
    from samstream.eval.layouts import labels_from_masks, write_palette_png

    for name, masks in truth.items():  # [T, K, H, W]
        moved = np.roll(masks, shift, axis=(2, 3))
        ids = list(range(1, masks.shape[1] + 1))
        for t in range(masks.shape[0]):
            write_palette_png(out / name / f"{t:05d}.png", labels_from_masks(moved[t], ids))


def bench_eval(root: Path, videos: int, frames: int, height: int, width: int) -> None:
    from samstream.eval.evaluate import evaluate_dataset
    from samstream.eval.synthetic import make_synthetic_dataset

    start = time.perf_counter()
    truth = make_synthetic_dataset(root / "ds", "davis", videos=videos, frames=frames, height=height, width=width, objects=2)
    make_predictions(truth, root / "pred", (3, -4))
    print(f"dataset written in {time.perf_counter() - start:.1f} s ({videos} videos x {frames} frames, {width}x{height}, 2 objects)")
    for workers in (1, 2):
        start = time.perf_counter()
        report = evaluate_dataset(root / "ds", root / "pred", "davis", workers=workers)
        seconds = time.perf_counter() - start
        print(
            f"evaluate, {workers} process(es): {seconds:.2f} s for {len(report.objects)} objects "
            f"({videos * frames / seconds:.0f} frames/s); J&F {100 * report.jf:.1f} J {100 * report.j:.1f} F {100 * report.f:.1f}"
        )


def bench_infer(root: Path, videos: int, frames: int) -> None:
    from samstream.checkpoint import save_safetensors
    from samstream.build import build_model
    from samstream.config import load_config
    from samstream.eval.layouts import list_videos
    from samstream.eval.runner import InferenceConfig, ModelSpec, run_dataset
    from samstream.eval.synthetic import make_synthetic_dataset

    shared = Path(os.environ.get("SAMSTREAM_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
    config, _ = load_config(shared / "fixtures" / "parity" / "model.yaml")
    weights = root / "tiny.safetensors"
    save_safetensors(build_model(config), weights)
    make_synthetic_dataset(root / "tiny", "davis", videos=videos, frames=frames, height=96, width=128)
    dataset = list_videos(root / "tiny", "davis")
    cores = os.cpu_count() or 1
    times = {}
    # (workers, torch threads per worker): one process with every core, one with one core
    # (the per-process cost), two processes with half the cores each
    for workers, threads in ((1, cores), (1, max(1, cores // 2)), (2, max(1, cores // 2))):
        spec = ModelSpec(model=config, checkpoint=weights, threads=threads)
        out = InferenceConfig(output_dir=root / f"out{workers}x{threads}")
        start = time.perf_counter()
        outcomes = run_dataset(dataset, spec, out, workers=workers, progress=False)
        times[workers, threads] = time.perf_counter() - start
        assert all(o.status == "done" for o in outcomes), [o.error for o in outcomes]
        print(f"vos-infer, {workers} worker(s) x {threads} thread(s): {times[workers, threads]:.1f} s "
              f"({videos} videos x {frames} frames, 128x96)")
    two = times[2, max(1, cores // 2)]
    print(f"speed-up of 2 workers over 1: {times[1, cores] / two:.2f}x (1 worker with all {cores} threads), "
          f"{times[1, max(1, cores // 2)] / two:.2f}x (1 worker with {max(1, cores // 2)} thread(s))")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=30)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--infer-videos", type=int, default=4)
    parser.add_argument("--infer-frames", type=int, default=24)
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--skip-infer", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        if not args.skip_eval:
            bench_eval(Path(tmp), args.videos, args.frames, args.height, args.width)
        if not args.skip_infer:
            bench_infer(Path(tmp), args.infer_videos, args.infer_frames)


if __name__ == "__main__":
    main()
