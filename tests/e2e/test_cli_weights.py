"""``samstream weights list | download | export``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from tiny import tiny_config

from samstream.checkpoint import save_safetensors
from samstream.config import load_config
from samstream.modeling.sam2 import SAM2Model
from samstream.training.model_yaml import write_reference_yaml
from samstream.weights import WEIGHTS

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin", "SAMSTREAM_CACHE": "/nonexistent-cache"}
    return subprocess.run([sys.executable, "-m", "samstream", "weights", *args], capture_output=True, text=True, env=env, timeout=300)


def test_list_names_every_official_model():
    from samstream.bundled import BUNDLED

    done = _run("list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:4] == ["name", "file", "size", "cached"]
    assert sorted(line.split()[0] for line in lines[1:]) == sorted([*WEIGHTS, *BUNDLED])
    official = [line for line in lines[1:] if line.split()[0] in WEIGHTS]
    assert all(" no " in line for line in official)  # nothing in an empty cache
    bundled = [line for line in lines[1:] if line.split()[0] in BUNDLED]
    assert all("in the package" in line for line in bundled)  # shipped, never downloaded


def test_download_of_an_unknown_name_is_a_clear_error():
    done = _run("download", "sam3_hiera_huge")
    assert done.returncode == 2 and "sam3_hiera_huge" in done.stderr and "Traceback" not in done.stderr


@pytest.fixture()
def tiny_files(tmp_path):
    torch.manual_seed(0)
    model = SAM2Model(tiny_config())
    write_reference_yaml(tmp_path / "tiny.yaml", model.config)
    save_safetensors(model, tmp_path / "tiny.safetensors")
    return tmp_path / "tiny.yaml", tmp_path / "tiny.safetensors", model


def test_export_writes_the_reference_format(tiny_files, tmp_path):
    config_path, weights_path, model = tiny_files
    out = tmp_path / "exported"
    done = _run("export", "--config", str(config_path), "--checkpoint", str(weights_path), "--out", str(out))
    assert done.returncode == 0, done.stderr
    payload = torch.load(out / "model.pt", weights_only=True)
    assert set(payload) == {"model"}
    want = model.state_dict()
    assert set(payload["model"]) == set(want)
    for name, tensor in want.items():
        torch.testing.assert_close(payload["model"][name], tensor, atol=0, rtol=0)
    tree = yaml.safe_load((out / "model.yaml").read_text())
    assert tree["model"]["_target_"].startswith("sam2.")
    assert load_config(out / "model.yaml")[0] == model.config
    again = _run("export", "--config", str(config_path), "--checkpoint", str(weights_path), "--out", str(out / "model.pt"))
    assert again.returncode == 2 and "is a file" in again.stderr


def test_export_takes_the_model_name_as_its_argument(tmp_path):
    out = tmp_path / "synthetic"
    done = _run("export", "samstream-synthetic", "--out", str(out))
    assert done.returncode == 0, done.stderr
    from safetensors.torch import load_file

    from samstream.bundled import bundled_model, bundled_weights

    want = load_file(bundled_weights(bundled_model("samstream-synthetic")))
    got = torch.load(out / "model.pt", weights_only=True)["model"]
    assert set(got) == set(want)
    name = next(iter(want))
    torch.testing.assert_close(got[name], want[name], atol=0, rtol=0)
    both = _run("export", "samstream-synthetic", "--model", "sam2.1_hiera_large", "--out", str(out))
    assert both.returncode == 2 and "two models" in both.stderr and "Traceback" not in both.stderr
    default_named = _run("export", "samstream-synthetic", "--model", "sam2.1_hiera_tiny", "--out", str(out))
    assert default_named.returncode == 2 and "two models" in default_named.stderr
