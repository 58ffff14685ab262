"""Roofline view of video tracking and automatic masks: how close each part of the model gets
to what this machine can do, for samstream and (when importable) the reference, side by side.

In one run:

1. the machine's limits, measured here (:func:`roofline.probe_machine`): the best float32 and
   bfloat16 throughput of a large square matmul, and of ``F.scaled_dot_product_attention`` at
   memory-attention shapes (1 head, dim 256, queries = the feature map's tokens at each size,
   keys = 7 memory frames of them); the CPU's model name, its AMX / AVX-512-bf16 / VNNI flags
   and torch's thread count;
2. the video workload of ``bench_video.py`` (its clip, seeded random weights and prompts,
   imported from it): the real architecture at each ``--sizes`` image size, objects prompted on
   frame 0, then ``propagate_in_video``. Per component (image encoder, memory attention,
   prompt encoder + mask decoder, memory encoder, frame loading where it happens per frame
   (samstream decodes frames on demand, the reference all of them in ``init_state``), and
   "post-processing": the rest of the frame, upscaling to video size, object pointers,
   bookkeeping) the time per frame, from
   forward pre/post hooks, and the FLOPs per frame, from ``FlopCounterMode`` (attention and
   oneDNN's linear op included), in a separate counting pass of the same frames;
3. per component: seconds, GFLOP, achieved GFLOP/s and the fraction of the limit. Every row's
   limit is the roofline of its own FLOP mix: its attention-core FLOPs (inside attention
   modules, not their projections) at the attention limit of the mode (the better of the fused
   attention kernel and the matmul: attention is matrix products), the rest at the matmul
   limit of the mode (float32 limits for fp32 runs, bfloat16 limits under autocast); the
   ``att%`` column gives the mix, the ``limit`` column the resulting GFLOP/s. The overall row
   is the frame: all its FLOPs over the sum of the components' best times. samstream and the
   reference run in lockstep, one frame each in turn (who goes first alternates), with the
   same weights, frames and prompts; ``ref/ours`` is reference seconds over samstream's;
4. bf16 masks against the float32 masks of the same implementation (% of pixels, logits > 0),
   and samstream against the reference in float32;
5. the automatic mask generator (``bench_amg.py``'s image and reference builder, imported):
   points per second, and time and GFLOP of the image encoder, of the decoder batches and of
   post-processing (mask upscaling, filtering, NMS, RLE, records), with its share of the time.

FLOPs are counted once per size, object count and implementation, in float32: autocast changes
the precision of the same operations, not their number.

The reference runs when ``import sam2`` works, e.g. with the reference's environment and
samstream's sources on the path::

    PYTHONPATH=src /work/.venv-ref/bin/python benchmarks/bench_roofline.py \\
        --sizes 512,1024 --objects 1,3,8 --modes fp32,bf16 --frames 12 --threads 2 --json roofline.json

A short check: ``--sizes 512 --objects 1 --modes fp32 --frames 3 --amg-points-per-side 4``.
Every configuration runs each implementation three times over the clip (a counting pass and
two timed modes), so on a 2-core CPU the full grid takes hours, most of it at 1024 px with 8
objects (memory attention grows with the square of the token count): run ``--sizes 512`` first.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_video  # noqa: E402  (the clip, weights and prompts of the video benchmark)
from roofline import (  # noqa: E402
    ComponentMeter,
    ComponentStats,
    MachineProbe,
    counting_flops,
    difference,
    probe_machine,
    roofline_limit,
)

#: component -> module paths, for the SAM 2 model of samstream and of the reference alike
#: (conv_s0/conv_s1 project the image encoder's high-resolution features: image work)
MODEL_COMPONENTS = {
    "image encoder": ("image_encoder", "sam_mask_decoder.conv_s0", "sam_mask_decoder.conv_s1"),
    "memory attention": ("memory_attention",),
    "decoder": ("sam_prompt_encoder", "sam_mask_decoder"),
    "memory encoder": ("memory_encoder",),
}
#: video adds decoding + resizing a frame where it happens per frame: samstream's session
#: reads frames on demand (``session.frames.get``); the reference decodes all frames in
#: ``init_state``, which is set-up time, not frame time
COMPONENTS = {**MODEL_COMPONENTS, "frame loading": ()}
#: decoder work called outside forward (samstream: the per-image part of the mask decoder)
METHODS = {"decoder": ("sam_mask_decoder.image_context",)}
#: the rest of a frame or an image: what no component accounts for
REST = "post-processing"
AMG_COMPONENTS = {k: MODEL_COMPONENTS[k] for k in ("image encoder", "decoder")}


def model_of(predictor) -> nn.Module:
    """The SAM 2 model behind a predictor (the reference's video predictor is the model)."""
    return predictor if isinstance(predictor, nn.Module) else predictor.model


# --------------------------------------------------------------------------- running


@dataclass
class Frame:
    """One propagated frame: wall seconds, FLOPs and attention-core FLOPs of the whole frame, per component."""

    seconds: float
    flops: int
    attention_flops: int
    components: dict[str, ComponentStats]


@dataclass
class VideoRun:
    setup_s: float
    first_s: float  # the first yield (memory of the prompted frame), not in ``frames``
    frames: list[Frame]
    logits: np.ndarray  # [frames, objects, H, W], every yielded frame


def run_video(
    impls: dict, folder: Path, prompts: list[dict], mode: str, *, max_frames: int | None = None, first: int = 0,
    count_flops: bool = False,
) -> dict[str, VideoRun]:
    """init_state + prompts on frame 0, then propagate every implementation in lockstep (one
    frame each in turn, the order alternating), with a :class:`ComponentMeter` on each model.
    ``count_flops`` (one implementation at a time) runs it all under a FLOP counter."""
    if count_flops and len(impls) != 1:
        raise ValueError(f"count_flops needs exactly one implementation, got {list(impls)}")
    names = list(impls)[::-1] if first % 2 else list(impls)
    with torch.inference_mode(), bench_video.autocast_for(mode), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with counting_flops() if count_flops else contextlib.nullcontext() as counter, contextlib.ExitStack() as stack:
            flops = counter.get_total_flops if counter is not None else None
            meters = {
                n: stack.enter_context(ComponentMeter(model_of(impls[n]), COMPONENTS, methods=METHODS, flops=flops))
                for n in names
            }
            return _lockstep(impls, names, meters, folder, prompts, max_frames, flops)


def _lockstep(impls, names, meters, folder, prompts, max_frames, flops) -> dict[str, VideoRun]:
    total = flops or (lambda: 0)
    setup, iters = {}, {}
    for name in names:
        start = time.perf_counter()
        state = impls[name].init_state(str(folder))
        for obj_id, prompt in enumerate(prompts, start=1):
            impls[name].add_new_points_or_box(state, frame_idx=0, obj_id=obj_id, **prompt)
        setup[name] = time.perf_counter() - start
        source = getattr(state, "frames", None)  # samstream's session; the reference's state is a dict
        if callable(getattr(source, "get", None)):
            meters[name].watch(source, "get", "frame loading")
        iters[name] = bench_video._propagate(impls[name], state, max_frames)
    frames: dict[str, list[Frame]] = {n: [] for n in names}
    logits: dict[str, list[np.ndarray]] = {n: [] for n in names}
    step = 0
    while iters:
        for name in names if step % 2 == 0 else names[::-1]:
            if name not in iters:
                continue
            meter = meters[name]
            before, f0, a0 = meter.totals(), total(), meter.attention_core_flops
            start = time.perf_counter()
            try:
                _, _, masks = next(iters[name])
            except StopIteration:
                del iters[name]
                continue
            seconds = time.perf_counter() - start
            frames[name].append(
                Frame(seconds, total() - f0, meter.attention_core_flops - a0, difference(meter.totals(), before))
            )
            logits[name].append(masks[:, 0].float().cpu().numpy())
        step += 1
    return {
        n: VideoRun(setup[n], frames[n][0].seconds, frames[n][1:], np.stack(logits[n])) for n in names
    }


# --------------------------------------------------------------------------- the roofline rows


@dataclass
class Row:
    """One component of one implementation, per frame (or per image)."""

    component: str
    seconds: float
    gflop: float
    attention_share: float  # of the FLOPs
    limit_gflops: float  # the roofline of this FLOP mix on this machine, in this mode
    calls: float  # outermost calls into the component (per frame / image)

    @property
    def gflops(self) -> float:
        return self.gflop / self.seconds if self.seconds > 0 else float("nan")

    @property
    def fraction(self) -> float:
        return self.gflops / self.limit_gflops if self.gflop > 0 else float("nan")

    def as_dict(self) -> dict:
        return asdict(self) | {"gflops": self.gflops, "fraction_of_limit": self.fraction}


def _mean_stats(records: list[dict[str, ComponentStats]], names) -> dict[str, ComponentStats]:
    total = {n: ComponentStats() for n in names}
    for record in records:
        for n in names:
            total[n] = total[n] + record[n]
    count = max(1, len(records))
    return {
        n: ComponentStats(s.seconds / count, s.flops / count, s.attention_flops / count, s.calls / count)
        for n, s in total.items()
    }


def rows_for(
    timed: list[dict[str, ComponentStats]],
    counted: list[dict[str, ComponentStats]],
    names: list[str],
    matmul_limit: float,
    attention_limit: float,
) -> list[Row]:
    """Per-component rows (mean per frame/image of ``timed`` seconds and ``counted`` FLOPs),
    ``names`` including :data:`REST` and "total" (the whole frame), in that order last."""
    t = _mean_stats(timed, names)
    c = _mean_stats(counted, names)
    rows = []
    for n in names[:-1]:
        flops, att = c[n].flops, c[n].attention_flops
        rows.append(
            Row(n, t[n].seconds, flops / 1e9, att / flops if flops else 0.0,
                roofline_limit(flops, att, matmul_limit, attention_limit), t[n].calls)
        )
    total_flops, total_att = c["total"].flops, c["total"].attention_flops
    best_seconds = sum(r.gflop / r.limit_gflops for r in rows if r.gflop > 0)
    limit = total_flops / 1e9 / best_seconds if best_seconds > 0 else matmul_limit
    share = total_att / total_flops if total_flops else 0.0
    rows.append(Row("total", t["total"].seconds, total_flops / 1e9, share, limit, t["total"].calls))
    return rows


def frame_records(run: VideoRun) -> list[dict[str, ComponentStats]]:
    """Per frame: the components, the rest of the frame (:data:`REST`), and "total"."""
    out = []
    for frame in run.frames:
        record = dict(frame.components)
        used = ComponentStats()
        for s in record.values():
            used = used + s
        whole = ComponentStats(frame.seconds, frame.flops, frame.attention_flops, 1)
        record[REST] = whole - used
        record[REST].calls = 0
        record["total"] = whole
        out.append(record)
    return out


VIDEO_ROWS = [*COMPONENTS, REST, "total"]


def limits_for(probe: MachineProbe, mode: str, queries: int) -> tuple[float, float]:
    return probe.matmul_limit(mode), probe.attention_limit(mode, queries)


# --------------------------------------------------------------------------- automatic masks


def run_amg(generator, model: nn.Module, image: np.ndarray, mode: str, *, count_flops: bool = False):
    """One ``generator.generate(image)`` with a meter on ``model``: (seconds, stats per row, masks)."""
    with torch.inference_mode(), bench_video.autocast_for(mode), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with counting_flops() if count_flops else contextlib.nullcontext() as counter:
            flops = counter.get_total_flops if counter is not None else None
            with ComponentMeter(model, AMG_COMPONENTS, methods=METHODS, flops=flops) as meter:
                start = time.perf_counter()
                masks = generator.generate(image)
                seconds = time.perf_counter() - start
                total = flops() if flops else 0
                core = meter.attention_core_flops
            record = meter.totals()
    used = ComponentStats()
    for s in record.values():
        used = used + s
    whole = ComponentStats(seconds, total, core, 1)
    record[REST] = whole - used
    record[REST].calls = 0
    record["total"] = whole
    return seconds, record, masks


AMG_ROWS = [*AMG_COMPONENTS, REST, "total"]


# --------------------------------------------------------------------------- printing


def print_rows(title: str, per_impl: dict[str, list[Row]]) -> None:
    print(f"\n{title}")
    header = (
        f"  {'component':<18}{'impl':<11}{'calls':>6}{'s':>9}{'GFLOP':>9}{'GFLOP/s':>9}{'att%':>6}{'limit':>8}"
        f"{'%limit':>8}{'share':>7}{'ref/ours':>10}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    names = [r.component for r in next(iter(per_impl.values()))]
    for i, name in enumerate(names):
        for impl, rows in per_impl.items():
            r, whole = rows[i], rows[-1]
            ratio = ""
            if impl == "reference" and "samstream" in per_impl:
                ours = per_impl["samstream"][i].seconds
                ratio = f"{r.seconds / ours:.2f}x" if ours > 0 and r.seconds > 0 else "-"
            frac = f"{100 * r.fraction:.1f}%" if r.gflop > 0 and r.seconds > 0 else "-"
            rate = f"{r.gflops:.1f}" if r.seconds > 0 else "-"
            share = f"{100 * r.seconds / whole.seconds:.0f}%" if whole.seconds > 0 else "-"
            print(
                f"  {name if impl == next(iter(per_impl)) else '':<18}{impl:<11}{r.calls:>6.1f}{r.seconds:>9.3f}{r.gflop:>9.2f}"
                f"{rate:>9}{100 * r.attention_share:>5.0f}%{r.limit_gflops:>8.1f}{frac:>8}{share:>7}{ratio:>10}"
            )


def print_probe(probe: MachineProbe) -> None:
    cpu = probe.cpu
    print(
        f"machine: {cpu.model_name}, {cpu.cores} logical CPUs, flags [{' '.join(cpu.flags) or 'none'}], "
        f"torch {torch.__version__} CPU capability {cpu.capability}, {cpu.threads} torch threads"
    )
    for t in probe.matmul.values():
        print(f"  limit matmul    {t.dtype}: {t.gflops:7.1f} GFLOP/s  ({t.shape}, best {t.seconds:.3f} s)")
    for t in probe.attention.values():
        print(f"  limit attention {t.dtype}: {t.gflops:7.1f} GFLOP/s  (SDPA 1 head, {t.shape}, best {t.seconds:.3f} s)")
    print(
        "each row's limit: its attention-core FLOPs (att%) at the attention limit (the better of fused attention "
        "and matmul), the rest at the matmul limit, both of the row's mode (fp32 limits for fp32, bf16 under autocast)"
    )


# --------------------------------------------------------------------------- main


def _ints(parser: argparse.ArgumentParser, text: str, flag: str) -> list[int]:
    """Comma-separated positive integers, or a usage error (exit code 2) naming ``flag``."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        parser.error(f"{flag}: expected comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        parser.error(f"{flag}: expected positive integers, got {text!r}")
    return values


def video_section(args, probe: MachineProbe, modes: list[str], results: dict) -> None:
    folder, source = bench_video.prepare_clip(args.cache, args.frames, args.start, args.step)
    from PIL import Image

    with Image.open(folder / "00000.jpg") as im:
        width, height = im.size
    print(f"\nvideo: {args.model}, clip {source} {width}x{height} x {args.frames} frames, {args.repeats} repeat(s)")
    for size in args.sizes:
        ours = bench_video.build_ours(args.model, args.seed, args.fill_hole_area, image_size=size)
        impls = {"samstream": ours}
        if args.with_reference:
            impls["reference"] = bench_video.build_reference(
                args.model, ours.model.state_dict(), args.fill_hole_area, image_size=size
            )
        queries = (size // 16) ** 2  # tokens of the stride-16 feature map
        for mode in modes:
            if args.warmup_frames:
                bench_video.run_lockstep(impls, folder, bench_video.prompts_for(width, height, 1), mode, max_frames=args.warmup_frames)
        for n_obj in args.objects:
            prompts = bench_video.prompts_for(width, height, n_obj)
            counted = {
                name: frame_records(run_video({name: p}, folder, prompts, "fp32", count_flops=True)[name])
                for name, p in impls.items()
            }
            logits: dict[tuple[str, str], np.ndarray] = {}
            for mode in modes:
                timed: dict[str, list] = {name: [] for name in impls}
                per_frame_medians: dict[str, list[float]] = {name: [] for name in impls}
                for rep in range(args.repeats):
                    runs = run_video(impls, folder, prompts, mode, first=rep)
                    for name, run in runs.items():
                        timed[name] += frame_records(run)
                        per_frame_medians[name].append(statistics.median(f.seconds for f in run.frames))
                        logits.setdefault((name, mode), run.logits)
                matmul, attention = limits_for(probe, mode, queries)
                per_impl = {name: rows_for(timed[name], counted[name], VIDEO_ROWS, matmul, attention) for name in impls}
                key = f"{size}px/{n_obj}obj/{mode}"
                print_rows(
                    f"video {key}: per frame ({len(timed['samstream'])} timed frames; limits {mode}: matmul "
                    f"{matmul:.0f}, attention {attention:.0f} GFLOP/s)",
                    per_impl,
                )
                entry = {
                    "size": size, "objects": n_obj, "mode": mode, "matmul_limit": matmul, "attention_limit": attention,
                    "rows": {name: [r.as_dict() for r in rows] for name, rows in per_impl.items()},
                    "per_frame_median_s": {name: statistics.median(v) for name, v in per_frame_medians.items()},
                }
                if "reference" in per_impl:
                    entry["ratio_ref_over_ours"] = per_impl["reference"][-1].seconds / per_impl["samstream"][-1].seconds
                    print(f"  overall ref/ours {entry['ratio_ref_over_ours']:.2f}x (mean s/frame)")
                results["video"].append(entry)
            checks = agreement_checks(logits, list(impls), modes)
            for label, value in checks.items():
                print(f"  {size}px {n_obj}obj {label}: {100 * value:.3f}% of pixels agree")
            results["agreement"][f"{size}px/{n_obj}obj"] = checks


def agreement_checks(logits: dict[tuple[str, str], np.ndarray], names: list[str], modes: list[str]) -> dict[str, float]:
    """bf16 vs fp32 of each implementation; samstream vs reference in fp32 (fraction of pixels)."""
    checks = {}
    for name in names:
        if (name, "bf16") in logits and (name, "fp32") in logits:
            checks[f"{name} bf16 vs fp32"] = bench_video.agreement(logits[(name, "bf16")], logits[(name, "fp32")])
            checks[f"{name} bf16 vs fp32 worst frame"] = bench_video.worst_frame_agreement(
                logits[(name, "bf16")], logits[(name, "fp32")]
            )
    if ("samstream", "fp32") in logits and ("reference", "fp32") in logits:
        checks["samstream vs reference fp32"] = bench_video.agreement(logits[("samstream", "fp32")], logits[("reference", "fp32")])
    return checks


def amg_section(args, probe: MachineProbe, modes: list[str], results: dict) -> None:
    import bench_amg

    from samstream.build import build_model
    from samstream.image.automatic import SAM2AutomaticMaskGenerator
    from samstream.presets import preset_config

    torch.manual_seed(args.seed)
    ours = build_model(preset_config(args.model), device="cpu")
    bench_video.perturb_(ours, args.seed)
    image = bench_amg._image(args.amg_image, args.amg_size)
    options = {"points_per_side": args.amg_points_per_side, "points_per_batch": args.amg_points_per_batch}
    if args.amg_thresholds == "zero":
        options.update(pred_iou_thresh=0.0, stability_score_thresh=0.0)
    impls = {"samstream": (SAM2AutomaticMaskGenerator(ours, **options), ours)}
    if args.with_reference:
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator as Reference

        reference = bench_amg._reference_model(ours.state_dict(), "cpu")
        impls["reference"] = (Reference(reference, **options), reference)
    points = args.amg_points_per_side**2
    print(
        f"\nautomatic masks: {args.model} @ {ours.image_size}px, image {args.amg_image} {image.shape[1]}x{image.shape[0]}, "
        f"{points} points, options {options}"
    )
    queries = (ours.image_size // 16) ** 2
    counted = {name: [run_amg(g, m, image, "fp32", count_flops=True)[1]] for name, (g, m) in impls.items()}
    for mode in modes:
        timed: dict[str, list] = {name: [] for name in impls}
        masks_found: dict[str, int] = {}
        names = list(impls)
        for rep in range(args.repeats + 1):  # the first round warms up
            for name in names if rep % 2 == 0 else names[::-1]:
                generator, model = impls[name]
                _, record, masks = run_amg(generator, model, image, mode)
                if rep:
                    timed[name].append(record)
                    masks_found[name] = len(masks)
        matmul, attention = limits_for(probe, mode, queries)
        per_impl = {name: rows_for(timed[name], counted[name], AMG_ROWS, matmul, attention) for name in impls}
        print_rows(f"automatic masks {mode}: per image (limits {mode}: matmul {matmul:.0f}, attention {attention:.0f} GFLOP/s)", per_impl)
        entry = {"mode": mode, "points": points, "options": options, "rows": {}, "masks": masks_found}
        for name, rows in per_impl.items():
            whole = rows[-1]
            rate = points / whole.seconds
            post = rows[AMG_ROWS.index(REST)].seconds / whole.seconds
            print(f"  {name}: {rate:.1f} points/s, {masks_found[name]} masks, post-processing {100 * post:.0f}% of the time")
            entry["rows"][name] = [r.as_dict() for r in rows]
            entry[f"{name}_points_per_s"] = rate
            entry[f"{name}_post_share"] = post
        if "reference" in per_impl:
            entry["ratio_ref_over_ours"] = per_impl["reference"][-1].seconds / per_impl["samstream"][-1].seconds
            print(f"  overall ref/ours {entry['ratio_ref_over_ours']:.2f}x")
        results["amg"].append(entry)


def _finite(value):
    """``value`` with NaN / infinite floats as None (JSON has no NaN), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sam2.1_hiera_tiny", help="samstream preset name")
    parser.add_argument("--sizes", default="512,1024", help="comma-separated image sizes (video)")
    parser.add_argument("--objects", default="1,3,8", help="comma-separated object counts (video)")
    parser.add_argument("--modes", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--frames", type=int, default=12, help="frames of the clip (prompted frame included)")
    parser.add_argument("--start", type=int, default=40, help="first frame taken from bikes.mp4")
    parser.add_argument("--step", type=int, default=3, help="take every STEP-th frame of bikes.mp4")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per size, objects and mode")
    parser.add_argument("--warmup-frames", type=int, default=2, help="frames of an untimed run per size and mode (0: none)")
    parser.add_argument("--fill-hole-area", type=int, default=0, help="hole filling, both implementations (bench_video.py)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=bench_video.DEFAULT_CACHE, help="where the clip is kept")
    parser.add_argument("--no-reference", action="store_true", help="samstream only")
    parser.add_argument("--no-video", action="store_true", help="skip the video workload")
    parser.add_argument("--amg-points-per-side", type=int, default=16, help="automatic masks grid (0: skip them)")
    parser.add_argument("--amg-points-per-batch", type=int, default=64)
    parser.add_argument(
        "--amg-thresholds", choices=("default", "zero"), default="zero",
        help="zero: every proposal reaches NMS and RLE (with random weights the defaults drop nearly all); see bench_amg.py",
    )
    parser.add_argument("--amg-image", default="astronaut", help="an skimage.data image name")
    parser.add_argument("--amg-size", type=int, default=512, help="its long side in pixels")
    parser.add_argument("--probe-size", type=int, default=4096, help="largest side of the probe's square matmul (it stays smaller where a product is slow)")
    parser.add_argument("--probe-repeats", type=int, default=3, help="timed runs per probe kernel (best kept)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in ("fp32", "bf16"):
            parser.error(f"--modes: unknown mode {m!r} (expected fp32 or bf16)")
    args.sizes = _ints(parser, args.sizes, "--sizes")
    args.objects = _ints(parser, args.objects, "--objects")
    if any(s % 16 for s in args.sizes):
        parser.error(f"--sizes must be multiples of 16, got {args.sizes}")
    if args.frames < 2:
        parser.error("--frames must be >= 2")
    args.with_reference = not args.no_reference and bench_video.reference_available()
    if not args.no_reference and not args.with_reference:
        print("reference package `sam2` not importable: samstream only", file=sys.stderr)

    from samstream.presets import preset_config

    sizes = set() if args.no_video else set(args.sizes)
    if args.amg_points_per_side > 0:
        sizes.add(preset_config(args.model).image_size)  # automatic masks run at the preset's size
    probe = probe_machine(
        matmul_size=args.probe_size,
        attention_queries=sorted({(s // 16) ** 2 for s in sizes}) or [(args.sizes[0] // 16) ** 2],
        dtypes=tuple(modes),
        repeats=args.probe_repeats,
    )
    print_probe(probe)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    results: dict = {
        "machine": probe.as_dict(), "torch": torch.__version__, "model": args.model, "frames": args.frames,
        "repeats": args.repeats, "load_avg_start": load, "source": bench_video.source_state(),
        "reference": args.with_reference, "video": [], "agreement": {}, "amg": [],
    }
    if not args.no_video:
        video_section(args, probe, modes, results)
    if args.amg_points_per_side > 0:
        amg_section(args, probe, modes, results)
    results["load_avg_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average: start {results['load_avg_start']:.2f}, end {results['load_avg_end']:.2f}")
    if args.json:
        from samstream.io.atomic import atomic_write_json

        atomic_write_json(args.json, _finite(results), indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
