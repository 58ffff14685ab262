"""``samstream export onnx``: a model as ONNX graphs that run without PyTorch (:mod:`samstream.onnx`).

``export`` dispatches on its format (``onnx`` today); the folder gets one ``.onnx`` per graph,
``constants.npz`` and ``manifest.json`` (written last).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .common import (
    ATOMIC_LEFTOVERS,
    EXIT_RUNTIME,
    CliError,
    add_model_arguments,
    add_overwrite_argument,
    check_output_dir,
    load_model_from_args,
    remove_if_new_and_empty,
)

#: what an earlier export left in its folder (removed by --overwrite)
EARLIER_OUTPUTS = (r".+\.onnx", r"manifest\.json", r"constants\.npz", ATOMIC_LEFTOVERS)


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a model for another runtime (onnx)")
    formats = p.add_subparsers(dest="format", required=True)
    onnx = formats.add_parser(
        "onnx",
        help="the image encoder, prompt decoder, memory attention and memory encoder as ONNX graphs",
        description="Export every graph image prediction and video tracking need; run them with samstream.onnx "
        "(ONNX Runtime, numpy and PIL: no PyTorch needed; see the README's ONNX export section).",
    )
    add_model_arguments(onnx)
    onnx.add_argument("--out", type=Path, required=True, help="folder for the graphs and manifest.json")
    onnx.add_argument("--opset", type=int, default=18, help="ONNX opset, >= 17 (default: %(default)s)")
    onnx.add_argument("--quantize", choices=("int8",), help="int8 dynamic quantization of the weights")
    add_overwrite_argument(onnx)
    onnx.set_defaults(run=run_onnx)


def run_onnx(args: argparse.Namespace) -> int:
    if args.opset < 17:
        raise CliError(f"--opset must be >= 17, got {args.opset}")
    if args.bf16:
        raise CliError("--bf16 does not apply to export (the graphs are float32; see --quantize)")
    if args.int8:
        raise CliError("--int8 does not apply to export (use --quantize int8 for int8 graphs)")
    if str(args.device) != "cpu":
        raise CliError(f"--device {args.device}: export runs on cpu")
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ModuleNotFoundError as exc:
        raise CliError(
            f"export onnx needs the optional package '{exc.name}': install it with `pip install 'samstream[export]'`",
            EXIT_RUNTIME,
        ) from None
    if args.quantize:
        try:
            import onnxruntime  # noqa: F401
        except ModuleNotFoundError:
            raise CliError("--quantize needs onnxruntime: `pip install 'samstream[onnx]'`", EXIT_RUNTIME) from None
    existed = check_output_dir(args.out, flag="--out", overwrite=args.overwrite, earlier_outputs=EARLIER_OUTPUTS)
    model = load_model_from_args(args, for_video=True, accel=None)
    from ..export.onnx import export_onnx

    start = time.perf_counter()
    try:
        manifest = export_onnx(model, args.out, opset=args.opset, quantize=args.quantize)
    except BaseException:
        remove_if_new_and_empty(args.out, existed)
        raise
    size = sum((args.out / g.file).stat().st_size for g in manifest.graphs.values())
    print(
        f"wrote {len(manifest.graphs)} graphs ({size / 2**20:.1f} MiB, opset {manifest.opset}"
        f"{', int8' if manifest.quantization else ''}) and manifest.json to {args.out} "
        f"in {time.perf_counter() - start:.0f} s"
    )
    return 0
