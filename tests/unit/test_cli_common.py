"""The checks every subcommand makes before its model loads (samstream.cli.common), and main()'s argv handling."""

from __future__ import annotations

import argparse
import os
import signal

import pytest
import torch

from samstream.cli import _prepare_argv
from samstream.cli.common import (
    CliError,
    Terminated,
    check_device,
    check_output_dir,
    parse_max_pixels,
    sigterm_as_interrupt,
)


@pytest.mark.parametrize("text", ["gpu0", "cuda:", "cuda:-1", "CPU ", "cuda0", "", "tpu"])
def test_malformed_devices_are_refused_with_what_the_machine_has(text):
    with pytest.raises(ValueError, match=r"expected cpu, cuda, cuda:N or mps; this machine has: cpu"):
        check_device(text, name="--device")


def test_devices_this_machine_lacks_are_refused():
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available on this machine; it has: cpu"):
            check_device("cuda:0")
    else:
        with pytest.raises(ValueError, match="CUDA device"):
            check_device(f"cuda:{torch.cuda.device_count()}")
    assert check_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("text, value", [("64000000", 64_000_000), ("64M", 64_000_000), ("64mp", 64_000_000),
                                         ("1.5G", 1_500_000_000), ("500k", 500_000)])
def test_max_pixels_accepts_counts_and_suffixes(text, value):
    assert parse_max_pixels(text) == value


@pytest.mark.parametrize("text", ["", "-5", "0", "64X", "lots", "nan"])
def test_max_pixels_refuses_the_rest(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_max_pixels(text)


def test_output_dir_checks_create_nothing(tmp_path):
    out = tmp_path / "new" / "deeper"
    assert check_output_dir(out, flag="--out") is False
    assert not (tmp_path / "new").exists() and list(tmp_path.iterdir()) == []


def test_output_dir_refusals(tmp_path):
    (tmp_path / "file").write_text("x")
    inp = tmp_path / "frames"
    inp.mkdir()
    (inp / "0.png").write_text("x")
    cases = [
        (tmp_path / "file", {}, "exists and is a file"),
        (tmp_path / "file" / "sub", {}, "is a file, so no folder can be made under it"),
        (inp, {"inputs": [inp]}, "is the input itself"),
        (inp / "out", {"inputs": [inp]}, "lies inside the input folder"),
        (tmp_path, {"inputs": [inp]}, "contains the input folder"),
        (inp, {}, "the folder is not empty"),
    ]
    for path, kwargs, message in cases:
        with pytest.raises(CliError, match=message):
            check_output_dir(path, flag="--out", **kwargs)


def test_overwrite_removes_only_the_earlier_outputs_never_an_input(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("mask_0.png", "scores.json", "mine.txt"):
        (out / name).write_text("old")
    (out / "mask_1.png").write_text("this one is the input")
    check_output_dir(out, flag="--out", inputs=[out / "mask_1.png"], overwrite=True,
                     earlier_outputs=(r"mask_\d+\.png", r"scores\.json"))
    assert sorted(p.name for p in out.iterdir()) == ["mask_1.png", "mine.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(CliError, match="cannot write to the folder"):
            check_output_dir(folder / "out", flag="--out")
    finally:
        folder.chmod(0o755)


def test_negative_prompt_values_are_joined_and_debug_taken_out():
    argv, debug = _prepare_argv(["segment", "a.png", "--point", "-5,10", "--debug", "--box", "-1,-1,5,5", "--out", "o"])
    assert argv == ["segment", "a.png", "--point=-5,10", "--box=-1,-1,5,5", "--out", "o"] and debug
    assert _prepare_argv(["track", "v", "--point", "0:-5,1"]) == (["track", "v", "--point", "0:-5,1"], False)


def test_sigterm_raises_terminated_and_the_old_handler_comes_back():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated):
        with sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pause() if hasattr(signal, "pause") else None
    assert signal.getsignal(signal.SIGTERM) is before
    assert issubclass(Terminated, KeyboardInterrupt)  # writers treat it exactly like Ctrl-C


@pytest.mark.parametrize("has_bf16", [False, True])
def test_bf16_on_a_cpu_without_bf16_units_warns_once(monkeypatch, capsys, has_bf16):
    from samstream.accel import onednn
    from samstream.cli import common

    monkeypatch.setattr(onednn, "probe_onednn", lambda: onednn.OnednnKernels(linear_op=None, bf16=has_bf16))
    common.warn_if_cpu_lacks_bf16.cache_clear()
    try:
        args = argparse.Namespace(bf16=True, device="cpu")
        for _ in range(2):
            with common.autocast_context(args):
                pass
        err = capsys.readouterr().err
        assert err.count("no bfloat16 matrix units") == (0 if has_bf16 else 1)
        with common.autocast_context(argparse.Namespace(bf16=False, device="cpu")):
            pass
        assert capsys.readouterr().err == ""
    finally:
        common.warn_if_cpu_lacks_bf16.cache_clear()
