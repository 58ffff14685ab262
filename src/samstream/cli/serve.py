"""``samstream serve [--host 127.0.0.1] [--port 8000] [--model NAME | --config YAML] [--detector NAME_OR_PATH] [--memory NAME]``: the web app.

Serves the page at ``/``, the HTTP API under ``/v1`` and its OpenAPI docs at ``/docs``
(:mod:`samstream.server`). Binds to localhost unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import uvicorn  # noqa: F401 - imported here so a missing `serve` extra is reported by the CLI table

if importlib.util.find_spec("fastapi") is None:  # checked without the cost of importing it
    raise ModuleNotFoundError("No module named 'fastapi'", name="fastapi")

from .common import CliError, add_model_arguments, check_model_files, device_from_args, load_model_from_args, parse_max_pixels
from .text_prompts import DEFAULT_DETECTOR, check_detector_name
from .vos_infer import check_memory

LOCALHOST = "127.0.0.1"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="the web app: segment and track in the browser, with an HTTP API",
        description="Serve the web page at /, the HTTP API under /v1 and its docs at /docs.",
    )
    p.add_argument("--host", default=LOCALHOST, help="address to bind (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    add_model_arguments(p)
    p.set_defaults(model="samstream-synthetic")
    limits = p.add_argument_group("limits")
    limits.add_argument("--max-upload-mb", type=float, default=512, help="largest upload in MiB (default: %(default)s)")
    limits.add_argument("--max-duration", type=float, default=600, help="longest video in seconds (default: %(default)s)")
    limits.add_argument(
        "--max-pixels", type=parse_max_pixels, default=3840 * 2160, help="largest image / frame in pixels (default: 4K UHD)"
    )
    limits.add_argument("--max-sessions", type=int, default=32, help="sessions open at once (default: %(default)s)")
    limits.add_argument("--max-objects", type=int, default=64, help="objects per session (default: %(default)s)")
    limits.add_argument(
        "--idle-timeout", type=float, default=1800, help="seconds before an unused session is deleted (default: %(default)s)"
    )
    p.add_argument("--work-dir", type=Path, help="where sessions keep their uploads (default: a new temporary folder)")
    p.add_argument(
        "--memory",
        default="default",
        metavar="NAME",
        help="memory strategy of every session: default (the reference), motion, multipath, distractor, "
        "motion+distractor (default: %(default)s)",
    )
    text = p.add_argument_group("text prompts (the page's text box; needs samstream[text])")
    text.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        metavar="NAME_OR_PATH",
        help="the detector of the text box, loaded when a phrase is first sent: grounding-dino "
        "(IDEA-Research/grounding-dino-tiny), grounding-dino-base, owlv2, owlv2-large, automatic, a Hugging Face "
        "model id, or a save_pretrained folder (default: %(default)s)",
    )
    text.add_argument("--box-threshold", type=float, metavar="T", help="minimum detection score (default: the detector's)")
    text.add_argument(
        "--text-threshold", type=float, metavar="T", help="Grounding DINO: minimum score of a label's tokens (default: 0.25)"
    )
    p.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace):
    from ..server import ServerSettings

    if not 0 < args.port < 65536:
        raise CliError(f"--port {args.port}: must be within 1..65535")
    check_detector_name(args.detector)
    check_memory(args.memory)
    try:
        return ServerSettings(
            model=args.config if args.config is not None else args.model,
            checkpoint=args.checkpoint,
            device=args.device,
            work_dir=args.work_dir,
            max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
            max_duration_s=args.max_duration,
            max_pixels=args.max_pixels,
            max_sessions=args.max_sessions,
            max_objects=args.max_objects,
            idle_timeout_s=args.idle_timeout,
            detector=args.detector,
            box_threshold=args.box_threshold,
            text_threshold=args.text_threshold,
            memory=args.memory,
        )
    except ValueError as exc:
        name = str(exc).split(" ", 1)[0]
        flags = {
            "max_upload_bytes": "--max-upload-mb", "max_duration_s": "--max-duration", "max_sessions": "--max-sessions",
            "max_objects": "--max-objects", "idle_timeout_s": "--idle-timeout", "max_pixels": "--max-pixels",
            "box_threshold": "--box-threshold", "text_threshold": "--text-threshold", "detector": "--detector",
        }
        raise CliError(f"{flags.get(name, name)}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from ..server import create_app

    settings = settings_from_args(args)
    check_model_files(args)
    device_from_args(args)
    model = load_model_from_args(args, for_video=True)
    app = create_app(settings, model=model)
    where = "this machine only" if args.host in (LOCALHOST, "localhost", "::1") else "reachable from other machines"
    print(
        f"samstream serve: http://{args.host}:{args.port}/ ({where}; API docs at /docs)"
        + ("; use --host 0.0.0.0 to serve other machines" if where == "this machine only" else ""),
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
