"""samstream's video tracking on a GPU against the reference sam2 1.1.0, in one run.

What is measured, per model (default ``sam2.1_hiera_tiny`` and ``sam2.1_hiera_base_plus`` at
1024 px, seeded random weights: ``bench_image.perturb_``) and per object count (default 1
and 5; objects are batched, one forward per frame for all of them):

- samstream ``bf16``: eager, inside ``torch.autocast("cuda", dtype=torch.bfloat16)``;
- samstream ``bf16+compile``: :func:`samstream.accel.compile_model` of the parts with fixed
  shapes (``VIDEO_PARTS``: image encoder, memory encoder, mask decoder) plus the memory
  attention compiled with ``dynamic=True`` (its memory grows for the first frames);
- samstream ``bf16+compile+graphs``: image encoder and mask decoder compiled; the memory
  attention and the memory encoder replayed from CUDA graphs, one per input signature
  (shapes, dtypes, other arguments), captured the second time a signature is seen, so once
  the memory bank is full (a fixed memory size) every frame replays the same graph;
- the reference ``ref bf16`` (``build_sam2_video_predictor``) and ``ref vos_optimized``
  (``vos_optimized=True``: its components compiled with ``mode="max-autotune"``), same
  weights, same frames, same prompts, same autocast.

Each implementation runs the propagation twice; the first run (compilation, graph capture)
is reported as "first run s", the second is timed frame by frame (device synchronized after
each frame) and its frames per second come from the median over the frames after the memory
bank is full. FLOPs per frame are counted (``torch.utils.flop_counter``, attention included)
on the last frame of an eager samstream run; with a bf16 matrix product of ``--peak-size``
timed on the same GPU they give the fraction of the GPU's bf16 peak each implementation
reaches. Agreement: the fraction of mask pixels (logits > 0) equal to samstream bf16 eager.

A time budget (``--budget-s``, default 540) keeps the run inside a 10-minute loan: a case
that would start too late is skipped and listed as skipped.

    python benchmarks/gpu/bench_gpu.py --json out.json               # on a CUDA machine
    python benchmarks/gpu/bench_gpu.py --device cpu --quick          # the same code paths, tiny sizes
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import statistics
import sys
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HYDRA_FULL_ERROR", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils._pytree import tree_flatten, tree_unflatten  # noqa: E402

BENCHMARKS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCHMARKS))
import bench_image  # noqa: E402
import bench_video  # noqa: E402

OURS = ("fp32", "bf16", "bf16+compile", "bf16+compile+graphs")
REFERENCE = ("ref bf16", "ref vos_optimized")
# in the order run (per model): a case that would start after the budget is skipped
DEFAULT_VARIANTS = ("bf16", "ref bf16", "bf16+compile+graphs", "ref vos_optimized", "bf16+compile")
# seconds a case needs at least, so that it is not started when less is left of the budget
RESERVE_S = {"fp32": 20, "bf16": 20, "bf16+compile": 90, "bf16+compile+graphs": 90, "ref bf16": 20, "ref vos_optimized": 150}


@dataclass
class CaseResult:
    """One implementation on one model and object count."""

    model: str
    objects: int
    impl: str
    fps: float | None = None
    ms_per_frame: float | None = None
    first_run_s: float | None = None
    agreement: float | None = None
    tflops: float | None = None
    peak_fraction: float | None = None
    note: str = ""
    graphs: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- device helpers


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast_for(impl: str, device: torch.device):
    if impl == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def matmul_peak_tflops(device: torch.device, size: int, repeats: int = 10) -> float:
    """Median bf16 throughput of an [size x size] @ [size x size] product on ``device``, TFLOP/s."""
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16, generator=gen)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16, generator=gen)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e12


class GraphedForward:
    """A module's forward replayed from CUDA graphs, one per call signature (pytree structure,
    tensor shapes / dtypes / devices, the other arguments, the autocast state).

    A signature seen for the first time runs eagerly; the second time it is captured (after a
    warm-up on a side stream), then replayed: inputs copied into the graph's buffers, outputs
    cloned out of them (callers may keep them: the memory bank does). Outputs must be tensors
    in lists, tuples or dicts."""

    def __init__(self, forward) -> None:
        self.forward = forward
        self.seen: Counter = Counter()
        self.graphs: dict = {}
        self.captures = 0
        self.replays = 0

    @staticmethod
    def _leaf_key(leaf):
        if isinstance(leaf, torch.Tensor):
            return ("tensor", tuple(leaf.shape), leaf.dtype, str(leaf.device))
        try:
            hash(leaf)
            return leaf
        except TypeError:
            return ("id", id(leaf))

    def __call__(self, *args, **kwargs):
        leaves, spec = tree_flatten((args, kwargs))
        key = (
            str(spec),
            tuple(self._leaf_key(leaf) for leaf in leaves),
            torch.is_autocast_enabled("cuda"),
            torch.get_autocast_dtype("cuda"),
        )
        self.seen[key] += 1
        if self.seen[key] == 1:
            return self.forward(*args, **kwargs)
        entry = self.graphs.get(key)
        if entry is None:
            entry = self.graphs[key] = self._capture(leaves, spec)
        graph, static_in, static_out, out_spec = entry
        for buffer, leaf in zip(static_in, leaves):
            if isinstance(leaf, torch.Tensor):
                buffer.copy_(leaf)
        graph.replay()
        self.replays += 1
        return tree_unflatten([t.clone() for t in static_out], out_spec)

    def _capture(self, leaves, spec):
        static_in = [leaf.clone() if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves]
        args, kwargs = tree_unflatten(static_in, spec)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.forward(*args, **kwargs)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        enabled = torch.is_autocast_enabled("cuda")
        dtype = torch.get_autocast_dtype("cuda")
        # the autocast weight cache must not hand tensors made inside the capture to later calls
        with torch.autocast("cuda", dtype=dtype, enabled=enabled, cache_enabled=False), torch.cuda.graph(graph):
            out = self.forward(*args, **kwargs)
        out_leaves, out_spec = tree_flatten(out)
        if not all(isinstance(t, torch.Tensor) for t in out_leaves):
            raise TypeError(f"CUDA graphs: outputs must be tensors, got {sorted({type(t).__name__ for t in out_leaves})}")
        self.captures += 1
        return graph, static_in, out_leaves, out_spec


# --------------------------------------------------------------------------- models


def model_config(name: str, image_size: int | None):
    """The config of a preset or YAML, at ``image_size`` when given, as the reference's video
    builder sets it (apply_postprocessing)."""
    from samstream.build import postprocessing_config, resolve_config

    config, _ = resolve_config(name)
    if image_size:
        config = replace(config, image_size=image_size)
    return postprocessing_config(config, for_video=True)


def build_ours(name: str, image_size: int | None, seed: int, device: torch.device):
    """Seeded random weights (the same every call), on ``device``, the CPU backend on CPU."""
    from samstream.accel import apply_cpu_backend
    from samstream.modeling.sam2 import SAM2Model

    torch.manual_seed(seed)
    model = SAM2Model(model_config(name, image_size))
    bench_image.perturb_(model, seed)
    model = model.to(device).eval()
    if device.type == "cpu":
        apply_cpu_backend(model)
    return model


def prepare_ours(model, impl: str, device: torch.device, compile_backend: str) -> list[GraphedForward]:
    """Apply an implementation's speed-ups to ``model`` in place; returns the CUDA-graph wrappers."""
    from samstream.accel import VIDEO_PARTS, compile_model

    graphed: list[GraphedForward] = []
    if impl == "bf16+compile":
        compile_model(model, parts=VIDEO_PARTS, backend=compile_backend)
        compile_model(model, parts=("memory_attention",), dynamic=True, backend=compile_backend)
    elif impl == "bf16+compile+graphs":
        if device.type != "cuda":
            raise RuntimeError("CUDA graphs need a CUDA device")
        compile_model(model, parts=("image_encoder", "sam_mask_decoder"), backend=compile_backend)
        for part in (model.memory_attention, model.memory_encoder):
            wrapper = GraphedForward(part.forward)
            part.forward = wrapper  # an instance attribute of this benchmark's model only
            graphed.append(wrapper)
    return graphed


def ours_predictor(model):
    from samstream.compat import SAM2VideoPredictor
    from samstream.video.predictor import VideoPredictorOptions

    return SAM2VideoPredictor(model, VideoPredictorOptions(fill_hole_area=0))


def reference_predictor(name: str, image_size: int | None, state_dict: dict, device: torch.device, vos: bool):
    from sam2.build_sam import build_sam2_video_predictor

    overrides = [f"++model.image_size={image_size}"] if image_size else []
    predictor = build_sam2_video_predictor(
        bench_image.reference_config_name(name),
        None,
        device=str(device),
        vos_optimized=vos,
        hydra_overrides_extra=overrides,
    )
    predictor.load_state_dict(state_dict, strict=True)
    predictor.fill_hole_area = 0  # its hole filling needs a CUDA extension the wheel may lack; off in both
    return predictor.eval()


def is_preset(name: str) -> bool:
    return not name.endswith((".yaml", ".yml"))


# --------------------------------------------------------------------------- timing


def propagate_once(predictor, folder: Path, prompts: list[dict], impl: str, device: torch.device, flops: bool = False):
    """init_state + prompts + the whole propagation. Returns (per-frame seconds, masks per frame
    [N, H, W] bool, FLOPs of the last frame or None)."""
    from torch.utils.flop_counter import FlopCounterMode

    times, masks, last_flops = [], [], None
    with torch.inference_mode(), autocast_for(impl, device), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = predictor.init_state(str(folder))
        for obj_id, prompt in enumerate(prompts, start=1):
            predictor.add_new_points_or_box(state, frame_idx=0, obj_id=obj_id, **prompt)
        frames = bench_video._propagate(predictor, state, None)
        while True:
            counter = FlopCounterMode(display=False) if flops else contextlib.nullcontext()
            synchronize(device)
            start = time.perf_counter()
            try:
                with counter:
                    _, _, logits = next(frames)
            except StopIteration:
                break
            synchronize(device)
            times.append(time.perf_counter() - start)
            masks.append((logits[:, 0] > 0).cpu().numpy())
            if flops:
                last_flops = counter.get_total_flops()
    return times, masks, last_flops


def time_case(predictor, folder, prompts, impl, device, steady_from: int) -> tuple[float, list[float], list]:
    """(first run seconds, steady per-frame seconds of the second run, its masks)."""
    start = time.perf_counter()
    propagate_once(predictor, folder, prompts, impl, device)
    first = time.perf_counter() - start
    times, masks, _ = propagate_once(predictor, folder, prompts, impl, device)
    steady = times[1:][steady_from:] or times[1:] or times  # frame 0 is the prompted frame
    return first, steady, masks


def agreement(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    same = sum(int((x == y).sum()) for x, y in zip(a, b))
    return same / sum(x.size for x in a)


# --------------------------------------------------------------------------- the run


def reference_version() -> str | None:
    """The installed reference package's version when its video builder imports, else None."""
    try:
        import sam2.build_sam  # noqa: F401
    except Exception:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sam2")
    except PackageNotFoundError:
        return "installed"


def machine(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, memory_gib=round(props.total_memory / 2**30, 1), capability=f"{props.major}.{props.minor}")
    else:
        info.update(cpu=platform.processor() or platform.machine(), threads=torch.get_num_threads())
    info["reference"] = reference_version()
    return info


def save(results: dict, path: Path | None) -> None:
    """The results so far as JSON (atomically): a run stopped by its time limit leaves them."""
    if path is None:
        return
    from samstream.io.atomic import atomic_write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, _jsonable(results), indent=2)


def run(args) -> dict:
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # as the reference's benchmark sets it
        torch.backends.cudnn.allow_tf32 = True
    t0 = time.perf_counter()
    results: dict = {"machine": machine(device), "settings": vars(args).copy(), "cases": [], "skipped": []}
    results["settings"]["clip"] = str(args.clip) if args.clip else None
    peak = matmul_peak_tflops(device, args.peak_size)
    results["bf16_matmul_tflops"] = peak
    print(f"bf16 matmul {args.peak_size}^3: {peak:.1f} TFLOP/s", flush=True)

    folder, width, height = clip_folder(args)
    with_ref = results["machine"]["reference"] is not None
    for name in args.models:
        ours_eager = build_ours(name, args.image_size, args.seed, device)
        state_dict = ours_eager.state_dict()
        baseline: dict[int, list] = {}
        flops: dict[int, float | None] = {}
        for impl in args.variants:
            if impl in REFERENCE and not (with_ref and is_preset(name)):
                results["skipped"].append(f"{name} {impl}: the reference package is not importable or the model is not a preset")
                continue
            if impl == "bf16+compile+graphs" and device.type != "cuda":
                results["skipped"].append(f"{name} {impl}: CUDA graphs need a CUDA device")
                continue
            if time.perf_counter() - t0 + RESERVE_S[impl] * args.reserve_scale > args.budget_s:
                results["skipped"].append(f"{name} {impl}: time budget ({args.budget_s:.0f} s)")
                continue
            try:
                predictor, graphed = make_predictor(args, name, impl, device, ours_eager, state_dict)
            except Exception as exc:  # one failing implementation must not end the run
                results["skipped"].append(f"{name} {impl}: {type(exc).__name__}: {exc}"[:300])
                continue
            for count in args.objects:
                case = CaseResult(model=name, objects=count, impl=impl)
                prompts = bench_video.prompts_for(width, height, count)
                try:
                    if impl == "bf16" and count not in flops:
                        _, _, flops[count] = propagate_once(predictor, folder, prompts, impl, device, flops=True)
                    case.first_run_s, steady, masks = time_case(predictor, folder, prompts, impl, device, args.steady_from)
                except Exception as exc:
                    case.note = f"{type(exc).__name__}: {exc}"[:300]
                    results["cases"].append(case)
                    save(results, args.json)
                    print(f"  {name} {count} obj {impl}: failed: {case.note}", flush=True)
                    continue
                case.ms_per_frame = 1e3 * statistics.median(steady)
                case.fps = 1e3 / case.ms_per_frame
                if impl == "bf16":
                    baseline[count] = masks
                if count in baseline and impl != "bf16":
                    case.agreement = agreement(masks, baseline[count])
                if flops.get(count):
                    case.tflops = flops[count] * case.fps / 1e12
                    case.peak_fraction = case.tflops / peak
                case.graphs = {"captures": sum(g.captures for g in graphed), "replays": sum(g.replays for g in graphed)}
                results["cases"].append(case)
                save(results, args.json)
                print(f"  {name} {count} obj {impl:<20} {case.fps:8.2f} fps (first run {case.first_run_s:.1f} s)", flush=True)
            del predictor
            cleanup(device)
        results.setdefault("flops_per_frame", {})[name] = {str(k): v for k, v in flops.items()}
        del ours_eager
        cleanup(device)
    results["seconds"] = time.perf_counter() - t0
    save(results, args.json)
    return results


def make_predictor(args, name, impl, device, ours_eager, state_dict):
    """The predictor for one implementation, and its CUDA-graph wrappers (samstream only)."""
    if impl in REFERENCE:
        return reference_predictor(name, args.image_size, state_dict, device, vos=impl == "ref vos_optimized"), []
    if impl in ("fp32", "bf16"):
        return ours_predictor(ours_eager), []
    model = build_ours(name, args.image_size, args.seed, device)
    graphed = prepare_ours(model, impl, device, args.compile_backend)
    return ours_predictor(model), graphed


def cleanup(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    torch._dynamo.reset()


def clip_folder(args) -> tuple[Path, int, int]:
    """The JPEG folder of the clip: ``--clip`` (prepared where the internet is), else the first
    ``--frames`` frames of bike.mp4 through bench_video (synthetic frames when it is not at hand)."""
    from PIL import Image

    if args.clip is not None:
        folder = Path(args.clip)
        if not (folder / "00000.jpg").is_file():
            raise SystemExit(f"--clip {folder}: no 00000.jpg in it")
        names = sorted(folder.glob("*.jpg"))[: args.frames]
        if len(names) < args.frames:
            raise SystemExit(f"--clip {folder}: {len(names)} frames, --frames asks for {args.frames}")
        if len(list(folder.glob("*.jpg"))) > args.frames:  # a folder of exactly --frames frames
            sub = args.cache / f"{folder.name}_first{args.frames}"
            sub.mkdir(parents=True, exist_ok=True)
            for path in names:
                target = sub / path.name
                if not target.exists():
                    target.write_bytes(path.read_bytes())
            folder = sub
    else:
        folder = synthetic_clip(args.cache, args.frames)
    with Image.open(folder / "00000.jpg") as im:
        width, height = im.size
    return folder, width, height


def synthetic_clip(cache: Path, frames: int) -> Path:
    """bench_video's synthetic frames as a JPEG folder (no network, no PyAV)."""
    from PIL import Image

    folder = cache / f"synthetic_n{frames}"
    if len(list(folder.glob("*.jpg"))) != frames:
        folder.mkdir(parents=True, exist_ok=True)
        for i, rgb in enumerate(bench_video.synthetic_frames(frames)):
            Image.fromarray(rgb).save(folder / f"{i:05d}.jpg", quality=95)
    return folder


# --------------------------------------------------------------------------- report


def print_table(results: dict) -> None:
    m = results["machine"]
    where = m.get("gpu") or f"{m.get('cpu')} ({m.get('threads')} threads)"
    print(
        f"\n{where}, torch {m['torch']}, reference sam2 {m['reference'] or 'not installed'}; "
        f"bf16 matmul {results['bf16_matmul_tflops']:.1f} TFLOP/s measured"
    )
    header = (
        f"{'model':<24}{'obj':>4}  {'implementation':<21}{'fps':>9}{'ms/frame':>10}{'vs ref':>8}{'vs vos':>8}"
        f"{'first s':>9}{'TFLOP/s':>9}{'% peak':>8}{'agree':>8}"
    )
    print(header)
    print("-" * len(header))
    cases = results["cases"]
    fps_of = {(c.model, c.objects, c.impl): c.fps for c in cases if c.fps}
    for c in cases:
        if c.fps is None:
            print(f"{c.model:<24}{c.objects:>4}  {c.impl:<21}  failed: {c.note[:80]}")
            continue
        ref = fps_of.get((c.model, c.objects, "ref bf16"))
        vos = fps_of.get((c.model, c.objects, "ref vos_optimized"))
        cells = [
            f"{c.fps:9.2f}",
            f"{c.ms_per_frame:10.2f}",
            f"{c.fps / ref:7.2f}x" if ref else f"{'-':>8}",
            f"{c.fps / vos:7.2f}x" if vos else f"{'-':>8}",
            f"{c.first_run_s:9.1f}",
            f"{c.tflops:9.2f}" if c.tflops is not None else f"{'-':>9}",
            f"{100 * c.peak_fraction:7.2f}%" if c.peak_fraction is not None else f"{'-':>8}",
            f"{100 * c.agreement:7.2f}%" if c.agreement is not None else f"{'-':>8}",
        ]
        print(f"{c.model:<24}{c.objects:>4}  {c.impl:<21}" + "".join(cells))
    for line in results["skipped"]:
        print(f"skipped: {line}")
    print(f"goal (issue 15): >= 1.5x vos_optimized at 1 object, >= 3x at 5 objects; total {results['seconds']:.0f} s")


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --quick: a check of the code paths)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: 256 px, 4 frames, 1 and 2 objects, small matmul")
    parser.add_argument("--models", default=None, help="comma-separated presets or YAML files (default: tiny, base_plus)")
    parser.add_argument("--image-size", type=int, default=None, help="model input size (default: the model's; --quick: 256)")
    parser.add_argument("--objects", default=None, help="comma-separated object counts (default 1,5; --quick 1,2)")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"comma-separated of {', '.join(OURS + REFERENCE)}")
    parser.add_argument("--frames", type=int, default=None, help="frames of the clip (default 48; --quick 4)")
    parser.add_argument("--steady-from", type=int, default=None, help="tracked frames left out of the fps (default 16; --quick 0)")
    parser.add_argument("--clip", type=Path, default=None, help="a JPEG folder (00000.jpg ...); default: synthetic frames")
    parser.add_argument("--peak-size", type=int, default=None, help="side of the bf16 matmul (default 8192; --quick 512)")
    parser.add_argument("--compile-backend", default=None, help="torch.compile backend (default inductor; --quick on CPU: eager)")
    parser.add_argument("--budget-s", type=float, default=540.0, help="no case is started after this many seconds")
    parser.add_argument("--reserve-scale", type=float, default=None, help="scale of the per-case time reserve (--quick: 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("SAMSTREAM_BENCH_CACHE", "/tmp/samstream-bench")))
    parser.add_argument("--json", type=Path, default=None, help="write the results here (default: $OUT/bench_gpu.json when OUT is set)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.models = [m for m in (args.models or ("sam2.1_hiera_tiny" if quick else "sam2.1_hiera_tiny,sam2.1_hiera_base_plus")).split(",") if m]
    args.objects = [int(c) for c in (args.objects or ("1,2" if quick else "1,5")).split(",") if c.strip()]
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in args.variants if v not in OURS + REFERENCE]
    if bad:
        parser.error(f"--variants: unknown {bad}; choose from {', '.join(OURS + REFERENCE)}")
    if "bf16" not in args.variants:
        args.variants.insert(0, "bf16")  # the baseline of agreement and FLOPs
    args.image_size = args.image_size or (256 if quick else None)
    args.frames = args.frames or (4 if quick else 48)
    args.steady_from = args.steady_from if args.steady_from is not None else (0 if quick else 16)
    args.peak_size = args.peak_size or (512 if quick else 8192)
    args.reserve_scale = args.reserve_scale if args.reserve_scale is not None else (0.0 if quick else 1.0)
    if args.compile_backend is None:
        args.compile_backend = "eager" if (quick and args.device == "cpu") else "inductor"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available here (use --device cpu --quick to check the script)")
    if args.json is None and os.environ.get("OUT"):
        args.json = Path(os.environ["OUT"]) / "bench_gpu.json"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    print_table(results)
    if args.json:
        print(f"wrote {args.json}")
    return 0


def _jsonable(value):
    """Case results as dicts, paths and other objects as strings, for the JSON file."""
    if isinstance(value, CaseResult):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
