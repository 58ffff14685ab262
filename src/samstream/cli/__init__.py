"""The ``samstream`` command line: ``segment`` (one image), ``track`` (video) and ``everything``."""

from __future__ import annotations

import argparse
import sys

from .common import CliError, EXIT_BAD_INPUT, EXIT_NO_WEIGHTS, EXIT_RUNTIME


def build_parser() -> argparse.ArgumentParser:
    from . import segment

    parser = argparse.ArgumentParser(prog="samstream", description="SAM 2 segmentation for images and videos.")
    sub = parser.add_subparsers(dest="command", required=True)
    segment.add_parser(sub)
    for name in ("track", "everything"):
        try:
            module = __import__(f"samstream.cli.{name}", fromlist=["add_parser"])
        except ImportError:
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except CliError as exc:
        print(f"samstream {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: files already written are complete", file=sys.stderr)
        return 130


__all__ = ["main", "build_parser", "EXIT_BAD_INPUT", "EXIT_NO_WEIGHTS", "EXIT_RUNTIME"]
