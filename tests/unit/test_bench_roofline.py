"""The roofline benchmark's pieces on the tiny model: machine probe, FLOP counting of the CPU
ops, per-component time and FLOPs of video frames and of automatic masks, the limit of a mix."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tiny import moving_clip, tiny_config, tiny_state_dict, write_jpeg_folder

_BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    """benchmarks/bench_roofline.py as a module (it puts benchmarks/ on sys.path for its imports)."""
    saved_path = list(sys.path)
    spec = importlib.util.spec_from_file_location("bench_roofline", _BENCHMARKS / "bench_roofline.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.path[:] = saved_path
    for name, mod in list(sys.modules.items()):  # the benchmark scripts imported by it, and itself
        if Path(getattr(mod, "__file__", None) or "/").parent == _BENCHMARKS:
            del sys.modules[name]


@pytest.fixture(scope="module")
def roofline(bench):
    return sys.modules["roofline"]


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    """The tiny model's compat video predictor (CPU backend on) and a 3-frame JPEG clip."""
    from samstream.compat import build_sam2_video_predictor

    config = tiny_config()
    predictor = build_sam2_video_predictor(config, None, device="cpu")
    predictor.model.load_state_dict(tiny_state_dict(config))
    folder = write_jpeg_folder(tmp_path_factory.mktemp("clip"), moving_clip(3, 96, 128))
    return predictor, folder


def _prompts(bench):
    return bench.bench_video.prompts_for(128, 96, 2)


def test_probe_machine_gives_positive_throughput(roofline):
    probe = roofline.probe_machine(matmul_size=64, attention_queries=(16, 64), memory_frames=2, dim=8, repeats=1)
    assert set(probe.matmul) == {"fp32", "bf16"}
    assert set(probe.attention) == {("fp32", 16), ("fp32", 64), ("bf16", 16), ("bf16", 64)}
    for t in [*probe.matmul.values(), *probe.attention.values()]:
        assert t.flops > 0 and t.seconds > 0 and math.isfinite(t.gflops) and t.gflops > 0
    assert probe.matmul["fp32"].flops == 2 * 64**3
    assert probe.attention[("fp32", 16)].flops == 4 * 16 * 32 * 8  # 1 head, 16 queries, 2 x 16 keys, dim 8
    # the limit at a query count is the nearest probe's, or the matmul limit where that is higher
    matmul = probe.matmul["fp32"].gflops
    assert probe.attention_limit("fp32", 20) == max(probe.attention[("fp32", 16)].gflops, matmul)
    assert probe.attention_limit("fp32", 50) == max(probe.attention[("fp32", 64)].gflops, matmul)
    assert probe.cpu.threads >= 1 and probe.cpu.model_name
    assert set(probe.cpu.flags) <= set(roofline.CPU_FLAGS)
    assert probe.as_dict()["matmul"][0]["gflops"] > 0


def test_matmul_probe_grows_only_while_a_product_is_quick(roofline):
    quick = roofline.matmul_throughput(256, "fp32", repeats=1, start=64, budget_s=math.inf)
    assert quick.shape == "256x256 @ 256x256" and quick.flops == 2 * 256**3
    slow = roofline.matmul_throughput(256, "fp32", repeats=1, start=64, budget_s=0.0)
    assert slow.shape == "64x64 @ 64x64" and slow.flops == 2 * 64**3
    with pytest.raises(ValueError, match="size and start"):
        roofline.matmul_throughput(0, "fp32")


def test_cpu_attention_and_onednn_linear_are_counted(roofline):
    q, k = torch.randn(2, 3, 10, 8), torch.randn(2, 3, 24, 8)
    with torch.inference_mode(), roofline.counting_flops() as counter:
        F.scaled_dot_product_attention(q, k, k)
    assert counter.get_total_flops() == 2 * 2 * (2 * 3 * 10 * 24 * 8)  # q k^T and attn v

    op = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    if op is None:
        pytest.skip("this PyTorch build has no mkldnn._linear_pointwise")
    x, w, b = torch.randn(4, 5, 16), torch.randn(12, 16), torch.randn(12)
    with torch.inference_mode(), roofline.counting_flops() as counter:
        op.default(x, w, b, "none", [], "")
    assert counter.get_total_flops() == 2 * 4 * 5 * 12 * 16


@pytest.mark.parametrize(
    "shape, autocast",
    [
        ((1, 1, 2048, 2048, 16), False),  # few large heads in float32: oneDNN products, one head at a time
        ((4, 2, 64, 64, 16), True),  # many windows under bfloat16: batched products head by head
        ((2, 2, 8, 8, 16), False),  # small: the fused PyTorch op
    ],
)
def test_backend_attention_counts_as_sdpa(roofline, shape, autocast):
    """Whatever path samstream's CPU attention kernel takes, its FLOPs are those of SDPA."""
    from samstream.accel.cpu_attention import cpu_scaled_dot_product
    from samstream.accel.onednn import probe_onednn

    b, h, nq, nk, d = shape
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(b, h, n, d, generator=gen) for n in (nq, nk, nk))
    kernels = probe_onednn()  # (it runs a small linear layer of its own)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        with roofline.counting_flops() as counter:
            out = cpu_scaled_dot_product(kernels, q, k, v)
    assert out.shape == (b, h, nq, d)
    assert counter.get_total_flops() == 4 * b * h * nq * nk * d


def test_meter_charges_the_outermost_component_and_restores_methods(roofline):
    class Inner(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return self.lin(x)

        def extra(self, x):  # work outside forward
            return self.lin(x) * 2

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = Inner()

        def forward(self, x):
            return self.a(self.b(x))  # b runs inside a's caller, not inside a

    model, x = Outer(), torch.randn(3, 4)
    meter = roofline.ComponentMeter(model, {"A": ("a",), "B": ("b",)}, methods={"B": ("b.extra",)})
    with torch.inference_mode(), meter:
        model(x)
        model.a(model.b.lin(x))  # b.lin belongs to B (subtree), called on its own
        model.b.extra(x)
        assert "extra" in vars(model.b)
        import threading

        worker = threading.Thread(target=lambda: (model(x), model.b.extra(x)))  # another thread: not counted
        worker.start()
        worker.join()
    totals = meter.totals()
    assert totals["A"].calls == 2 and totals["B"].calls == 3
    assert "extra" not in vars(model.b) and not model.b._forward_pre_hooks and not model.a._forward_hooks
    with pytest.raises(RuntimeError, match="attached"):
        meter.watch(model.b, "extra", "B")

    # a component calling another component's module: charged once, to the outer one
    class Calls(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Linear(4, 4)
            self.second = nn.Linear(4, 4)

    calls = Calls()
    with torch.inference_mode(), roofline.counting_flops() as counter:
        meter = roofline.ComponentMeter(calls, {"first": ("first",), "second": ("second",)}, flops=counter.get_total_flops)
        with meter:
            handle = calls.first.register_forward_hook(lambda mod, args, out: calls.second(out), prepend=True)
            calls.first(x)  # runs second inside first's call
            handle.remove()
            calls.second(x)
    totals = meter.totals()
    one = 2 * 3 * 4 * 4  # FLOPs of one [3, 4] x [4, 4] linear
    assert totals["first"].flops == 2 * one and totals["first"].calls == 1
    assert totals["second"].flops == one and totals["second"].calls == 1


def test_video_components_add_up_on_the_tiny_model(bench, tiny_video):
    predictor, folder = tiny_video
    counted = bench.run_video({"samstream": predictor}, folder, _prompts(bench), "fp32", count_flops=True)["samstream"]
    assert len(counted.frames) == 2  # the 3-frame clip less the prompted frame's yield
    for record in bench.frame_records(counted):
        for name in bench.MODEL_COMPONENTS:
            assert record[name].flops > 0, name
            assert record[name].calls >= 1 and record[name].seconds > 0, name
        assert record["frame loading"].calls == 1 and record["frame loading"].seconds > 0  # one new frame
        parts = sum(record[name].flops for name in bench.COMPONENTS)
        assert parts + record[bench.REST].flops == record["total"].flops
        assert 0 <= record[bench.REST].flops <= 0.05 * record["total"].flops  # the rest is not matrix work
        assert record[bench.REST].seconds >= -1e-6  # components are timed inside the frame
        att = record["memory attention"]
        assert 0 < att.attention_flops < att.flops  # its attention core, not the projections and MLPs
        assert record["memory encoder"].attention_flops == 0  # no attention module in there

    timed = bench.run_video({"samstream": predictor}, folder, _prompts(bench), "fp32")["samstream"]
    assert all(f.flops == 0 and f.seconds > 0 for f in timed.frames)  # timing runs without the counter
    np.testing.assert_array_equal(timed.logits > 0, counted.logits > 0)  # counting does not change the work

    rows = bench.rows_for(bench.frame_records(timed), bench.frame_records(counted), bench.VIDEO_ROWS, 100.0, 50.0)
    assert [r.component for r in rows] == bench.VIDEO_ROWS
    total = rows[-1]
    assert total.gflop == pytest.approx(sum(r.gflop for r in rows[:-1]))
    assert total.seconds == pytest.approx(sum(r.seconds for r in rows[:-1]))
    assert 50.0 < total.limit_gflops < 100.0  # a mix of attention (50) and other (100) FLOPs


def test_counted_flops_are_the_plain_models(bench, tiny_video):
    """The CPU backend's oneDNN linear layers and chunked attention count as the plain PyTorch ops do."""
    from samstream.accel.cpu import apply_cpu_backend, has_cpu_backend, remove_cpu_backend

    predictor, folder = tiny_video
    assert has_cpu_backend(predictor.model)
    fast = bench.frame_records(bench.run_video({"s": predictor}, folder, _prompts(bench), "fp32", count_flops=True)["s"])
    remove_cpu_backend(predictor.model)
    try:
        plain = bench.frame_records(bench.run_video({"s": predictor}, folder, _prompts(bench), "fp32", count_flops=True)["s"])
    finally:
        apply_cpu_backend(predictor.model)
    for a, b in zip(fast, plain):
        for name in bench.MODEL_COMPONENTS:
            assert a[name].attention_flops == b[name].attention_flops, name
            if name == "image encoder":
                # the plain neck merges its lateral and projection weights (a small matmul) on
                # every call, the backend once: the backend may count fewer, by that much at most
                assert 0 <= b[name].flops - a[name].flops <= 1e-3 * b[name].flops
            else:
                assert a[name].flops == b[name].flops, name


def test_automatic_masks_components(bench):
    from samstream.build import build_model
    from samstream.image.automatic import SAM2AutomaticMaskGenerator

    config = tiny_config()
    model = build_model(config)
    model.load_state_dict(tiny_state_dict(config))
    generator = SAM2AutomaticMaskGenerator(model, points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    image = moving_clip(1, 96, 128)[0]
    seconds, record, _ = bench.run_amg(generator, model, image, "fp32", count_flops=True)
    assert seconds > 0 and record["total"].seconds == seconds
    assert record["image encoder"].flops > 0 and record["decoder"].flops > 0
    assert record["image encoder"].flops + record["decoder"].flops + record[bench.REST].flops == record["total"].flops
    assert record[bench.REST].seconds >= -1e-6


def test_roofline_limit_of_a_mix(roofline):
    assert roofline.roofline_limit(100.0, 0.0, 150.0, 50.0) == pytest.approx(150.0)
    assert roofline.roofline_limit(100.0, 100.0, 150.0, 50.0) == pytest.approx(50.0)
    # half the FLOPs at each limit: 100 / (50/150 + 50/50)
    assert roofline.roofline_limit(100.0, 50.0, 150.0, 50.0) == pytest.approx(100.0 / (50 / 150 + 1.0))


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--sizes", "500"], "--sizes"),  # not a multiple of 16
        (["--objects", "1,x"], "--objects"),
        (["--objects", "0"], "--objects"),
        (["--modes", "fp16"], "--modes"),
        (["--frames", "1"], "--frames"),
    ],
)
def test_bad_grid_arguments_are_usage_errors(bench, capsys, argv, flag):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err
