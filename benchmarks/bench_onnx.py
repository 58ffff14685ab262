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
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

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


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--export-dir", type=Path, default=None)
    args = parser.parse_args()

    import torch
    from PIL import Image

    from samstream.build import build_model
    from samstream.compat import SAM2ImagePredictor
    from samstream.export.onnx import export_onnx, quantize_export
    from samstream.onnx import OnnxImagePredictor, OnnxModel, OnnxVideoPredictor
    from samstream.video.predictor import VideoPredictor

    torch.set_num_threads(args.threads)
    root = args.export_dir or Path(tempfile.mkdtemp(prefix="bench_onnx_"))
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
        model = OnnxModel(folder, num_threads=args.threads)
        engines[name] = (OnnxImagePredictor(model), OnnxVideoPredictor(model))

    print(f"machine: {_cpu_name()}, {os.cpu_count()} cores, {args.threads} thread(s); "
          f"torch {torch.__version__}; model: parity fixture (256 px); image 512x512; video {args.frames} frames 320x136, 2 objects")
    results = {}
    for name, (img_pred, vid_pred) in engines.items():
        t_img, img_out = _median_time(_image_run(img_pred, image), args.repeats)
        t_vid, vid_out = _median_time(_video_run(vid_pred, video, args.frames), args.repeats)
        results[name] = (t_img, img_out, t_vid / args.frames, vid_out)

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


if __name__ == "__main__":
    main()
