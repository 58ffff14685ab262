"""Strict checkpoint loading (official .pt and safetensors) with errors that list the keys."""

from __future__ import annotations

import pytest
import torch

from samstream.build import build_model
from samstream.checkpoint import CheckpointError, load_weights, read_state_dict, save_safetensors
from samstream.config import load_config
from samstream.modeling.sam2 import SAM2Model


@pytest.fixture(scope="module")
def fresh_model(tiny_model_files):
    config, _ = load_config(tiny_model_files.config)
    return SAM2Model(config)


def test_official_format_loads_strictly(tiny_model_files, fresh_model):
    # {"model": state_dict} as the official .pt files hold it (reference names: tests/parity/test_fixture_files.py)
    load_weights(fresh_model, tiny_model_files.checkpoint)
    ref = torch.load(tiny_model_files.checkpoint, weights_only=True)["model"]
    for key, value in fresh_model.state_dict().items():
        torch.testing.assert_close(value, ref[key], rtol=0, atol=0)


def test_safetensors_round_trip(tmp_path, tiny_model):
    from tiny import tiny_config

    path = tmp_path / "w.safetensors"
    save_safetensors(tiny_model, path)
    assert not list(tmp_path.glob(".*.tmp"))
    again = build_model(tiny_config(), path)
    for (k, a), (_, b) in zip(tiny_model.state_dict().items(), again.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


def test_interrupted_safetensors_save_keeps_the_old_file(tmp_path, tiny_model, monkeypatch):
    import safetensors.torch

    path = tmp_path / "w.safetensors"
    path.write_bytes(b"previous weights")

    def crash_midway(state, filename, *args, **kwargs):
        with open(filename, "wb") as handle:
            handle.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        save_safetensors(tiny_model, path)
    assert path.read_bytes() == b"previous weights"
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temp file left


def test_missing_unexpected_and_misshaped_keys_are_listed(tmp_path, tiny_model):
    state = dict(tiny_model.state_dict())
    state.pop("no_mem_embed")
    state["extra.weight"] = torch.zeros(3)
    state["maskmem_tpos_enc"] = torch.zeros(1, 2, 3)
    path = tmp_path / "bad.pt"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError) as err:
        load_weights(SAM2Model(tiny_model.config), path)
    text = str(err.value)
    assert "no_mem_embed" in text and "extra.weight" in text and "maskmem_tpos_enc" in text
    assert "missing" in text and "unexpected" in text and "shape" in text


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        read_state_dict(junk)
    torch.save({"model": 3}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="state dict"):
        read_state_dict(tmp_path / "odd.pt")


def test_weights_only_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, path)
    with pytest.raises(CheckpointError):
        read_state_dict(path)


# ---------------------------------------------------------------- files that are not checkpoints (issue 8)


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("echo this must never run",))


@pytest.mark.parametrize(
    "write, expected",
    [
        (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
        (lambda p: p.write_bytes(bytes(range(256)) * 4), "is not a PyTorch (.pt) or safetensors file: it looks like unknown binary data"),
        (lambda p: p.write_text("<!DOCTYPE html><html>404</html>"), "an HTML page"),
        (lambda p: torch.save({"model": {"w": _RunsCode()}}, p), "would run code when loaded (posix.system)"),
        (lambda p: p.write_bytes(__import__("pickle").dumps(_RunsCode(), protocol=4)), "a raw Python pickle"),
        (lambda p: (torch.save({"w": torch.zeros(3)}, p), p.write_bytes(p.read_bytes()[:80])), "damaged or truncated"),
    ],
    ids=["empty", "random", "html", "zip-with-code", "pickle-with-code", "truncated"],
)
def test_unreadable_checkpoints_get_samstreams_own_message(tmp_path, write, expected):
    path = tmp_path / "weights.pt"
    write(path)
    with pytest.raises(CheckpointError) as info:
        read_state_dict(path)
    message = str(info.value)
    assert expected in message and str(path) in message
    assert "weights_only" not in message  # never PyTorch's advice to load unsafely


def test_safetensors_content_is_recognised_under_any_suffix(tmp_path, tiny_model):
    path = tmp_path / "weights.pt"
    save_safetensors(tiny_model, path)
    assert set(read_state_dict(path)) == set(tiny_model.state_dict())
