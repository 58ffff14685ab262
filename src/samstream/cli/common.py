"""What the subcommands share: model selection flags, parsing of prompt flags, error reporting."""

from __future__ import annotations

import argparse
from pathlib import Path

EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2
EXIT_NO_WEIGHTS = 3


class CliError(Exception):
    """An error reported to the user as one line, with an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    which = group.add_mutually_exclusive_group()
    which.add_argument(
        "--model",
        default="sam2.1_hiera_tiny",
        help="official model name, e.g. sam2.1_hiera_tiny, sam2.1_hiera_large, sam2_hiera_b+ (default: %(default)s)",
    )
    which.add_argument("--config", type=Path, help="a model config in the reference YAML format (needs --checkpoint)")
    group.add_argument(
        "--checkpoint",
        type=Path,
        help="weights file (.pt or .safetensors); default: $SAMSTREAM_CHECKPOINT, the cache, or a download",
    )
    group.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    group.add_argument(
        "--bf16", action="store_true", help="run under torch.autocast with bfloat16 (faster on AMX CPUs and GPUs)"
    )


def load_model_from_args(args: argparse.Namespace, *, for_video: bool = False):
    """Build the model the flags ask for; errors become :class:`CliError`."""
    import torch

    from ..build import build_model
    from ..checkpoint import CheckpointError
    from ..config import ConfigError
    from ..download import CheckpointNotAvailableError, resolve_checkpoint

    device = args.device
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise CliError(f"--device {device}: CUDA is not available on this machine")
    try:
        if args.config is not None:
            if args.checkpoint is None:
                raise CliError("--config needs --checkpoint (the weights that go with that config)")
            return build_model(args.config, args.checkpoint, device=device, for_video=for_video)
        checkpoint = resolve_checkpoint(args.model, args.checkpoint)
        return build_model(args.model, checkpoint, device=device, for_video=for_video)
    except CheckpointNotAvailableError as exc:
        raise CliError(str(exc), EXIT_NO_WEIGHTS) from None
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None


def parse_floats(text: str, count: tuple[int, ...], flag: str) -> list[float]:
    """'1,2,3' -> [1.0, 2.0, 3.0], checking how many values there are."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise CliError(f"{flag} {text!r}: expected comma-separated numbers") from None
    if len(values) not in count:
        want = " or ".join(str(c) for c in count)
        raise CliError(f"{flag} {text!r}: expected {want} comma-separated numbers, got {len(values)}")
    import math

    if not all(math.isfinite(v) for v in values):
        raise CliError(f"{flag} {text!r}: values must be finite")
    return values


def autocast_context(args: argparse.Namespace):
    import contextlib

    import torch

    if getattr(args, "bf16", False):
        device_type = "cuda" if str(args.device).startswith("cuda") else "cpu"
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
