"""Every failure of issue 8 is one clear line, a documented exit code and nothing half-written.

One row per case of the issue's table. Each row runs the command line in-process on the tiny
model (written to ``tmp_path`` as YAML + safetensors) and checks the exit code, the one-line
message, that no traceback was printed, and what the output folder holds afterwards. The two
interruption cases (SIGTERM, kill -9) run a real subprocess below the table.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from fake_images import fake_png

from samstream.cli import main
from samstream.io.overlay import FOREGROUND_COLOR

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[2]
W, H = 64, 48  # size of the test image and frames


# --------------------------------------------------------------------------- files the cases use


def write_config_yaml(config, path: Path) -> Path:
    """The reference YAML layout of a SAM2Config (``model:`` with nested mappings, lists for tuples)."""

    def plain(value):
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    path.write_text(yaml.safe_dump({"model": plain(dataclasses.asdict(config))}, sort_keys=False))
    return path


class Env(NamedTuple):
    root: Path
    yaml: Path
    weights: Path
    image: Path
    frames: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_model) -> Env:
    from tiny import tiny_config

    from samstream.checkpoint import save_safetensors

    root = tmp_path_factory.mktemp("cli_errors")
    config = write_config_yaml(tiny_config(), root / "tiny.yaml")
    weights = root / "tiny.safetensors"
    save_safetensors(tiny_model, weights)
    rng = np.random.default_rng(0)
    image = root / "image.png"
    Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(image)
    frames = root / "frames"
    frames.mkdir()
    for t in range(4):
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(frames / f"{t:05d}.png")
    return Env(root, config, weights, image, frames)


def model_args(env: Env) -> list[str]:
    return ["--config", str(env.yaml), "--checkpoint", str(env.weights)]


def read_only_folder() -> Path:
    """A folder on a read-only file system (``/sys`` in containers and on Linux)."""
    folder = Path("/sys/samstream-test-out")
    try:
        folder.mkdir()
    except OSError:
        return folder
    folder.rmdir()
    pytest.skip("no read-only file system to write to on this machine")


def leftovers(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return [p for p in folder.rglob("*") if p.name.endswith((".tmp", ".partial"))]


# --------------------------------------------------------------------------- the table


class Case(NamedTuple):
    """argv(env, tmp) -> the command line; ``check(env, tmp)`` inspects the files afterwards."""

    argv: Callable[[Env, Path], list[str]]
    code: int
    needles: tuple[str, ...]  # all in the one-line message
    check: Callable[[Env, Path], None] | None = None


def nothing_at(name: str) -> Callable[[Env, Path], None]:
    def check(env: Env, tmp: Path) -> None:
        assert not (tmp / name).exists(), f"{tmp / name} should not have been created"

    return check


def segment(env, tmp, *extra, out="out"):
    return ["segment", str(env.image), "--point", "10,10", "--out", str(tmp / out), *model_args(env), *extra]


def track(env, tmp, *extra, out="out", video=None):
    video = env.frames if video is None else video
    return ["track", str(video), "--point", "0:10,10", "--output-dir", str(tmp / out), *model_args(env), *extra]


def everything(env, tmp, *extra, inp=None, out="out"):
    inp = env.image if inp is None else inp
    return ["everything", str(inp), "--output-dir", str(tmp / out), "--points-per-side", "2", *model_args(env), *extra]


def _with_file(tmp: Path, name: str) -> Path:
    (tmp / name).write_text("not a folder")
    return tmp / name


def _bomb_frames(tmp: Path, env: Env) -> Path:
    folder = tmp / "bomb_frames"
    folder.mkdir()
    for p in sorted(env.frames.iterdir())[:2]:
        (folder / p.name).write_bytes(p.read_bytes())
    fake_png(folder / "00002.png", 20000, 20000)
    return folder


def _yaml(env: Env, tmp: Path, **trunk) -> Path:
    tree = yaml.safe_load(env.yaml.read_text())
    tree["model"]["image_encoder"]["trunk"].update(trunk)
    path = tmp / "bad.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def _checkpoint(tmp: Path, kind: str) -> Path:
    path = tmp / f"{kind}.pt"
    if kind == "random":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "code":

        class RunsCode:
            def __reduce__(self):
                return (os.system, ("echo this must never run",))

        torch.save({"model": {"w": RunsCode()}}, path)
    else:
        path.write_bytes(b"")
    return path


def _corrupt_folder(env: Env, tmp: Path) -> Path:
    folder = tmp / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(env.image.read_bytes())
    (folder / "b_corrupt.png").write_bytes(env.image.read_bytes()[:60])  # header fine, pixels cut off
    (folder / "c.png").write_bytes(env.image.read_bytes())
    return folder


def _check_corrupt_run(env: Env, tmp: Path) -> None:
    doc = json.loads((tmp / "out" / "annotations.json").read_text())
    assert [Path(i["file_name"]).name for i in doc["images"]] == ["a.png", "c.png"]
    assert [Path(s["file_name"]).name for s in doc["info"]["skipped"]] == ["b_corrupt.png"]


def _earlier_run(env: Env, tmp: Path) -> list[str]:
    assert main(track(env, tmp)) == 0  # the earlier run
    return track(env, tmp)


def _check_not_mixed(env: Env, tmp: Path) -> None:
    assert sorted(p.name for p in (tmp / "out" / "001").iterdir()) == [f"{t:05d}.png" for t in range(4)]


def _mask_with_colon(env: Env, tmp: Path) -> list[str]:
    folder = tmp / "C:"
    folder.mkdir()
    Image.fromarray(np.pad(np.full((8, 8), 255, np.uint8), ((10, H - 18), (10, W - 18)))).save(folder / "m.png")
    return ["track", str(env.frames), "--mask", f"0:{folder / 'm.png'}:3", "--output-dir", str(tmp / "out"), *model_args(env)]


def _check_mask_with_colon(env: Env, tmp: Path) -> None:
    assert sorted(p.name for p in (tmp / "out").iterdir()) == ["003"]


def _check_segment_overlay(env: Env, tmp: Path) -> None:
    overlay = np.asarray(Image.open(tmp / "out" / "overlay.png"))
    assert tuple(overlay[10, 10]) == FOREGROUND_COLOR  # the click is drawn where it was given


def _check_track_overlay(env: Env, tmp: Path) -> None:
    import av

    with av.open(str(tmp / "out" / "overlay.mp4")) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    r, g, b = first[9:12, 9:12].reshape(-1, 3).mean(axis=0)  # lossy video: the disc's centre is green
    assert g > 150 and r < 100 and b < 100


CASES: dict[str, Case] = {
    # output folder read-only / on a read-only file system
    "readonly-segment": Case(lambda e, t: segment(e, t)[:4] + ["--out", str(read_only_folder()), *model_args(e)], 2,
                             ("--out", "cannot write to the folder /sys")),
    "readonly-track-png": Case(lambda e, t: track(e, t)[:4] + ["--output-dir", str(read_only_folder()), *model_args(e)], 2,
                               ("--output-dir", "cannot write")),
    "readonly-track-mp4": Case(lambda e, t: track(e, t)[:4] + ["--output-dir", str(read_only_folder()), "--format", "mp4",
                                                                 *model_args(e)], 2, ("--output-dir", "cannot write")),
    "readonly-track-rle": Case(lambda e, t: track(e, t)[:4] + ["--output-dir", str(read_only_folder()), "--format", "rle",
                                                                 *model_args(e)], 2, ("--output-dir", "cannot write")),
    "readonly-everything": Case(lambda e, t: everything(e, t)[:2] + ["--output-dir", str(read_only_folder()), *model_args(e)],
                                2, ("--output-dir", "cannot write")),
    # output path is an existing file
    "file-segment-out": Case(lambda e, t: segment(e, t, out=_with_file(t, "f").name), 2, ("--out", "is a file")),
    "file-track-output-dir": Case(lambda e, t: track(e, t, out=_with_file(t, "f").name), 2, ("--output-dir", "is a file")),
    "file-sub": Case(lambda e, t: track(e, t, out=f"{_with_file(t, 'f').name}/sub"), 2, ("is a file", "no folder can be made")),
    # huge images
    "bomb-segment": Case(lambda e, t: ["segment", str(fake_png(t / "big.png", 20000, 20000)), "--point", "1,1",
                                       "--out", str(t / "out"), *model_args(e)], 2,
                         ("20000x20000 = 400.0 megapixels", "--max-pixels 64000000", "tiles"), nothing_at("out")),
    "bomb-everything": Case(lambda e, t: everything(e, t, inp=fake_png(t / "big.png", 20000, 20000)), 2,
                            ("20000x20000", "--max-pixels", "Downscale"), nothing_at("out")),
    "bomb-frame-folder": Case(lambda e, t: track(e, t, video=_bomb_frames(t, e)), 2,
                              ("00002.png", "20000x20000", "--max-pixels"), nothing_at("out")),
    "144mp-segment": Case(lambda e, t: ["segment", str(fake_png(t / "big.png", 12000, 12000)), "--point", "1,1",
                                        "--out", str(t / "out"), *model_args(e)], 2,
                          ("12000x12000 = 144.0 megapixels", "above the limit of 64.0 megapixels", "GB"), nothing_at("out")),
    # bad configs and devices
    "yaml-wrong-type": Case(lambda e, t: segment(e, t)[:4] + ["--out", str(t / "out"), "--config",
                                                               str(_yaml(e, t, embed_dim="thirty-two")), "--checkpoint", str(e.weights)],
                            2, ("model.image_encoder.trunk.embed_dim", "expected an integer", "thirty-two"), nothing_at("out")),
    "yaml-negative": Case(lambda e, t: segment(e, t)[:4] + ["--out", str(t / "out"), "--config",
                                                             str(_yaml(e, t, embed_dim=-32)), "--checkpoint", str(e.weights)],
                          2, ("model.image_encoder.trunk.embed_dim", "expected an integer > 0", "-32"), nothing_at("out")),
    "device-gpu0": Case(lambda e, t: segment(e, t, "--device", "gpu0"), 2,
                        ("--device 'gpu0'", "expected cpu, cuda, cuda:N or mps", "this machine has: cpu"), nothing_at("out")),
    "device-mps": Case(lambda e, t: segment(e, t, "--device", "mps"), 2,
                       ("--device 'mps'", "not available on this machine", "it has: cpu"), nothing_at("out")),
    # batch robustness
    "everything-corrupt-image": Case(lambda e, t: everything(e, t, inp=_corrupt_folder(e, t)), 5,
                                     ("1 of 3 image(s) could not be read", "b_corrupt.png", "annotations.json"),
                                     _check_corrupt_run),
    # checkpoints
    "checkpoint-random": Case(lambda e, t: segment(e, t)[:4] + ["--out", str(t / "out"), "--config", str(e.yaml),
                                                                 "--checkpoint", str(_checkpoint(t, "random"))], 2,
                              ("random.pt is not a PyTorch (.pt) or safetensors file", "unknown binary data"), nothing_at("out")),
    "checkpoint-code": Case(lambda e, t: segment(e, t)[:4] + ["--out", str(t / "out"), "--config", str(e.yaml),
                                                               "--checkpoint", str(_checkpoint(t, "code"))], 2,
                            ("refused checkpoint", "code.pt", "would run code", "system"), nothing_at("out")),
    "checkpoint-empty": Case(lambda e, t: segment(e, t)[:4] + ["--out", str(t / "out"), "--config", str(e.yaml),
                                                                "--checkpoint", str(_checkpoint(t, "empty"))], 2,
                             ("empty.pt is empty (0 bytes)",), nothing_at("out")),
    # boxes
    "segment-box-outside": Case(lambda e, t: ["segment", str(e.image), "--box", "100,100,120,120", "--out", str(t / "out"),
                                              *model_args(e)], 2, ("--box 100,100,120,120", "entirely outside the 64x48 image"),
                                nothing_at("out")),
    "segment-box-huge": Case(lambda e, t: ["segment", str(e.image), "--box", "0,0,1e308,1e308", "--out", str(t / "out"),
                                           *model_args(e)], 2, ("--box 0,0,1e+308,1e+308", "more than one image size beyond"),
                             nothing_at("out")),
    # reruns and output inside the input
    "rerun-same-folder": Case(_earlier_run, 2, ("--output-dir", "not empty", "--overwrite"), _check_not_mixed),
    "output-is-input": Case(lambda e, t: track(e, t)[:4] + ["--output-dir", str(e.frames), *model_args(e)], 2,
                            ("is the input itself",)),
    "output-inside-input": Case(lambda e, t: track(e, t)[:4] + ["--output-dir", str(e.frames / "masks"), *model_args(e)], 2,
                                ("lies inside the input folder",)),
    # --everything that finds nothing
    "everything-finds-nothing-mp4": Case(lambda e, t: ["track", str(e.frames), "--everything", "--format", "mp4",
                                                       "--pred-iou-thresh", "1", "--points-per-side", "2",
                                                       "--output-dir", str(t / "out"), *model_args(e)], 4,
                                         ("--everything found no object", "nothing was written"), nothing_at("out")),
    # object ids the format cannot store: refused before the model loads (the checkpoint is garbage)
    "palette-id-0": Case(lambda e, t: ["track", str(e.frames), "--point", "0:10,10:0", "--format", "palette",
                                       "--output-dir", str(t / "out"), "--config", str(e.yaml),
                                       "--checkpoint", str(_checkpoint(t, "random"))], 2,
                         ("--format palette stores object ids 1..255", "got object id(s) 0"), nothing_at("out")),
    "palette-id-256": Case(lambda e, t: ["track", str(e.frames), "--point", "0:10,10:256", "--format", "palette",
                                         "--output-dir", str(t / "out"), "--config", str(e.yaml),
                                         "--checkpoint", str(_checkpoint(t, "random"))], 2,
                           ("object id(s) 256",), nothing_at("out")),
    # a negative coordinate is a value, not a flag
    "point-negative": Case(lambda e, t: ["segment", str(e.image), "--point", "-5,10", "--out", str(t / "out"), *model_args(e)],
                           2, ("--point -5,10 is outside the 64x48 image",), nothing_at("out")),
    # success cases of the table: paths with ':' and drawn prompts
    "mask-path-with-colon": Case(_mask_with_colon, 0, (), _check_mask_with_colon),
    "segment-overlay-draws-clicks": Case(lambda e, t: segment(e, t), 0, (), _check_segment_overlay),
    "track-overlay-draws-clicks": Case(lambda e, t: track(e, t, "--format", "mp4"), 0, (), _check_track_overlay),
}


@pytest.mark.parametrize("name", list(CASES))
def test_cli_failure_is_one_clear_line(name, env, tmp_path, capsys):
    case = CASES[name]
    if name == "device-mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    argv = case.argv(env, tmp_path)
    capsys.readouterr()  # drop the output of any earlier run the row made
    code = main(argv)
    err = capsys.readouterr().err
    assert code == case.code, err
    assert "Traceback" not in err
    if case.code != 0:
        lines = [line for line in err.splitlines() if line.startswith("samstream ") and ": error: " in line]
        assert len(lines) == 1, err
        for needle in case.needles:
            assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    if case.check is not None:
        case.check(env, tmp_path)
    assert not leftovers(tmp_path)


def test_overwrite_replaces_the_earlier_run(env, tmp_path):
    assert main(track(env, tmp_path, "--point", "0:30,30:2")) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["001", "002"]
    (tmp_path / "out" / "notes.txt").write_text("the user's own file")
    assert main(track(env, tmp_path, "--overwrite")) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["001", "notes.txt"]


def test_debug_shows_the_traceback(env, tmp_path, capsys, monkeypatch):
    from samstream.image import predictor as image_predictor

    def broken(self, *args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(image_predictor.ImagePredictor, "set_image", broken)
    assert main(segment(env, tmp_path)) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: simulated bug (run again with --debug" in err and "Traceback" not in err
    assert main([*segment(env, tmp_path, out="out2"), "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


# --------------------------------------------------------------------------- interruptions, in a real process


def _long_video(root: Path, frames: int) -> Path:
    folder = root / "long"
    if not folder.exists():
        folder.mkdir()
        rng = np.random.default_rng(2)
        base = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        for t in range(frames):
            Image.fromarray(np.roll(base, t, axis=1)).save(folder / f"{t:05d}.png")
    return folder


def _start_track(env: Env, out: Path) -> subprocess.Popen:
    video = _long_video(env.root, 400)
    environment = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
                       OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "samstream", "track", str(video), "--point", "0:10,10", "--format", "mp4",
         "--output-dir", str(out), *model_args(env)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment,
    )


def _wait_for_fragments(process: subprocess.Popen, path: Path, count: int, timeout: float = 120.0) -> None:
    """Wait until ``path`` has grown ``count`` times (the empty moov, then one step per fragment)."""
    sizes: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1].decode()
        size = path.stat().st_size if path.exists() else 0
        if size and (not sizes or size > sizes[-1]):
            sizes.append(size)
            if len(sizes) > count:
                return
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"{path} did not grow {count} times in {timeout} s (sizes {sizes})")


def _decoded_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_sigterm_finishes_the_mp4_like_ctrl_c(env, tmp_path):
    out = tmp_path / "out"
    process = _start_track(env, out)
    _wait_for_fragments(process, out / "overlay.mp4.partial", 1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    err = err.decode()
    assert process.returncode == 143, err
    assert "terminated (SIGTERM): files already written are complete" in err and "Traceback" not in err
    assert not (out / "overlay.mp4.partial").exists()
    assert 25 <= _decoded_frames(out / "overlay.mp4") < 400


def test_kill_9_leaves_an_mp4_that_plays_up_to_its_last_fragment(env, tmp_path):
    out = tmp_path / "out"
    process = _start_track(env, out)
    _wait_for_fragments(process, out / "overlay.mp4.partial", 2)
    process.kill()  # SIGKILL: no handler runs
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    frames = _decoded_frames(out / "overlay.mp4.partial")
    assert frames >= 25 and frames % 25 == 0  # whole one-second fragments (25 fps), nothing torn
