"""``samstream vos-infer --input DIR --layout {davis,sav,ytvos} --output-dir DIR``: a whole dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import EXIT_NO_WEIGHTS, EXIT_RUNTIME, CliError, add_model_arguments


def add_inference_arguments(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``vos-infer`` and ``benchmark-vos``."""
    from ..eval.layouts import LAYOUTS

    p.add_argument("--input", type=Path, required=True, help="dataset root (e.g. DAVIS/ with JPEGImages/ and Annotations/)")
    p.add_argument("--layout", choices=LAYOUTS, default="davis", help="dataset layout (default: %(default)s)")
    p.add_argument("--videos", default=None, help="comma-separated video names (default: every video)")
    p.add_argument(
        "--per-object-png",
        action="store_true",
        default=None,
        help="write one PNG per object per frame (<obj:03d>/<frame>.png); default: the layout's own format",
    )
    p.add_argument(
        "--track-objects-appearing-later",
        action="store_true",
        help="add each object on the frame where it first appears (YouTube-VOS); default: first annotated frame only",
    )
    add_memory_arguments(p)
    p.add_argument(
        "--apply-postprocessing",
        action="store_true",
        help="dynamic multimask and hole filling as in interactive use (the reference evaluates without them)",
    )
    p.add_argument("--workers", type=int, default=1, help="videos in parallel: processes, or Ray actors with --ray")
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="spread videos over a Ray cluster (ADDRESS, e.g. auto or ray://host:10001; default: a local instance)",
    )
    add_model_arguments(p)


def add_memory_arguments(p: argparse.ArgumentParser) -> None:
    """``--memory NAME`` and ``--lag N`` (shared by ``track``, ``vos-infer`` and ``benchmark-vos``)."""
    p.add_argument(
        "--memory",
        default="default",
        metavar="NAME",
        help="memory strategy: default (the reference), motion, multipath, distractor, motion+distractor; "
        "options after a colon, e.g. multipath:pathways=2 (default: %(default)s)",
    )
    p.add_argument(
        "--lag",
        type=int,
        default=0,
        metavar="N",
        help="fixed-lag output: give frame t once frame t+N is tracked, along the best hypothesis then "
        "(for --memory multipath; default: %(default)s)",
    )


def check_lag(lag: int) -> None:
    if lag < 0:
        raise CliError(f"--lag must be >= 0, got {lag}")


def add_parser(sub) -> None:
    p = sub.add_parser("vos-infer", help="track the annotated objects of every video of a VOS dataset")
    add_inference_arguments(p)
    p.add_argument("--output-dir", type=Path, required=True, help="where predictions go, one folder per video")
    p.set_defaults(run=run)


def model_spec_from_args(args: argparse.Namespace):
    """A :class:`ModelSpec` for the flags, weights resolved once here (not in every worker)."""
    import torch

    from ..build import resolve_config
    from ..config import ConfigError
    from ..eval.runner import ModelSpec
    from ..download import CheckpointNotAvailableError, resolve_checkpoint

    if args.int8 and str(args.device).strip() != "cpu":
        raise CliError(f"--int8 runs on the CPU only, got --device {args.device}")
    if str(args.device).startswith("cuda") and not torch.cuda.is_available():
        raise CliError(f"--device {args.device}: CUDA is not available on this machine")
    try:
        if args.config is not None:
            if args.checkpoint is None:
                raise CliError("--config needs --checkpoint (the weights that go with that config)")
            resolve_config(args.config)
            model, checkpoint = args.config, args.checkpoint
        else:
            model, checkpoint = args.model, resolve_checkpoint(args.model, args.checkpoint)
    except CheckpointNotAvailableError as exc:
        raise CliError(str(exc), EXIT_NO_WEIGHTS) from None
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if not Path(checkpoint).is_file():
        raise CliError(f"--checkpoint {checkpoint}: file not found")
    return ModelSpec(
        model=model,
        checkpoint=Path(checkpoint),
        device=args.device,
        bf16=args.bf16,
        int8=args.int8,
        apply_postprocessing=args.apply_postprocessing,
    )


def list_videos_from_args(args: argparse.Namespace):
    from ..eval.layouts import LayoutError, list_videos

    names = [n for n in args.videos.split(",") if n] if args.videos else None
    try:
        return list_videos(args.input, args.layout, names)
    except LayoutError as exc:
        raise CliError(str(exc)) from None


def check_memory(name: str) -> None:
    """Reject an unknown memory strategy, or bad options of one, before any video runs."""
    from ..video.memory import check_strategy

    try:
        check_strategy(name)
    except ValueError as exc:
        raise CliError(f"--memory {name}: {exc}") from None


def run_inference(args: argparse.Namespace, output_dir: Path, *, progress: bool = True):
    """Run the flags' inference; returns the outcomes (every video, input order)."""
    from ..checkpoint import CheckpointError
    from ..config import ConfigError
    from ..eval.runner import InferenceConfig, run_dataset

    if args.workers < 1:
        raise CliError(f"--workers must be >= 1, got {args.workers}")
    check_memory(args.memory)
    check_lag(args.lag)
    videos = list_videos_from_args(args)
    spec = model_spec_from_args(args)
    config = InferenceConfig(
        output_dir=output_dir,
        layout=args.layout,
        per_object_png=args.per_object_png,
        track_objects_appearing_later=args.track_objects_appearing_later,
        memory=args.memory,
        output_lag=args.lag,
        fill_hole_area=8 if args.apply_postprocessing else 0,
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    if args.ray is not None:
        try:
            from ..eval.ray_runner import run_dataset_ray
        except ImportError as exc:
            raise CliError(f"--ray needs Ray: pip install 'samstream[ray]' ({exc})") from None
        address = None if args.ray == "local" else args.ray
        return run_dataset_ray(videos, spec, config, address=address, actors=args.workers, progress=progress)
    model = None
    if args.workers == 1:
        try:
            model = spec.build()
        except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as exc:
            raise CliError(str(exc)) from None
    return run_dataset(videos, spec, config, workers=args.workers, progress=progress, model=model)


def summarize(outcomes, output_dir: Path) -> int:
    """Print what happened, write ``.samstream/vos_infer_report.json``; exit code 1 if a video failed."""
    from dataclasses import asdict

    from ..eval.runner import MARKER_DIR
    from ..io.atomic import atomic_write_json

    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    atomic_write_json(output_dir / MARKER_DIR / "vos_infer_report.json", [asdict(o) for o in outcomes], indent=1)
    print(f"{counts['done']} video(s) done, {counts['skipped']} already complete, {counts['failed']} failed -> {output_dir}")
    for o in outcomes:
        if o.status == "failed":
            print(f"  {o.video}: {o.error}", file=sys.stderr)
    return EXIT_RUNTIME if counts["failed"] else 0


def run(args: argparse.Namespace) -> int:
    outcomes = run_inference(args, args.output_dir)
    return summarize(outcomes, args.output_dir)
