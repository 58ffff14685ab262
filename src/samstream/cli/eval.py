"""``samstream eval --gt DIR --pred DIR [--layout ...] [--csv FILE]``: J, F and J&F."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_RUNTIME, CliError


def add_parser(sub) -> None:
    from ..eval.layouts import LAYOUTS

    p = sub.add_parser("eval", help="score predicted masks against the ground truth (J, F, J&F)")
    p.add_argument("--gt", type=Path, required=True, help="ground truth: the dataset root or its annotation folder")
    p.add_argument("--pred", type=Path, required=True, help="predictions, one folder per video")
    p.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="davis",
        help="scoring convention: davis (first and last frame left out), sav (annotated frames only, "
        "objects from their first appearance), ytvos (objects from their first frame; G with meta.json) "
        "(default: %(default)s)",
    )
    p.add_argument("--csv", type=Path, default=None, help="also write the scores to this CSV file")
    p.add_argument("--meta", type=Path, default=None, help="YouTube-VOS meta.json (default: GT/meta.json)")
    p.add_argument("--videos", default=None, help="comma-separated video names (default: every ground-truth video)")
    p.add_argument("--workers", type=int, default=1, help="videos scored in parallel processes (default: %(default)s)")
    p.add_argument("--no-per-object", action="store_true", help="print one row per video only")
    p.set_defaults(run=run)


def evaluate_from_args(args: argparse.Namespace, gt: Path, pred: Path):
    from ..eval.evaluate import evaluate_dataset
    from ..eval.layouts import LayoutError

    names = [n for n in args.videos.split(",") if n] if args.videos else None
    if args.workers < 1:
        raise CliError(f"--workers must be >= 1, got {args.workers}")
    try:
        return evaluate_dataset(gt, pred, args.layout, videos=names, meta=args.meta, workers=args.workers)
    except LayoutError as exc:
        raise CliError(str(exc)) from None


def print_report(report, args: argparse.Namespace) -> int:
    from ..eval.report import format_table, write_csv

    print(format_table(report, per_object=not args.no_per_object))
    if args.csv is not None:
        write_csv(report, args.csv)
        print(f"scores -> {args.csv}")
    return EXIT_RUNTIME if report.failed else 0


def run(args: argparse.Namespace) -> int:
    return print_report(evaluate_from_args(args, args.gt, args.pred), args)
