"""ONNX Runtime (CPU) against samstream's PyTorch CPU path, image and video side by side, and the
int8 export against the float32 one (speed, size, agreement).

    python benchmarks/bench_onnx.py [--threads 1] [--frames 12] [--repeats 3] [--export-dir DIR]

The model is the parity fixture's (``../shared/fixtures/parity``: a SAM 2.1 architecture at
256 px with random weights), exported once to ``--export-dir`` (default: a temporary folder;
an existing export there is reused). Image: ``set_image`` + 3 ``predict`` calls on a 512x512
photograph. Video: 2 objects (a click and a box) propagated over ``--frames`` frames of the
fixture's clip (320x136), seconds per frame. Agreement: the fraction of pixels with the same
mask decision, and the IoU of the masks. Run on an idle machine for absolute times; the machine
is named in the output.

J&F (``--jf-videos N``, default 3; 0 skips it): the bundled ``samstream-synthetic`` model
(trained weights) exported to float32 and int8 (into ``--export-dir``/bundled_*), tracking
``N`` held-out synthetic clips of ``--jf-frames`` frames with one click per object, scored by
``bench_synthetic.video_scores`` (the evaluator's J and F) for ONNX Runtime float32 and int8,
next to PyTorch float32 and PyTorch int8 (``build_model(..., quantize="int8")``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PARITY = Path(os.environ.get("SAMSTREAM_SHARED", REPO.parent / "shared")) / "fixtures" / "parity"
CLICK = {"points": [[160.0, 74.8]], "labels": [1]}
BOX = {"box": [16.0, 27.2, 112.0, 122.4]}
PROMPTS = [
    {"point_coords": [[230.4, 204.8]], "point_labels": [1], "multimask_output": True},
    {"box": [102.4, 76.8, 358.4, 409.6], "multimask_output": False},
    {"point_coords": [[230.4, 204.8], [153.6, 256.0]], "point_labels": [1, 0], "multimask_output": False},
]


def _median_time(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def _image_run(predictor, image):
    def run():
        predictor.set_image(image)
        return [predictor.predict(**p) for p in PROMPTS]

    return run


def _video_run(predictor, folder: Path, frames: int):
    def run():
        session = predictor.open_session(str(folder))
        predictor.add_prompt(session, 0, 1, **CLICK)
        predictor.add_prompt(session, 0, 2, **BOX)
        return [r.masks for r in predictor.propagate(session, max_frames=frames - 1, progress=False)]

    return run


def _agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(fraction of pixels with the same decision, IoU of the masks) of logits or 0/1 masks."""
    fa, fb = np.asarray(a) > 0, np.asarray(b) > 0
    union = (fa | fb).sum()
    return float((fa == fb).mean()), float((fa & fb).sum() / union) if union else 1.0


def _size_mib(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.glob("*.onnx")) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--export-dir", type=Path, default=None)
    parser.add_argument("--jf-videos", type=int, default=3, help="held-out synthetic clips for J&F (0: skip)")
    parser.add_argument("--jf-frames", type=int, default=12)
    parser.add_argument("--no-speed", action="store_true", help="skip the parity-fixture speed and agreement part")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    root = args.export_dir or Path(tempfile.mkdtemp(prefix="bench_onnx_"))
    if not args.no_speed:
        parity_speed(root, args.frames, args.repeats, args.threads)
    if args.jf_videos > 0:
        bundled_jf(root, args.jf_videos, args.jf_frames, args.threads)


def parity_speed(root: Path, frames: int, repeats: int, threads: int) -> None:
    """The parity-fixture model through PyTorch, ONNX Runtime float32 and int8 (exports made
    under ``root`` once): image and video times, sizes and agreement, printed."""
    import torch
    from PIL import Image

    from samstream.build import build_model
    from samstream.compat import SAM2ImagePredictor
    from samstream.export.onnx import export_onnx, quantize_export
    from samstream.onnx import OnnxImagePredictor, OnnxModel, OnnxVideoPredictor
    from samstream.video.predictor import VideoPredictor

    fp32_dir, int8_dir = root / "fp32", root / "int8"
    if not (fp32_dir / "manifest.json").is_file():
        start = time.perf_counter()
        export_onnx(build_model(PARITY / "model.yaml", PARITY / "model.pt", for_video=True, accel=None), fp32_dir)
        print(f"export: {time.perf_counter() - start:.0f} s")
    if not (int8_dir / "manifest.json").is_file():
        quantize_export(fp32_dir, int8_dir)

    image = np.array(Image.open(PARITY / "image_0.png").convert("RGB"))
    video = PARITY / "video"
    image_model = build_model(PARITY / "model.yaml", PARITY / "model.pt")
    video_model = build_model(PARITY / "model.yaml", PARITY / "model.pt", for_video=True)
    engines = {
        "pytorch": (SAM2ImagePredictor(image_model), VideoPredictor(video_model)),
    }
    for name, folder in (("onnx fp32", fp32_dir), ("onnx int8", int8_dir)):
        model = OnnxModel(folder, num_threads=threads)
        engines[name] = (OnnxImagePredictor(model), OnnxVideoPredictor(model))

    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, {threads} thread(s); "
          f"torch {torch.__version__}; model: parity fixture (256 px); image 512x512; video {frames} frames 320x136, 2 objects")
    results = {}
    for name, (img_pred, vid_pred) in engines.items():
        t_img, img_out = _median_time(_image_run(img_pred, image), repeats)
        t_vid, vid_out = _median_time(_video_run(vid_pred, video, frames), repeats)
        results[name] = (t_img, img_out, t_vid / frames, vid_out)

    base_img, base_vid = results["pytorch"][0], results["pytorch"][2]
    print(f"{'engine':<10} {'image s':>8} {'x':>6} {'video s/frame':>14} {'x':>6}  size MiB")
    for name, (t_img, _, t_vid, _) in results.items():
        size = "" if name == "pytorch" else f"{_size_mib(fp32_dir if 'fp32' in name else int8_dir):.1f}"
        print(f"{name:<10} {t_img:>8.3f} {base_img / t_img:>6.2f} {t_vid:>14.3f} {base_vid / t_vid:>6.2f}  {size}")

    def compare(a: str, b: str) -> None:
        img = [_agreement(x[0], y[0]) for x, y in zip(results[a][1], results[b][1])]
        vid = [_agreement(x, y) for x, y in zip(results[a][3], results[b][3])]
        print(
            f"{a} vs {b}: image same-decision {min(i[0] for i in img):.4f} (worst prompt), mask IoU {min(i[1] for i in img):.4f}; "
            f"video same-decision worst frame {min(v[0] for v in vid):.4f}, mean IoU {np.mean([v[1] for v in vid]):.4f}"
        )

    compare("pytorch", "onnx fp32")
    compare("onnx fp32", "onnx int8")


def bundled_jf(root: Path, videos: int, frames: int, threads: int) -> dict[str, dict]:
    """J&F of samstream-synthetic on held-out synthetic clips: PyTorch float32 and int8, ONNX
    Runtime float32 and int8 (exports made under ``root`` once). Printed; returned by engine."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_synthetic

    from samstream.build import build_model
    from samstream.export.onnx import export_onnx, quantize_export
    from samstream.onnx import OnnxModel, OnnxVideoPredictor
    from samstream.training.synthetic import SyntheticVideoConfig, make_video
    from samstream.video.predictor import VideoPredictor

    fp32_dir, int8_dir = root / "bundled_fp32", root / "bundled_int8"
    if not (fp32_dir / "manifest.json").is_file():
        export_onnx(build_model("samstream-synthetic", for_video=True, accel=None), fp32_dir)
    if not (int8_dir / "manifest.json").is_file():
        quantize_export(fp32_dir, int8_dir)
    clips = [make_video(bench_synthetic.HELD_OUT + i, SyntheticVideoConfig(num_frames=frames)) for i in range(videos)]
    engines = {
        "pytorch fp32": lambda: VideoPredictor(build_model("samstream-synthetic", for_video=True)),
        "pytorch int8": lambda: VideoPredictor(build_model("samstream-synthetic", for_video=True, quantize="int8")),
        "onnx fp32": lambda: OnnxVideoPredictor(OnnxModel(fp32_dir, num_threads=threads)),
        "onnx int8": lambda: OnnxVideoPredictor(OnnxModel(int8_dir, num_threads=threads)),
    }
    scores = {}
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, {threads} thread(s); samstream-synthetic (256 px), "
        f"{videos} held-out synthetic clips of {frames} frames, one click per object:"
    )
    for name, make in engines.items():
        predictor = make()
        start = time.perf_counter()
        scores[name] = bench_synthetic.video_scores(None, clips, predictor=predictor)
        s = scores[name]
        print(
            f"  {name:<13} J&F {100 * s['J&F']:.2f} (J {100 * s['J']:.2f}, F {100 * s['F']:.2f}), "
            f"{s['objects']} objects, {time.perf_counter() - start:.1f} s"
        )
    for a, b in (("pytorch fp32", "onnx fp32"), ("onnx fp32", "onnx int8"), ("pytorch fp32", "pytorch int8")):
        print(f"  {b} - {a}: {100 * (scores[b]['J&F'] - scores[a]['J&F']):+.2f} J&F points")
    return scores


if __name__ == "__main__":
    main()
