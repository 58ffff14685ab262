"""The subcommand table: every subcommand shows, missing optional packages are explained, bugs surface."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from samstream import cli
from samstream.cli import SUBCOMMANDS, Subcommand, build_parser, main


def _failing_import(monkeypatch: pytest.MonkeyPatch, name: str, error: ImportError) -> None:
    """Make importing ``samstream.cli.<name>`` raise ``error``."""
    real = importlib.import_module

    def fake(module: str, *args, **kwargs):
        if module == f"samstream.cli.{name}":
            raise error
        return real(module, *args, **kwargs)

    monkeypatch.setattr(cli.importlib, "import_module", fake)


def test_every_subcommand_in_the_table_is_registered() -> None:
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse keeps them here
    assert set(choices) == {c.name for c in SUBCOMMANDS} >= {"segment", "track", "everything"}


def test_missing_optional_package_is_explained_when_used(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    _failing_import(monkeypatch, "needs_extra", ModuleNotFoundError("No module named 'fancylib'", name="fancylib"))
    table = (*SUBCOMMANDS, Subcommand("fancy", "needs_extra", optional={"fancylib": "fancy"}))
    monkeypatch.setattr(cli.build_parser, "__defaults__", (table,))
    assert main(["fancy", "--whatever"]) == cli.EXIT_RUNTIME
    err = capsys.readouterr().err
    assert "fancylib" in err and "pip install 'samstream[fancy]'" in err


def test_an_import_error_that_is_not_a_declared_extra_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    _failing_import(monkeypatch, "buggy", ModuleNotFoundError("No module named 'samstream.nope'", name="samstream.nope"))
    with pytest.raises(ModuleNotFoundError, match="samstream.nope"):
        build_parser((*SUBCOMMANDS, Subcommand("buggy", "buggy", optional={"fancylib": "fancy"})))
    _failing_import(monkeypatch, "broken", ImportError("cannot import name 'no_such_name' from 'samstream.io'"))
    with pytest.raises(ImportError, match="no_such_name"):
        build_parser((*SUBCOMMANDS, Subcommand("broken", "broken")))


@pytest.mark.parametrize("module", ["samstream", "samstream.cli"])
def test_python_dash_m_runs_the_cli(module: str) -> None:
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "segment" in done.stdout and "track" in done.stdout and "everything" in done.stdout
    bad = subprocess.run([sys.executable, "-m", module, "frobnicate"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
