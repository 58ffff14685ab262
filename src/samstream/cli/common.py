"""What the subcommands share: model selection flags, parsing of prompt flags, error reporting,
checks of the output path and the device made before the model loads, and signal handling.

Exit codes (the same for every subcommand):

====  =====================================================================
0     success
1     a failure while running (I/O error, decoding error, unexpected error)
2     bad input: arguments, files, config, output path, device
3     the weights are not available (offline and not in the cache)
4     nothing was found to write (``track --everything`` found no object)
5     some inputs were skipped (``everything`` on a folder with unreadable images)
130   interrupted by Ctrl-C (SIGINT); the files written so far are complete
143   terminated by SIGTERM; the files written so far are complete
====  =====================================================================
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import secrets
import signal
import sys
from pathlib import Path
from typing import Iterable, Iterator

EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2
EXIT_NO_WEIGHTS = 3
EXIT_NOTHING_FOUND = 4
EXIT_PARTIAL = 5
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class CliError(Exception):
    """An error reported to the user as one line, with an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """Raised by the SIGTERM handler so that a terminated run unwinds exactly like Ctrl-C."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While active, SIGTERM raises :class:`Terminated` (writers then close what they hold)."""

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ----------------------------------------------------------------------------------------
# Pixel limit

_PIXEL_SUFFIXES = {"": 1, "k": 1_000, "m": 1_000_000, "mp": 1_000_000, "g": 1_000_000_000}


def parse_max_pixels(text: str) -> int:
    """``--max-pixels`` value: an integer count, or with a suffix (``64M``, ``64MP``, ``1.5G``)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    factor = _PIXEL_SUFFIXES.get(match.group(2).lower()) if match else None
    if match is None or factor is None:
        raise argparse.ArgumentTypeError(f"expected a pixel count such as 64000000 or 64M, got {text!r}")
    value = int(float(match.group(1)) * factor)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def add_max_pixels_argument(parser: argparse.ArgumentParser) -> None:
    from ..image.transforms import DEFAULT_MAX_PIXELS

    parser.add_argument(
        "--max-pixels",
        type=parse_max_pixels,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help="refuse images and frames with more pixels than this, e.g. 64M or 200000000 "
        "(default: %(default)s); downscale or tile larger images",
    )


# ----------------------------------------------------------------------------------------
# Devices

_DEVICE_PATTERN = re.compile(r"cpu|mps|cuda(?::(\d+))?")


def available_devices() -> list[str]:
    """The devices this machine can run on, e.g. ``['cpu', 'cuda:0 (NVIDIA H200)']``."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def check_device(device, *, name: str = "device"):
    """``device`` (``cpu``, ``cuda``, ``cuda:N``, ``mps`` or a torch.device) as a torch.device
    that exists here; a ValueError naming ``name`` and listing this machine's devices otherwise."""
    import torch

    text = str(device).strip()
    match = _DEVICE_PATTERN.fullmatch(text)
    has = ", ".join(available_devices())
    if match is None:
        raise ValueError(f"{name} {text!r}: expected cpu, cuda, cuda:N or mps; this machine has: {has}")
    if text.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{name} {text!r}: CUDA is not available on this machine; it has: {has}")
        index = int(match.group(1)) if match.group(1) is not None else 0
        if index >= count:
            raise ValueError(f"{name} {text!r}: this machine has {count} CUDA device(s): {has}")
    if text == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{name} 'mps': Apple's MPS backend is not available on this machine; it has: {has}")
    return torch.device(text)


# ----------------------------------------------------------------------------------------
# Output paths, checked before the model loads


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest existing ancestor."""
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _probe_writable(folder: Path, flag: str, target: Path) -> None:
    """Create and delete a file in ``folder`` (works on read-only file systems and as root)."""
    probe = folder / f".samstream-probe-{secrets.token_hex(4)}"
    try:
        with open(probe, "xb"):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CliError(f"{flag} {target}: cannot write to the folder {folder}: {reason}") from None
    try:
        os.unlink(probe)
    except OSError:  # pragma: no cover - the file was just created
        pass


def check_output_dir(
    path: Path,
    *,
    flag: str,
    inputs: Iterable[Path] = (),
    overwrite: bool = False,
    earlier_outputs: Iterable[str] = (),
) -> bool:
    """Refuse an output folder that cannot be used, before anything runs.

    Refused: a path that is (or lies under) an existing file; a folder that cannot be
    written; a folder equal to one of ``inputs`` or inside an input folder (or one that
    contains an input folder); a folder that already holds files, unless ``overwrite``.
    With ``overwrite``, the entries of the folder whose names match one of the regular
    expressions ``earlier_outputs`` (an earlier run's outputs) are removed so old and new
    results cannot mix; no other file is touched, and never an input.  Nothing is created.

    Returns whether the folder exists already (so a failed run can remove one it created).
    """
    import shutil

    path = Path(path)
    resolved = path.resolve()
    sources = [Path(source).resolve() for source in inputs]
    for source in sources:
        if resolved == source:
            raise CliError(f"{flag} {path}: is the input itself; choose another output folder")
        if source.is_dir() and source in resolved.parents:
            raise CliError(f"{flag} {path}: lies inside the input folder {source}; its outputs would be read as input")
        if source.is_dir() and resolved in source.parents:
            raise CliError(f"{flag} {path}: contains the input folder {source}; choose another output folder")
    existing = _nearest_existing(path)
    if existing != path and not existing.is_dir():
        raise CliError(f"{flag} {path}: {existing} is a file, so no folder can be made under it")
    if path.exists():
        if not path.is_dir():
            raise CliError(f"{flag} {path}: exists and is a file, not a folder")
        entries = [e for e in path.iterdir() if not e.name.startswith(".samstream-probe-")]
        if entries and not overwrite:
            raise CliError(
                f"{flag} {path}: the folder is not empty ({len(entries)} {'entry' if len(entries) == 1 else 'entries'}, maybe an earlier run); "
                "pass --overwrite to replace that run's outputs, or choose a new folder"
            )
    _probe_writable(existing, flag, path)
    if overwrite and path.is_dir():
        patterns = [re.compile(p) for p in earlier_outputs]
        for old in sorted(path.iterdir()):
            if not any(p.fullmatch(old.name) for p in patterns):
                continue
            mine = old.resolve()
            if any(mine == source or mine in source.parents for source in sources):
                continue  # never delete an input
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            else:
                old.unlink()
    return path.is_dir()


def remove_if_new_and_empty(path: Path, existed: bool) -> None:
    """Undo the creation of an output folder when a run fails before writing anything."""
    if existed:
        return
    try:
        Path(path).rmdir()
    except OSError:  # not empty, or never created
        pass


#: Temporary files of an interrupted atomic write (``samstream.io.atomic``).
ATOMIC_LEFTOVERS = r"\..+\.[0-9a-f]{12}\.tmp"


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an output folder that is not empty, replacing the outputs of an earlier run",
    )


def add_output_folder_arguments(parser: argparse.ArgumentParser, flag: str) -> None:
    """The required output folder ``flag`` (``--out`` or ``--output-dir``), then ``--overwrite``."""
    parser.add_argument(flag, type=Path, required=True, help="output folder (new or empty; see --overwrite)")
    add_overwrite_argument(parser)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    which = group.add_mutually_exclusive_group()
    which.add_argument(
        "--model",
        default="sam2.1_hiera_tiny",
        help="official model name, e.g. sam2.1_hiera_tiny, sam2.1_hiera_large, sam2_hiera_b+, or the bundled "
        "samstream-synthetic (works offline) (default: %(default)s)",
    )
    which.add_argument("--config", type=Path, help="a model config in the reference YAML format (needs --checkpoint)")
    group.add_argument(
        "--checkpoint",
        type=Path,
        help="weights file (.pt or .safetensors); default: $SAMSTREAM_CHECKPOINT, the cache, or a download",
    )
    group.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default: %(default)s)")
    group.add_argument(
        "--bf16", action="store_true", help="run under torch.autocast with bfloat16 (faster on AMX CPUs and GPUs)"
    )
    group.add_argument(
        "--int8",
        action="store_true",
        help="int8 linear layers (dynamic quantization, CPU only): faster, approximate masks",
    )


def load_model_from_args(
    args: argparse.Namespace, *, for_video: bool = False, apply_postprocessing: bool = True, accel: str | None = "auto"
):
    """Build the model the flags ask for; errors become :class:`CliError`. Without
    ``apply_postprocessing`` the model keeps its config as written (no inference-time extras);
    ``accel`` goes to :func:`samstream.build.build_model` (None: the plain modules, for export);
    ``--int8`` asks it for int8 linear layers."""
    from ..build import build_model
    from ..checkpoint import CheckpointError
    from ..config import ConfigError
    from ..download import CheckpointNotAvailableError, resolve_checkpoint

    device = device_from_args(args)
    quantize = "int8" if getattr(args, "int8", False) else None
    try:
        if args.config is not None:
            if args.checkpoint is None:
                raise CliError("--config needs --checkpoint (the weights that go with that config)")
            return build_model(
                args.config,
                args.checkpoint,
                device=device,
                for_video=for_video,
                apply_postprocessing=apply_postprocessing,
                accel=accel,
                quantize=quantize,
            )
        checkpoint = resolve_checkpoint(args.model, args.checkpoint)
        return build_model(
            args.model,
            checkpoint,
            device=device,
            for_video=for_video,
            apply_postprocessing=apply_postprocessing,
            accel=accel,
            quantize=quantize,
        )
    except CheckpointNotAvailableError as exc:
        raise CliError(str(exc), EXIT_NO_WEIGHTS) from None
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None


def device_from_args(args: argparse.Namespace):
    """``--device`` checked against this machine (:func:`check_device`) and against ``--int8``
    (CPU only); CliError otherwise."""
    if getattr(args, "int8", False) and str(args.device).strip() != "cpu":
        raise CliError(f"--int8 runs on the CPU only, got --device {args.device}")
    try:
        return check_device(args.device, name="--device")
    except ValueError as exc:
        raise CliError(str(exc)) from None


def model_config_from_args(args: argparse.Namespace):
    """The model's typed config (YAML validated, preset resolved) without building the model."""
    from ..build import resolve_config
    from ..config import ConfigError

    try:
        config, _ = resolve_config(args.config if args.config is not None else args.model)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        flag = "--config" if args.config is not None else "--model"
        raise CliError(f"{flag}: {exc}") from None
    return config


def check_model_flags(args: argparse.Namespace):
    """The model flags checked before the model loads, in this order: the files
    (:func:`check_model_files`), the device (:func:`device_from_args`) and the config
    (:func:`model_config_from_args`, which is returned); CliError otherwise."""
    check_model_files(args)
    device_from_args(args)
    return model_config_from_args(args)


def check_model_files(args: argparse.Namespace) -> None:
    """Check --config / --checkpoint exist (before anything else runs)."""
    if args.config is not None:
        if args.checkpoint is None:
            raise CliError("--config needs --checkpoint (the weights that go with that config)")
        if not Path(args.config).is_file():
            raise CliError(f"--config {args.config}: file not found")
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise CliError(f"--checkpoint {args.checkpoint}: file not found")


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
    import torch

    if getattr(args, "bf16", False):
        device_type = "cuda" if str(args.device).startswith("cuda") else "cpu"
        if device_type == "cpu":
            warn_if_cpu_lacks_bf16()
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@functools.cache
def warn_if_cpu_lacks_bf16() -> bool:
    """Tell the user (stderr, once a process) when this CPU has no bfloat16 matrix kernels, where
    ``--bf16`` is emulated: on a 2-core AVX2 EPYC a bfloat16 matmul ran at 0.2 GFLOP/s against
    145 in float32, and a video frame took 8.7x longer. Returns whether it warned."""
    from ..accel.onednn import probe_onednn

    if probe_onednn().bf16:
        return False
    print(
        "warning: this CPU has no bfloat16 matrix units (no AVX512-BF16 or AMX), so --bf16 is "
        "emulated here and runs many times slower than float32; leave --bf16 off on this machine",
        file=sys.stderr,
    )
    return True


def band_mapping_from_args(args):
    """The :class:`~samstream.io.readers.BandMapping` of ``--bands`` and ``--stretch`` (either
    may be None: the defaults, the first three bands and percentiles 2 and 98)."""
    from ..io.readers import BandMapping

    bands = None
    if args.bands is not None:
        values = parse_floats(args.bands, (1, 3), "--bands")
        if any(v != int(v) for v in values):
            raise CliError(f"--bands {args.bands!r}: band numbers must be whole numbers")
        bands = tuple(int(v) for v in values)
    stretch = BandMapping().stretch if args.stretch is None else tuple(parse_floats(args.stretch, (2,), "--stretch"))
    try:
        return BandMapping(bands=bands, stretch=stretch)
    except ValueError as exc:
        flag = "--bands" if str(exc).startswith("bands") else "--stretch"
        raise CliError(f"{flag}: {exc}") from None
