"""The top-level package: lazy public API, version, no side effects at import."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import samstream

REPO = Path(__file__).resolve().parents[2]


def test_import_loads_nothing_heavy_and_reads_no_environment() -> None:
    probe = (
        "import builtins, os, sys\n"
        "class Recorder(dict):\n"
        "    reads = []\n"
        "    def __getitem__(self, key):\n"
        "        Recorder.reads.append(key); return super().__getitem__(key)\n"
        "    def get(self, key, default=None):\n"
        "        Recorder.reads.append(key); return super().get(key, default)\n"
        "real_environ, os.environ = os.environ, Recorder(os.environ)\n"
        "opened, real_open = [], builtins.open\n"
        "builtins.open = lambda *a, **k: (opened.append(a[0]), real_open(*a, **k))[1]\n"
        "import samstream\n"
        "builtins.open, os.environ = real_open, real_environ\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'PIL', 'av', 'scipy')]\n"
        "print(len(heavy), len([m for m in sys.modules if m.startswith('samstream.')]), len(opened), len(Recorder.reads))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    heavy, submodules, opened, env_reads = (int(v) for v in done.stdout.split())
    assert (heavy, submodules, opened, env_reads) == (0, 0, 0, 0)


def test_version_matches_pyproject() -> None:
    declared = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    assert samstream.__version__ == declared
    assert f'return "{declared}"' in inspect.getsource(samstream._read_version)  # the source-tree fallback


@pytest.mark.parametrize("name", [n for n in samstream.__all__ if n != "__version__"])
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(samstream, name)
    assert getattr(value, "__name__", name) == name


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        samstream.no_such_thing  # noqa: B018
