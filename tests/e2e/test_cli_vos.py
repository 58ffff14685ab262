"""``samstream vos-infer``, ``eval`` and ``benchmark-vos`` end to end on a tiny synthetic dataset."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from samstream.cli import main
from samstream.eval.layouts import read_id_png
from samstream.eval.synthetic import make_synthetic_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_args(tiny_model_files) -> list[str]:
    return tiny_model_files.cli_args()


@pytest.fixture()
def dataset(tmp_path) -> Path:
    make_synthetic_dataset(tmp_path / "DAVIS", "davis")
    return tmp_path / "DAVIS"


def test_vos_infer_then_eval(dataset, tmp_path, model_args, capsys):
    out = tmp_path / "pred"
    assert main(["vos-infer", "--input", str(dataset), "--output-dir", str(out), *model_args]) == 0
    assert "2 video(s) done" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "video00").iterdir()) == [f"{t:05d}.png" for t in range(4)]
    assert read_id_png(out / "video00" / "00000.png").shape == (64, 64)
    # a rerun skips both videos
    assert main(["vos-infer", "--input", str(dataset), "--output-dir", str(out), *model_args]) == 0
    assert "2 already complete" in capsys.readouterr().out
    report = json.loads((out / ".samstream" / "vos_infer_report.json").read_text())
    assert [r["status"] for r in report] == ["skipped", "skipped"]

    scores = tmp_path / "scores.csv"
    assert main(["eval", "--gt", str(dataset), "--pred", str(out), "--csv", str(scores)]) == 0
    printed = capsys.readouterr().out
    assert "overall" in printed and "J&F" in printed
    rows = list(csv.DictReader(scores.open()))
    assert [r["video"] for r in rows] == ["video00", "video00", "video00", "video01", "video01", "video01", "overall"]
    overall = float(rows[-1]["J&F"])
    objects = [r for r in rows if r["object"] in ("1", "2")]
    expected = np.mean([float(r["J_mean"]) for r in objects]) / 2 + np.mean([float(r["F_mean"]) for r in objects]) / 2
    assert overall == pytest.approx(expected, abs=1e-6)


def test_eval_of_ground_truth_against_itself(dataset, capsys):
    assert main(["eval", "--gt", str(dataset), "--pred", str(dataset / "Annotations")]) == 0
    last = [l for l in capsys.readouterr().out.splitlines() if l.startswith("overall")][0]
    assert last.split()[-3:] == ["100.0", "100.0", "100.0"]


def test_bad_input_is_a_clear_error(tmp_path, model_args, capsys):
    (tmp_path / "empty" / "JPEGImages").mkdir(parents=True)
    (tmp_path / "empty" / "Annotations").mkdir()
    assert main(["vos-infer", "--input", str(tmp_path / "empty"), "--output-dir", str(tmp_path / "o"), *model_args]) == 2
    assert "empty dataset" in capsys.readouterr().err
    assert main(["eval", "--gt", str(tmp_path / "nope"), "--pred", str(tmp_path)]) == 2
    assert "--gt" in capsys.readouterr().err


def test_unknown_memory_strategy_is_rejected(dataset, tmp_path, model_args, capsys):
    code = main(["vos-infer", "--input", str(dataset), "--output-dir", str(tmp_path / "o"), "--memory", "nope", *model_args])
    assert code == 2
    assert "--memory nope" in capsys.readouterr().err


def test_benchmark_vos_prints_scores_speed_and_memory(dataset, model_args, capsys):
    assert main(["benchmark-vos", "--input", str(dataset), *model_args]) == 0
    out = capsys.readouterr().out
    assert "J&F" in out and "frames/s" in out and "peak memory" in out
    assert "8 frames in" in out


def test_cli_does_not_import_ray():
    code = "import sys, samstream.cli as c; c.build_parser(); print('ray' in sys.modules)"
    src = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": src}, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
