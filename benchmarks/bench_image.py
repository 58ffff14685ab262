"""Time the image predictor: ``set_image`` plus a few ``predict`` calls, on CPU.

samstream is timed on its own; when the reference ``sam2`` package is importable in the
same environment, the same work is timed through it too (same weights, same image, same
prompts, runs interleaved) and the ratio reference / samstream is printed.

Modes:
  fp32  plain float32.
  bf16  inside ``torch.autocast("cpu", dtype=torch.bfloat16)``, as the reference's README
        runs it on GPU. Mask agreement (logits > 0) with samstream's float32 output is
        reported, and the reference's own bf16-vs-fp32 agreement for context.

Random weights are fine for timing; every parameter is perturbed (seeded) so that none
keeps a constant initialisation, and the mask heads are scaled so that masks vary.

Example::

    python benchmarks/bench_image.py --repeats 5 --predicts 3 --modes fp32,bf16 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- inputs


def load_test_image(name: str) -> np.ndarray:
    """A real photograph, RGB uint8 [H, W, 3]."""
    try:
        import skimage.data

        return getattr(skimage.data, name)()
    except Exception:  # scikit-image missing: fall back to the bundled asset
        from PIL import Image

        path = REPO / "src" / "samstream" / "assets" / "cat.jpg"
        return np.asarray(Image.open(path).convert("RGB"))


def prompts_for(image: np.ndarray, count: int) -> list[dict]:
    """``count`` prompts cycling through: one click (multimask), a box, two points (+/-)."""
    h, w = image.shape[:2]
    base = [
        dict(point_coords=np.array([[0.45 * w, 0.30 * h]]), point_labels=np.array([1]), multimask_output=True),
        dict(box=np.array([0.25 * w, 0.10 * h, 0.75 * w, 0.70 * h]), multimask_output=False),
        dict(
            point_coords=np.array([[0.50 * w, 0.35 * h], [0.20 * w, 0.80 * h]]),
            point_labels=np.array([1, 0]),
            multimask_output=False,
        ),
    ]
    return [base[i % len(base)] for i in range(count)]


# --------------------------------------------------------------------------- models


def reference_config_name(preset: str) -> str:
    """samstream preset name -> the reference's config path (``configs/sam2.1/sam2.1_hiera_t.yaml``)."""
    from samstream.weights import canonical_model_name

    canonical = canonical_model_name(preset)  # e.g. sam2.1_hiera_tiny
    version, _, size = canonical.partition("_hiera_")
    short = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}[size]
    return f"configs/{version}/{version}_hiera_{short}.yaml"


@torch.no_grad()
def perturb_(model: torch.nn.Module, seed: int) -> None:
    """Seeded random weights: every parameter moved so none stays at a constant init;
    the mask hypernetwork outputs and IoU head scaled so predicted masks vary spatially."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters()):
        noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
        if p.ndim <= 1:
            p.add_(0.05 * noise.to(p.dtype))
        else:
            std = float(p.float().std()) if p.numel() > 1 else 0.02
            p.add_(0.25 * max(std, 1e-3) * noise.to(p.dtype))
    for name, p in model.named_parameters():
        if "output_hypernetworks_mlps" in name and "layers.2" in name:
            p.mul_(4.0)
        if name.startswith("sam_mask_decoder.pred_obj_score_head") and name.endswith("bias"):
            p.add_(5.0)  # objects present, so masks are not replaced by "no object" logits


def build_ours(preset: str, image_size: int | None, seed: int, accel: str):
    from samstream.accel.cpu import apply_cpu_backend
    from samstream.build import postprocessing_config
    from samstream.modeling.sam2 import SAM2Model
    from samstream.presets import preset_config

    config = preset_config(preset)
    if image_size:
        config = replace(config, image_size=image_size)
    # what build_sam2(..., apply_postprocessing=True) gives the reference image model
    config = postprocessing_config(config, for_video=False)
    torch.manual_seed(seed)  # the initialisation itself draws from the global generator
    model = SAM2Model(config)
    perturb_(model, seed)
    model.eval()
    if accel == "cpu":
        apply_cpu_backend(model)  # what build_model(..., accel="auto") does on CPU
    return model


def build_reference(preset: str, image_size: int | None, state_dict: dict):
    from sam2.build_sam import build_sam2

    overrides = [f"++model.image_size={image_size}"] if image_size else []
    model = build_sam2(reference_config_name(preset), None, device="cpu", hydra_overrides_extra=overrides)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def reference_available() -> bool:
    try:
        import sam2.build_sam  # noqa: F401
        import sam2.sam2_image_predictor  # noqa: F401
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


def run_once(predictor, image: np.ndarray, prompts: list[dict], mode: str):
    """set_image + predicts; returns (seconds for set_image, seconds for predicts, list of logits)."""
    outs = []
    with torch.inference_mode(), autocast_for(mode):
        t0 = time.perf_counter()
        predictor.set_image(image)
        t1 = time.perf_counter()
        for kw in prompts:
            masks, _, _ = predictor.predict(**kw, return_logits=True)
            outs.append(np.asarray(masks, dtype=np.float32))
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1, outs


def agreement(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Fraction of mask pixels (logits > 0) that agree, over all predictions."""
    same = sum(int(((x > 0) == (y > 0)).sum()) for x, y in zip(a, b))
    total = sum(x.size for x in a)
    return same / total


def max_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def positive_fraction(a: list[np.ndarray]) -> float:
    return sum(int((x > 0).sum()) for x in a) / sum(x.size for x in a)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sam2.1_hiera_tiny", help="samstream preset name")
    parser.add_argument("--image-size", type=int, default=None, help="model input size (default: the preset's)")
    parser.add_argument("--image", default="astronaut", help="skimage.data image name (astronaut, coffee, ...)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per implementation and mode")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    parser.add_argument("--predicts", type=int, default=3, help="predict calls after each set_image")
    parser.add_argument("--modes", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--accel", choices=("cpu", "none"), default="cpu", help="samstream's CPU backend on (default) or plain PyTorch"
    )
    parser.add_argument("--no-reference", action="store_true", help="time samstream only")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        autocast_for(m)  # validate

    from samstream.compat import SAM2ImagePredictor as OurPredictor

    image = load_test_image(args.image)
    prompts = prompts_for(image, args.predicts)
    ours_model = build_ours(args.model, args.image_size, args.seed, args.accel)
    impls = {"samstream": OurPredictor(ours_model)}
    with_ref = not args.no_reference and reference_available()
    if with_ref:
        from sam2.sam2_image_predictor import SAM2ImagePredictor as RefPredictor

        ref_model = build_reference(args.model, args.image_size, ours_model.state_dict())
        ref_predictor = RefPredictor(ref_model)
        if hasattr(ref_predictor, "_bb_feat_sizes"):  # the reference assumes 1024 px input here
            size = ref_model.image_size
            ref_predictor._bb_feat_sizes = [(size // 4, size // 4), (size // 8, size // 8), (size // 16, size // 16)]
        impls["reference"] = ref_predictor
    elif not args.no_reference:
        print("reference package `sam2` not importable: timing samstream only", file=sys.stderr)

    image_size = ours_model.image_size
    print(
        f"model {args.model} @ {image_size}px, image {args.image} {image.shape[1]}x{image.shape[0]}, "
        f"{args.predicts} predicts, {args.repeats} repeats, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, accel {args.accel}"
    )

    results: dict = {
        "model": args.model,
        "accel": args.accel,
        "image_size": image_size,
        "image": args.image,
        "predicts": args.predicts,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "modes": {},
    }
    outputs: dict[tuple[str, str], list[np.ndarray]] = {}
    for mode in modes:
        times = {name: {"set_image": [], "predict": [], "total": []} for name in impls}
        for _ in range(args.warmup):
            for name, pred in impls.items():
                *_, outs = run_once(pred, image, prompts, mode)
                outputs[(name, mode)] = outs
        for _ in range(args.repeats):
            for name, pred in impls.items():  # interleaved, so load changes hit both alike
                t_set, t_pred, outs = run_once(pred, image, prompts, mode)
                times[name]["set_image"].append(t_set)
                times[name]["predict"].append(t_pred)
                times[name]["total"].append(t_set + t_pred)
                outputs[(name, mode)] = outs
        results["modes"][mode] = {
            name: {k: statistics.median(v) for k, v in t.items()} | {"runs_total": t["total"]}
            for name, t in times.items()
        }

    # ---------------------------------------------------------------- report
    header = f"{'mode':<6}{'impl':<11}{'set_image ms':>14}{'predict ms':>12}{'total ms':>11}{'ref/ours':>10}"
    print(header)
    print("-" * len(header))
    for mode in modes:
        r = results["modes"][mode]
        for name in impls:
            t = r[name]
            ratio = ""
            if name == "samstream" and "reference" in r:
                ratio_v = r["reference"]["total"] / t["total"]
                r["ratio_ref_over_ours"] = ratio_v
                r["ratio_set_image"] = r["reference"]["set_image"] / t["set_image"]
                r["ratio_predict"] = r["reference"]["predict"] / t["predict"]
                ratio = f"{ratio_v:.2f}x"
            print(
                f"{mode:<6}{name:<11}{1e3 * t['set_image']:>14.1f}{1e3 * t['predict']:>12.1f}"
                f"{1e3 * t['total']:>11.1f}{ratio:>10}"
            )

    if "bf16" in modes and "fp32" not in modes:  # float32 outputs for the agreement figures (untimed)
        for name, pred in impls.items():
            outputs[(name, "fp32")] = run_once(pred, image, prompts, "fp32")[2]

    checks: dict = {}
    if ("samstream", "fp32") in outputs:
        ours32 = outputs[("samstream", "fp32")]
        checks["samstream_fp32_positive_fraction"] = positive_fraction(ours32)
        if ("reference", "fp32") in outputs:
            ref32 = outputs[("reference", "fp32")]
            checks["fp32_ours_vs_ref_max_abs_logit_diff"] = max_abs_diff(ours32, ref32)
            checks["fp32_ours_vs_ref_agreement"] = agreement(ours32, ref32)
        if ("samstream", "bf16") in outputs:
            checks["bf16_ours_vs_ours_fp32_agreement"] = agreement(outputs[("samstream", "bf16")], ours32)
        if ("reference", "bf16") in outputs and ("reference", "fp32") in outputs:
            checks["bf16_ref_vs_ref_fp32_agreement"] = agreement(
                outputs[("reference", "bf16")], outputs[("reference", "fp32")]
            )
        if ("reference", "bf16") in outputs:
            checks["bf16_ref_vs_ours_fp32_agreement"] = agreement(outputs[("reference", "bf16")], ours32)
    for key, value in checks.items():
        print(f"{key}: {value:.6f}" if "diff" in key else f"{key}: {100 * value:.3f}%")
    results["checks"] = checks

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    sys.exit(main())
