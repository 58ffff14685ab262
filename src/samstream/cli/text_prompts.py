"""The text-prompt flags shared by ``segment``, ``everything`` and ``track``: ``--text``,
``--detector NAME_OR_PATH`` and the detector's thresholds, checked before anything loads."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from .common import EXIT_NO_WEIGHTS, EXIT_RUNTIME, CliError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def add_text_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("text prompts (needs samstream[text])")
    group.add_argument(
        "--text", metavar="PHRASES", help='what to find, phrases separated by periods, e.g. "cat. dog." (lowercased)'
    )
    group.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        metavar="NAME_OR_PATH",
        help="grounding-dino (IDEA-Research/grounding-dino-tiny), grounding-dino-base, owlv2, owlv2-large, automatic "
        "(SAM's own masks, label 'object'), a Hugging Face model id, or a save_pretrained folder (default: %(default)s)",
    )
    group.add_argument(
        "--box-threshold", type=float, metavar="T", help="minimum detection score (default: 0.35 Grounding DINO, 0.1 OWLv2)"
    )
    group.add_argument(
        "--text-threshold", type=float, metavar="T", help="Grounding DINO: minimum score of a label's tokens (default: 0.25)"
    )


DEFAULT_DETECTOR = "grounding-dino"


def refuse_unused_text_flags(args: argparse.Namespace) -> None:
    """The detector flags without ``--text`` are a mistake: CliError naming them."""
    if args.text is not None:
        return
    given = [flag for flag, used in (
        ("--detector", args.detector != DEFAULT_DETECTOR),
        ("--box-threshold", args.box_threshold is not None),
        ("--text-threshold", args.text_threshold is not None),
    ) if used]
    if given:
        raise CliError(f"{', '.join(given)} only apply{'s' if len(given) == 1 else ''} to text prompts: add --text \"PHRASES.\"")


def check_text_arguments(args: argparse.Namespace) -> tuple[str, ...]:
    """The normalised phrases of ``--text``, with the detector flags checked (CliError otherwise)."""
    from ..detect.base import normalize_phrases

    try:
        phrases = normalize_phrases(args.text, name="--text")
    except ValueError as exc:
        raise CliError(str(exc)) from None
    for flag, value in (("--box-threshold", args.box_threshold), ("--text-threshold", args.text_threshold)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise CliError(f"{flag} must be in [0, 1], got {value:g}")
    check_detector_name(args.detector)
    return phrases


def check_detector_name(name: str) -> None:
    """``--detector``: a registered name, a ``save_pretrained`` folder or a hub id (CliError otherwise)."""
    from ..detect.registry import detector_names

    if name in detector_names():
        return
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise CliError(f"--detector {name}: not a model folder (it needs the config.json that save_pretrained writes)")
        return
    if not _HUB_ID.match(name):
        raise CliError(
            f"--detector {name!r}: no such folder, and not a detector name ({', '.join(detector_names())}) "
            "or a Hugging Face model id (owner/name)"
        )


def proposer_from_args(args: argparse.Namespace, *, sam_model=None, automatic_config=None):
    """The object proposer ``--detector`` names, loaded; errors become :class:`CliError`
    (exit 3 when the model is neither cached nor downloadable)."""
    from ..detect.hub import DetectorLoadError, DetectorNotAvailableError
    from ..detect.registry import DetectorRequest, make_proposer
    from .common import device_from_args

    request = DetectorRequest(
        device=device_from_args(args),
        threshold=args.box_threshold,
        text_threshold=args.text_threshold,
        sam_model=sam_model,
        automatic_config=automatic_config,
    )
    try:
        proposer = make_proposer(args.detector, request)
    except DetectorNotAvailableError as exc:
        raise CliError(str(exc), EXIT_NO_WEIGHTS) from None
    except DetectorLoadError as exc:
        raise CliError(str(exc)) from None
    except ImportError as exc:
        raise CliError(str(exc), EXIT_RUNTIME) from None
    if args.text_threshold is not None and not hasattr(proposer, "text_threshold"):
        raise CliError(f"--text-threshold applies to Grounding DINO; --detector {args.detector} ({proposer.name}) has none")
    return proposer


def needs_sam_model(args: argparse.Namespace) -> bool:
    """Whether the detector runs on the SAM model (so it is made after the model loads)."""
    return args.detector == "automatic"
