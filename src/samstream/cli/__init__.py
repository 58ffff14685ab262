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
import re
import sys
import traceback
from dataclasses import dataclass, field
from typing import Mapping

from .common import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_NO_WEIGHTS,
    EXIT_NOTHING_FOUND,
    EXIT_PARTIAL,
    EXIT_RUNTIME,
    EXIT_TERMINATED,
    CliError,
    Terminated,
    sigterm_as_interrupt,
)


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
    Subcommand("weights", "weights"),
    Subcommand("export", "export"),
    Subcommand("serve", "serve", {"uvicorn": "serve", "fastapi": "serve"}),
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
    parser = argparse.ArgumentParser(
        prog="samstream",
        description="SAM 2 segmentation for images and videos.",
        epilog="--debug (anywhere on the line) shows the Python traceback of an unexpected error.",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
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


# flags whose value may start with "-" (a negative coordinate): "--point -5,10" -> "--point=-5,10"
_VALUE_FLAGS = frozenset({"--point", "--box", "--mask"})
_LOOKS_NEGATIVE = re.compile(r"-[0-9.]")


def _prepare_argv(argv: list[str]) -> tuple[list[str], bool]:
    """Join prompt flags with values that start with '-', and take out --debug wherever it is."""
    out: list[str] = []
    debug = False
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            out += argv[i:]
            break
        if token == "--debug":
            debug = True
        elif token in _VALUE_FLAGS and i + 1 < len(argv) and _LOOKS_NEGATIVE.match(argv[i + 1]):
            out.append(f"{token}={argv[i + 1]}")
            i += 1
        else:
            out.append(token)
        i += 1
    return out, debug


def _describe_unexpected(exc: BaseException) -> str:
    """One line for an error no subcommand turned into a CliError."""
    if isinstance(exc, OSError) and exc.filename is not None:
        reason = exc.strerror or str(exc)
        return f"{exc.filename}: {reason}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else '(no message)'}"


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; every failure becomes one line on stderr and an exit code
    (see :mod:`samstream.cli.common`), with the traceback only under ``--debug``."""
    argv, debug = _prepare_argv(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = debug or args.debug
    prefix = f"samstream {args.command}: error:"
    try:
        with sigterm_as_interrupt():
            return int(args.run(args) or 0)
    except CliError as exc:
        if debug:
            traceback.print_exc()
        print(f"{prefix} {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("terminated (SIGTERM): files already written are complete", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("interrupted: files already written are complete", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (run again with --debug for the traceback)"
        print(f"{prefix} {_describe_unexpected(exc)}{hint}", file=sys.stderr)
        return EXIT_RUNTIME


__all__ = [
    "main",
    "build_parser",
    "Subcommand",
    "SUBCOMMANDS",
    "EXIT_BAD_INPUT",
    "EXIT_NO_WEIGHTS",
    "EXIT_RUNTIME",
    "EXIT_NOTHING_FOUND",
    "EXIT_PARTIAL",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
]
