"""Shared test fixtures: where the parity fixtures live (for tests/parity only), and a tiny model built in code."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SAMSTREAM_SHARED", REPO.parent / "shared"))
PARITY = SHARED / "fixtures" / "parity"
MANIFESTS = SHARED / "fixtures" / "manifests"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"fixture missing: {path} (set SAMSTREAM_SHARED to the shared/ folder)")
    return path


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for the module (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    the tiny model is as fast on one, and far faster on a busy machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def import_benchmark():
    """``import_benchmark(name)``: a script of benchmarks/ as a module, imported with that folder on
    ``sys.path`` (its own imports of its neighbours work) for the test module."""
    folder = str(REPO / "benchmarks")
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(folder)


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    return _require(PARITY)


@pytest.fixture(scope="session")
def manifests_dir() -> Path:
    return _require(MANIFESTS)


@pytest.fixture(scope="session")
def parity_cases(parity_dir) -> list[dict]:
    return json.loads((parity_dir / "cases.json").read_text())["cases"]


@pytest.fixture(scope="session")
def expected(parity_dir):
    return np.load(parity_dir / "expected.npz")


@pytest.fixture(scope="session")
def parity_model(parity_dir):
    """The fixture model, built like the reference's image builder (apply_postprocessing=True); tests/parity only."""
    from samstream.build import build_model

    return build_model(parity_dir / "model.yaml", parity_dir / "model.pt")


@pytest.fixture(scope="session")
def tiny_model():
    """A random-weight model of :func:`tiny.tiny_config` (built in code, no fixture files)."""
    import torch
    from tiny import tiny_config

    from samstream.build import build_model

    torch.manual_seed(0)
    return build_model(tiny_config())


@pytest.fixture(scope="session")
def tiny_model_files(tmp_path_factory):
    """:func:`tiny.write_tiny_model`: the tiny model as YAML + seeded weights, as the CLI takes it."""
    from tiny import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_file_model(tiny_model_files):
    """The image model built from :func:`tiny_model_files` (like the reference's image builder)."""
    from samstream.build import build_model

    return build_model(tiny_model_files.config, tiny_model_files.checkpoint)


@pytest.fixture(scope="session")
def tiny_grounding_dino_dir(tmp_path_factory) -> Path:
    """:func:`tiny_detectors.write_tiny_grounding_dino`: a random-weight Grounding DINO folder (needs transformers)."""
    from tiny_detectors import write_tiny_grounding_dino

    return write_tiny_grounding_dino(tmp_path_factory.mktemp("grounding_dino"))


@pytest.fixture(scope="session")
def tiny_owlv2_dir(tmp_path_factory) -> Path:
    """:func:`tiny_detectors.write_tiny_owlv2`: a random-weight OWLv2 folder (needs transformers)."""
    from tiny_detectors import write_tiny_owlv2

    return write_tiny_owlv2(tmp_path_factory.mktemp("owlv2"))
