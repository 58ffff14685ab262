"""``samstream segment`` end to end."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from samstream.cli import main


def test_segment_writes_masks_scores_overlay(tmp_path, parity_dir):
    out = tmp_path / "out"
    code = main(
        [
            "segment",
            str(parity_dir / "image_1.png"),
            "--point", "270,160",
            "--point", "180,200,0",
            "--config", str(parity_dir / "model.yaml"),
            "--checkpoint", str(parity_dir / "model.pt"),
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


def test_segment_single_click_gives_three_masks(tmp_path, parity_dir):
    out = tmp_path / "o"
    args = ["segment", str(parity_dir / "image_0.png"), "--point", "230,204", "--config", str(parity_dir / "model.yaml"),
            "--checkpoint", str(parity_dir / "model.pt"), "--out", str(out)]
    assert main(args) == 0
    assert sorted(p.name for p in out.glob("mask_*.png")) == ["mask_0.png", "mask_1.png", "mask_2.png"]


def test_segment_errors(tmp_path, parity_dir, capsys):
    base = ["--config", str(parity_dir / "model.yaml"), "--checkpoint", str(parity_dir / "model.pt"), "--out", str(tmp_path / "x")]
    assert main(["segment", str(parity_dir / "image_0.png"), "--point", "1,nan", *base]) == 2
    assert "finite" in capsys.readouterr().err
    assert main(["segment", str(parity_dir / "image_0.png"), "--point", "9999,5", *base]) == 2
    assert "outside" in capsys.readouterr().err
    assert main(["segment", str(parity_dir / "image_0.png"), *base]) == 2
    assert main(["segment", str(tmp_path / "missing.png"), "--point", "1,1", *base]) == 2
    assert main(["segment", str(parity_dir / "image_0.png"), "--box", "50,50,10,10", *base]) == 2
    assert not (tmp_path / "x").exists()


def test_segment_without_weights_says_where_to_get_them(tmp_path, parity_dir, capsys, monkeypatch):
    monkeypatch.setenv("SAMSTREAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMSTREAM_OFFLINE", "1")
    monkeypatch.delenv("SAMSTREAM_CHECKPOINT", raising=False)
    code = main(["segment", str(parity_dir / "image_0.png"), "--point", "5,5", "--model", "sam2.1_hiera_tiny", "--out", str(tmp_path / "o")])
    assert code == 3
    err = capsys.readouterr().err
    assert "sam2.1_hiera_tiny.pt" in err and "--checkpoint" in err
