"""benchmarks/gpu/bench_gpu.py: its CPU quick mode end to end, and its CUDA-graph wrapper where CUDA is."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "bench_gpu.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _run(bench, tiny_model_files, tmp_path, variants: str, objects: str) -> dict:
    out = tmp_path / "gpu.json"
    argv = ["--device", "cpu", "--quick", "--models", str(tiny_model_files.config), "--frames", "3"]
    argv += ["--objects", objects, "--variants", variants, "--cache", str(tmp_path), "--json", str(out)]
    assert bench.main(argv) == 0
    return json.loads(out.read_text())


def test_quick_mode_runs_on_cpu(bench, tiny_model_files, tmp_path, capsys):
    data = _run(bench, tiny_model_files, tmp_path, "bf16,bf16+compile+graphs,ref bf16", "1,2")
    cases = {(c["impl"], c["objects"]): c for c in data["cases"]}
    assert set(cases) == {("bf16", 1), ("bf16", 2)}
    for case in cases.values():
        assert case["fps"] > 0 and case["note"] == ""
        assert 0 < case["peak_fraction"] and case["tflops"] > 0
        assert case["agreement"] is None  # the baseline
    flops = data["flops_per_frame"][str(tiny_model_files.config)]
    assert flops["2"] > flops["1"] > 0  # two objects: more work per frame
    skipped = " ".join(data["skipped"])
    assert "CUDA graphs need a CUDA device" in skipped
    assert "ref bf16: the reference package is not importable or the model is not a preset" in skipped
    assert data["bf16_matmul_tflops"] > 0
    assert "implementation" in capsys.readouterr().out  # the table


@pytest.mark.slow
def test_quick_mode_compiled_variant(bench, tiny_model_files, tmp_path):
    data = _run(bench, tiny_model_files, tmp_path, "bf16,bf16+compile", "1")
    compiled = [c for c in data["cases"] if c["impl"] == "bf16+compile"]
    assert len(compiled) == 1 and compiled[0]["fps"] > 0 and compiled[0]["note"] == ""
    # measured against the eager run; not equal: traced by torch.compile the modules run their
    # plain PyTorch code, whose bf16 rounding differs from the CPU backend's, and the tiny
    # random model's masks amplify that over the frames (0.8 seen)
    assert 0.5 <= compiled[0]["agreement"] <= 1.0


def test_cuda_required_unless_cpu(bench):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(SystemExit):
        bench.parse_args(["--device", "cuda"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_graphed_forward_replays_the_eager_result(bench):
    torch.manual_seed(0)
    layer = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 8)).cuda().eval()
    graphed = bench.GraphedForward(layer.forward)
    with torch.inference_mode():
        for rows in (5, 5, 5, 7, 7):
            x = torch.randn(rows, 16, device="cuda")
            torch.testing.assert_close(graphed(x), layer(x), atol=1e-5, rtol=1e-5)
    assert graphed.captures == 2  # one graph per shape, captured on its second call
    assert graphed.replays == 3
