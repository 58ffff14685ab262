"""``samstream train --config FILE [--set key=value ...]``: train or fine-tune a model.

Under ``torchrun --nproc_per_node N -m samstream train ...`` each process trains one replica
(DistributedDataParallel). Starting again with the same ``output_dir`` resumes the run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_RUNTIME, CliError


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train or fine-tune a model (resumes an interrupted run)")
    p.add_argument("--config", type=Path, default=None, help="run config (YAML or JSON); default: the built-in defaults")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set steps=200 --set optimizer.lr=1e-4 (repeatable)",
    )
    p.add_argument("--init", default=None, help="start from this checkpoint (a model name or a file); same as --set model.init=...")
    p.add_argument("--output-dir", type=Path, default=None, help="where the run writes (same as --set output_dir=...)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..training.config import TrainConfigError, load_train_config
    from ..training.trainer import Trainer, TrainingDivergedError

    overrides = list(args.overrides)
    if args.init is not None:
        overrides.append(f"model.init={args.init}")
    if args.output_dir is not None:
        overrides.append(f"output_dir={args.output_dir}")
    if args.config is not None and not args.config.is_file():
        raise CliError(f"--config: file not found: {args.config}")
    try:
        config = load_train_config(args.config, overrides)
    except (TrainConfigError, ValueError) as exc:
        raise CliError(str(exc)) from None
    try:
        result = Trainer(config).run()
    except TrainingDivergedError as exc:
        raise CliError(f"training stopped: {exc}", EXIT_RUNTIME) from None
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from None
    print(f"trained {result.steps} steps -> {result.final_dir} (model.pt, model.yaml, model.safetensors)")
    return 0
