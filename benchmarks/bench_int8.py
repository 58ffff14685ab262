"""int8 CPU inference (``build_model(..., quantize="int8")``) against float32 and bf16 autocast.

Three measurements, each optional (``--parts``):

- image: ``set_image`` + ``--predicts`` ``predict`` calls of the real ``sam2.1_hiera_t``
  architecture at ``--image-size`` (default 512) with seeded random weights (the weights and
  prompts of ``bench_image.py``), float32, bf16 autocast and int8, interleaved; the fraction
  of mask pixels (logits > 0) that agree with float32;
- video: propagation of the same architecture over ``--frames`` frames of bikes.mp4 (the clip
  and prompts of ``bench_video.py``), float32 and int8 in lockstep (one frame of each in turn),
  bf16 autocast on its own; seconds per frame and agreement with float32, per object count;
- jf: J&F of the bundled ``samstream-synthetic`` model on held-out synthetic clips (the
  evaluation of ``bench_synthetic.py``), float32 against int8 (``--jf-modes``), and its
  single-click image mIoU.

Every model here has samstream's CPU backend (what ``build_model`` gives on CPU); int8 is that
plus :func:`samstream.accel.quantize_int8`. The machine is named in the output (CPU, threads,
VNNI / AMX flags, load average). Goal of issue 15: int8 >= 2x float32 speed, J&F within 1 point.

    python benchmarks/bench_int8.py --json /tmp/int8.json                 # the full run
    python benchmarks/bench_int8.py --image-size 256 --frames 3 --repeats 1 --objects 1 \\
        --jf-videos 1 --jf-frames 6 --jf-images 2                          # a quick check
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_image  # noqa: E402
import bench_synthetic  # noqa: E402
import bench_video  # noqa: E402
from machine import cpu_info  # noqa: E402

from samstream.accel import apply_cpu_backend, quantize_int8  # noqa: E402
from samstream.accel.int8 import Int8Linear, probe_int8  # noqa: E402

MODES = ("fp32", "bf16", "int8")
PARTS = ("image", "video", "jf")


# --------------------------------------------------------------------------- machine


def machine() -> dict:
    """The CPU's name, the flags that matter for int8 / bf16, threads and the load average."""
    name, flags = cpu_info()
    wanted = ("avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
    return {
        "cpu": name,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "flags": [f for f in wanted if f in flags],
        "torch": torch.__version__,
        "int8_engine": probe_int8().engine,
        "load_avg": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def autocast_for(mode: str):
    """bf16: ``torch.autocast`` on the CPU; fp32 and int8 (an int8 model): none."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if mode == "bf16" else contextlib.nullcontext()


def int8_copy(model: torch.nn.Module, rebuild) -> torch.nn.Module:
    """``rebuild()`` (a model of the same architecture) with ``model``'s weights, quantized."""
    other = rebuild()
    other.load_state_dict(model.state_dict())
    return quantize_int8(other)


def count_int8(model: torch.nn.Module) -> int:
    return sum(isinstance(m, Int8Linear) for m in model.modules())


# --------------------------------------------------------------------------- image


def run_image(args, modes: list[str]) -> dict:
    def build():
        return bench_image.build_ours(args.model, args.image_size, args.seed, "cpu")

    fp32 = build()
    models = {"fp32": fp32, "bf16": fp32}
    if "int8" in modes:
        models["int8"] = int8_copy(fp32, build)
    from samstream.compat import SAM2ImagePredictor

    predictors = {mode: SAM2ImagePredictor(models[mode]) for mode in modes}
    image = bench_image.load_test_image(args.image)
    prompts = bench_image.prompts_for(image, args.predicts)
    times = {mode: [] for mode in modes}
    outputs = {}
    for rep in range(args.warmup + args.repeats):
        for mode in modes if rep % 2 == 0 else modes[::-1]:  # interleaved, order alternating
            autocast = "bf16" if mode == "bf16" else "fp32"  # int8: a float32 run of the int8 model
            t_set, t_pred, outs = bench_image.run_once(predictors[mode], image, prompts, autocast)
            outputs[mode] = outs
            if rep >= args.warmup:
                times[mode].append(t_set + t_pred)
    out = {
        "image_size": fp32.image_size,
        "predicts": args.predicts,
        "seconds": {m: statistics.median(t) for m, t in times.items()},
        "runs": times,
    }
    if "fp32" in outputs:
        out["agreement_with_fp32"] = {
            m: bench_image.agreement(outputs[m], outputs["fp32"]) for m in modes if m != "fp32"
        }
    if "int8" in models:
        out["int8_layers"] = count_int8(models["int8"])
    return out


# --------------------------------------------------------------------------- video


def build_video_model(args):
    """The preset at ``--image-size`` built like the reference's video builder, seeded random
    weights (bench_image.perturb_), samstream's CPU backend."""
    from samstream.build import postprocessing_config
    from samstream.modeling.sam2 import SAM2Model
    from samstream.presets import preset_config

    config = postprocessing_config(replace(preset_config(args.model), image_size=args.image_size), for_video=True)
    torch.manual_seed(args.seed)
    model = SAM2Model(config)
    bench_image.perturb_(model, args.seed)
    return apply_cpu_backend(model.eval())


def run_video(args, modes: list[str]) -> dict:
    from PIL import Image

    from samstream.compat import SAM2VideoPredictor
    from samstream.video.predictor import VideoPredictorOptions

    folder, source = bench_video.prepare_clip(args.cache, args.frames, args.start, args.step)
    with Image.open(folder / "00000.jpg") as im:
        width, height = im.size
    fp32 = build_video_model(args)
    options = VideoPredictorOptions(fill_hole_area=0)
    models = {"fp32": fp32, "bf16": fp32}
    if "int8" in modes:
        models["int8"] = int8_copy(fp32, lambda: build_video_model(args))
    predictors = {mode: SAM2VideoPredictor(models[mode], options) for mode in modes}
    lockstep = [m for m in modes if m != "bf16"]  # the modes without autocast run side by side
    groups = [(lockstep, "fp32")] if lockstep else []
    if "bf16" in modes:
        groups.append((["bf16"], "bf16"))
    out: dict = {"clip": source, "video_size": [width, height], "frames": args.frames, "objects": {}}
    for names, autocast in groups:
        impls = {name: predictors[name] for name in names}
        bench_video.run_lockstep(impls, folder, bench_video.prompts_for(width, height, 1), autocast, max_frames=2)
    for count in args.objects:
        prompts = bench_video.prompts_for(width, height, count)
        per_frame = {m: [] for m in modes}
        logits = {}
        for rep in range(args.repeats):
            for names, autocast in groups:
                impls = {name: predictors[name] for name in names}
                res = bench_video.run_lockstep(impls, folder, prompts, autocast, first=rep)
                for name, r in res.items():
                    per_frame[name] += r["per_frame"]
                    logits[name] = r["logits"]
        entry = {"s_per_frame": {m: statistics.median(t) for m, t in per_frame.items()}}
        if "fp32" in logits:
            entry["agreement_with_fp32"] = {
                m: bench_video.agreement(logits[m], logits["fp32"]) for m in modes if m != "fp32"
            }
            entry["worst_frame_agreement_with_fp32"] = {
                m: bench_video.worst_frame_agreement(logits[m], logits["fp32"]) for m in modes if m != "fp32"
            }
        out["objects"][str(count)] = entry
    return out


# --------------------------------------------------------------------------- J&F


def run_jf(args) -> dict:
    from samstream.build import build_model
    from samstream.training.synthetic import SyntheticVideoConfig, make_image, make_video

    held_out = bench_synthetic.HELD_OUT
    clips = [make_video(held_out + i, SyntheticVideoConfig(num_frames=args.jf_frames)) for i in range(args.jf_videos)]
    images = [make_image(held_out + 50_000 + i) for i in range(args.jf_images)]
    out: dict = {"model": "samstream-synthetic", "videos": len(clips), "frames": args.jf_frames, "modes": {}}
    for mode in args.jf_modes:
        model = build_model("samstream-synthetic", for_video=True, quantize="int8" if mode == "int8" else None)
        start = time.perf_counter()
        with autocast_for(mode):
            scores = bench_synthetic.video_scores(model, clips) if clips else {}
            if images:
                scores["image mIoU"] = bench_synthetic.image_miou(model, images)
        scores["seconds"] = time.perf_counter() - start
        out["modes"][mode] = scores
    return out


# --------------------------------------------------------------------------- report


def _ratio(base: float | None, other: float | None) -> str:
    return f"{base / other:.2f}x" if base and other else "-"


def print_table(results: dict, modes: list[str]) -> None:
    m = results["machine"]
    print(
        f"machine: {m['cpu']}, {m['cores']} cores, {m['threads']} threads, flags {','.join(m['flags']) or '-'}, "
        f"int8 engine {m['int8_engine']}, torch {m['torch']}, load avg {m['load_avg']}"
    )
    cols = [f"{mode} s" for mode in modes] + [f"{mode} speed" for mode in modes if mode != "fp32"]
    cols += [f"{mode} agree" for mode in modes if mode != "fp32"]
    header = f"{'workload':<26}" + "".join(f"{c:>13}" for c in cols)
    print(header)
    print("-" * len(header))

    def row(label: str, seconds: dict, agree: dict | None) -> None:
        cells = [f"{seconds[mode]:.3f}" if mode in seconds else "-" for mode in modes]
        cells += [_ratio(seconds.get("fp32"), seconds.get(mode)) for mode in modes if mode != "fp32"]
        cells += [f"{100 * agree[mode]:.2f}%" if agree and mode in agree else "-" for mode in modes if mode != "fp32"]
        print(f"{label:<26}" + "".join(f"{c:>13}" for c in cells))

    if "image" in results:
        r = results["image"]
        row(f"image {r['image_size']}px set+{r['predicts']} predict", r["seconds"], r.get("agreement_with_fp32"))
    if "video" in results:
        r = results["video"]
        for count, entry in r["objects"].items():
            row(f"video {results['image_size']}px {count} obj s/frame", entry["s_per_frame"], entry.get("agreement_with_fp32"))
    if "jf" in results:
        r = results["jf"]
        print(f"samstream-synthetic on {r['videos']} held-out clips of {r['frames']} frames:")
        for mode, s in r["modes"].items():
            jf = f"J&F {100 * s['J&F']:.2f}" if "J&F" in s else ""
            miou = f"image mIoU {100 * s['image mIoU']:.2f}" if "image mIoU" in s else ""
            print(f"  {mode:<5} {jf:<12} {miou:<18} ({s.get('objects', 0)} objects, {s['seconds']:.1f} s)")
        if "fp32" in r["modes"] and "int8" in r["modes"] and "J&F" in r["modes"]["fp32"]:
            delta = 100 * (r["modes"]["int8"]["J&F"] - r["modes"]["fp32"]["J&F"])
            print(f"  int8 - fp32 J&F: {delta:+.2f} points (goal: within 1)")


def parse_list(text: str, allowed: tuple[str, ...], flag: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad or not items:
        raise SystemExit(f"{flag}: expected a comma-separated subset of {','.join(allowed)}, got {text!r}")
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated: image, video, jf")
    parser.add_argument("--modes", default=",".join(MODES), help="image and video modes: fp32, bf16, int8")
    parser.add_argument("--model", default="sam2.1_hiera_tiny", help="architecture (random seeded weights)")
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--image", default="astronaut", help="skimage.data image for the image part")
    parser.add_argument("--predicts", type=int, default=3)
    parser.add_argument("--frames", type=int, default=12, help="video frames (prompted frame included)")
    parser.add_argument("--start", type=int, default=40, help="first frame taken from bikes.mp4")
    parser.add_argument("--step", type=int, default=3, help="every STEP-th frame of bikes.mp4")
    parser.add_argument("--objects", default="1,3", help="comma-separated object counts (video)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per mode")
    parser.add_argument("--warmup", type=int, default=1, help="untimed image runs per mode first")
    parser.add_argument("--jf-videos", type=int, default=10)
    parser.add_argument("--jf-frames", type=int, default=16)
    parser.add_argument("--jf-images", type=int, default=20)
    parser.add_argument("--jf-modes", default="fp32,int8", help="J&F modes: fp32, bf16, int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=bench_video.DEFAULT_CACHE, help="where the clip is kept")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    parts = parse_list(args.parts, PARTS, "--parts")
    modes = parse_list(args.modes, MODES, "--modes")
    args.jf_modes = parse_list(args.jf_modes, MODES, "--jf-modes")
    args.objects = [int(c) for c in args.objects.split(",") if c.strip()]
    if args.frames < 3:
        parser.error("--frames must be >= 3")

    torch.set_num_threads(args.threads)
    results: dict = {
        "machine": machine(),
        "model": args.model,
        "image_size": args.image_size,
        "source": bench_video.source_state(),
    }
    if probe_int8().engine is None and ("int8" in modes or "int8" in args.jf_modes):
        raise SystemExit("int8: this PyTorch has no working quantized CPU kernel (see samstream.accel.int8)")
    if "image" in parts:
        results["image"] = run_image(args, modes)
    if "video" in parts:
        results["video"] = run_video(args, modes)
    if "jf" in parts:
        results["jf"] = run_jf(args)
    results["load_avg_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print_table(results, modes)
    if args.json:
        from samstream.io.atomic import atomic_write_json

        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, results, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
