"""``samstream segment`` end to end, with the tiny model and sample photographs written in the test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny import sample_image

from samstream.cli import main


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """``astronaut.png`` (512 x 512) and ``coffee.png`` (400 x 600)."""
    folder = tmp_path_factory.mktemp("photos")
    paths = {}
    for name in ("astronaut", "coffee"):
        paths[name] = folder / f"{name}.png"
        Image.fromarray(sample_image(name)).save(paths[name])
    return paths


def test_segment_writes_masks_scores_overlay(tmp_path, photos, tiny_model_files):
    out = tmp_path / "out"
    code = main(
        [
            "segment",
            str(photos["coffee"]),
            "--point", "270,160",
            "--point", "180,200,0",
            *tiny_model_files.cli_args(),
            "--out", str(out),
        ]
    )
    assert code == 0
    scores = json.loads((out / "scores.json").read_text())
    assert len(scores["scores"]) == 1 and scores["labels"] == [1, 0]
    mask = np.array(Image.open(out / "mask_0.png"))
    assert mask.shape == (400, 600) and set(np.unique(mask)) <= {0, 255}
    assert np.array(Image.open(out / "overlay.png")).shape == (400, 600, 3)
    assert not list(out.glob("*.tmp*"))


def test_segment_single_click_gives_three_masks(tmp_path, photos, tiny_model_files):
    out = tmp_path / "o"
    args = ["segment", str(photos["astronaut"]), "--point", "230,204", *tiny_model_files.cli_args(), "--out", str(out)]
    assert main(args) == 0
    assert sorted(p.name for p in out.glob("mask_*.png")) == ["mask_0.png", "mask_1.png", "mask_2.png"]


def test_segment_errors(tmp_path, photos, tiny_model_files, capsys):
    image = str(photos["astronaut"])
    base = [*tiny_model_files.cli_args(), "--out", str(tmp_path / "x")]
    assert main(["segment", image, "--point", "1,nan", *base]) == 2
    assert "finite" in capsys.readouterr().err
    assert main(["segment", image, "--point", "9999,5", *base]) == 2
    assert "outside" in capsys.readouterr().err
    assert main(["segment", image, *base]) == 2
    assert main(["segment", str(tmp_path / "missing.png"), "--point", "1,1", *base]) == 2
    assert main(["segment", image, "--box", "50,50,10,10", *base]) == 2
    assert not (tmp_path / "x").exists()


def test_segment_without_weights_says_where_to_get_them(tmp_path, photos, capsys, monkeypatch):
    monkeypatch.setenv("SAMSTREAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMSTREAM_OFFLINE", "1")
    monkeypatch.delenv("SAMSTREAM_CHECKPOINT", raising=False)
    code = main(["segment", str(photos["astronaut"]), "--point", "5,5", "--model", "sam2.1_hiera_tiny", "--out", str(tmp_path / "o")])
    assert code == 3
    err = capsys.readouterr().err
    assert "sam2.1_hiera_tiny.pt" in err and "--checkpoint" in err
