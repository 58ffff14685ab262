"""The bundled model: found by name everywhere a model name is taken, weights from the package."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from samstream import bundled
from samstream.build import build_model, resolve_config
from samstream.config import load_config
from samstream.download import resolve_checkpoint

MODEL = bundled.BUNDLED["samstream-synthetic"]


def test_name_lookup_ignores_case_and_separators():
    for name in ("samstream-synthetic", "SAMSTREAM_SYNTHETIC", " samstream_synthetic "):
        assert bundled.bundled_model(name) is MODEL
    assert bundled.bundled_model("sam2.1_hiera_tiny") is None


def test_the_package_ships_config_and_weights():
    assert MODEL.config_path.is_file()
    assert MODEL.weights_path.is_file()
    assert MODEL.weights_path.stat().st_size <= 25 * 2**20  # the size budget


def test_config_by_name_is_the_bundled_yaml():
    config, _ = resolve_config("samstream-synthetic")
    assert config == load_config(MODEL.config_path)[0]
    assert config.image_size == 256


def test_build_by_name_loads_the_shipped_weights():
    model = build_model("samstream-synthetic", accel=None)
    shipped = load_file(str(MODEL.weights_path))
    state = model.state_dict()
    assert set(shipped) <= set(state)
    for name, tensor in shipped.items():
        assert torch.equal(state[name], tensor), name


def test_resolve_checkpoint_gives_the_package_file(monkeypatch):
    monkeypatch.delenv("SAMSTREAM_CHECKPOINT", raising=False)
    monkeypatch.setenv("SAMSTREAM_OFFLINE", "1")  # never a download
    assert resolve_checkpoint("samstream-synthetic") == MODEL.weights_path


def test_missing_weights_are_named(monkeypatch, tmp_path):
    missing = dataclasses.replace(MODEL, weights_path=tmp_path / "gone.safetensors")
    monkeypatch.setitem(bundled.BUNDLED, "samstream-synthetic", missing)
    with pytest.raises(FileNotFoundError, match="gone.safetensors"):
        build_model("samstream-synthetic")


def test_training_by_name_starts_from_random_weights(tmp_path):
    from samstream.training.config import ModelSpec, TrainConfig
    from samstream.training.trainer import Trainer

    trainer = Trainer(TrainConfig(output_dir=str(tmp_path), model=ModelSpec(config="samstream-synthetic")))
    model = trainer._build()
    shipped = load_file(str(MODEL.weights_path))
    name = "sam_mask_decoder.iou_token.weight"
    assert not torch.equal(model.state_dict()[name], shipped[name])


def test_weights_list_shows_the_bundled_model(capsys):
    from samstream.cli import main

    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("samstream-synthetic"))
    assert "in the package" in row and "MiB" in row
