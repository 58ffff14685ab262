"""``samstream benchmark-vos --input DIR``: inference plus evaluation, with speed and memory."""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .common import EXIT_RUNTIME
from .vos_infer import add_inference_arguments, run_inference

# Published J&F of SAM 2.1 (SAM 2 paper / model card), for comparison on the official weights.
PUBLISHED = {
    "sam2.1_hiera_tiny": {"SA-V test": 76.5, "MOSE val": 71.8},
    "sam2.1_hiera_base_plus": {"SA-V test": 78.2, "MOSE val": 73.7},
}


def add_parser(sub) -> None:
    p = sub.add_parser("benchmark-vos", help="run and score a VOS dataset: J&F, frames per second, peak memory")
    add_inference_arguments(p)
    p.add_argument("--output-dir", type=Path, default=None, help="keep the predictions here (default: a temporary folder)")
    p.add_argument("--csv", type=Path, default=None, help="also write the scores to this CSV file")
    p.set_defaults(run=run)


def _peak_memory_mib(device: str, in_process: bool) -> tuple[float, str]:
    """Peak memory of the run in MiB and what was measured."""
    import torch

    if in_process and str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20, "GPU memory allocated by torch"
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20  # kilobytes on Linux, bytes on macOS
    return max(self_kib, child_kib) * scale, "resident memory of the largest process"


def run(args: argparse.Namespace) -> int:
    from .eval import evaluate_from_args, print_report

    temporary = args.output_dir is None
    output = Path(tempfile.mkdtemp(prefix="samstream-vos-")) if temporary else args.output_dir
    try:
        start = time.perf_counter()
        outcomes = run_inference(args, output)
        seconds = time.perf_counter() - start
        frames = sum(o.frames for o in outcomes if o.status == "done")
        failed = [o for o in outcomes if o.status == "failed"]
        for o in failed:
            print(f"  {o.video}: inference failed: {o.error}", file=sys.stderr)
        args.meta, args.no_per_object = None, True
        if not hasattr(args, "videos"):
            args.videos = None
        workers = args.workers
        args.workers = 1
        report = evaluate_from_args(args, args.input, output)
        code = print_report(report, args)
        peak, what = _peak_memory_mib(args.device, in_process=workers == 1 and args.ray is None)
        fps = frames / seconds if seconds > 0 else float("nan")
        if report.objects:
            print(f"J&F {100 * report.jf:.1f}  J {100 * report.j:.1f}  F {100 * report.f:.1f}")
        else:
            print("J&F -: no object had a frame to score")
        print(f"{frames} frames in {seconds:.1f} s: {fps:.2f} frames/s ({workers} worker(s), device {args.device})")
        print(f"peak memory {peak:.0f} MiB ({what})")
        name = getattr(args, "model", None) if args.config is None else None
        if name in PUBLISHED:
            table = ", ".join(f"{k} {v}" for k, v in PUBLISHED[name].items())
            print(f"published J&F for {name}: {table}")
        return EXIT_RUNTIME if failed else code
    finally:
        if temporary:
            shutil.rmtree(output, ignore_errors=True)
