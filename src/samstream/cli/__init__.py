"""The ``samstream`` command line: one module per subcommand, registered in :data:`SUBCOMMANDS`.

Adding a subcommand is one line in the table: its name, its module (which defines
``add_parser(subparsers)``), and the optional packages it needs mapped to the extra that
installs them.  A subcommand whose optional package is missing still shows
in ``--help``; using it prints how to install the package.  Any other import error is a
bug and is raised, never hidden.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass, field
from typing import Mapping

from .common import EXIT_BAD_INPUT, EXIT_NO_WEIGHTS, EXIT_RUNTIME, CliError


@dataclass(frozen=True)
class Subcommand:
    """One row of the subcommand table."""

    name: str
    module: str  # module under samstream.cli defining add_parser(subparsers)
    optional: Mapping[str, str] = field(default_factory=dict)  # top-level package -> pip extra


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("segment", "segment"),
    Subcommand("track", "track"),
    Subcommand("everything", "everything"),
    Subcommand("vos-infer", "vos_infer"),
    Subcommand("eval", "eval"),
    Subcommand("benchmark-vos", "benchmark_vos"),
    Subcommand("train", "train"),
)


def _missing_optional(command: Subcommand, error: ModuleNotFoundError) -> str | None:
    """The extra to install when ``error`` is one of ``command``'s optional packages, else None."""
    top = (error.name or "").split(".")[0]
    return command.optional.get(top)


def _add_unavailable(sub, command: Subcommand, package: str, extra: str) -> None:
    """A stand-in subparser that explains how to install what ``command`` needs."""
    message = (
        f"this subcommand needs the optional package '{package}': "
        f"install it with `pip install 'samstream[{extra}]'`"
    )
    # every argument (flags included) is accepted, so the message is the same whatever was typed
    parser = sub.add_parser(
        command.name, help=f"(unavailable: needs samstream[{extra}])", prefix_chars="\0", add_help=False
    )
    parser.add_argument("rest", nargs="*")

    def run(_args: argparse.Namespace) -> int:
        raise CliError(message, EXIT_RUNTIME)

    parser.set_defaults(run=run)


def build_parser(commands: tuple[Subcommand, ...] = SUBCOMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="samstream", description="SAM 2 segmentation for images and videos.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in commands:
        try:
            module = importlib.import_module(f"{__name__}.{command.module}")
        except ModuleNotFoundError as error:
            extra = _missing_optional(command, error)
            if extra is None:
                raise
            _add_unavailable(sub, command, str(error.name), extra)
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


__all__ = ["main", "build_parser", "Subcommand", "SUBCOMMANDS", "EXIT_BAD_INPUT", "EXIT_NO_WEIGHTS", "EXIT_RUNTIME"]
