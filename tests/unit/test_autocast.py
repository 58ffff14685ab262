"""The image model under bfloat16 autocast, and the CPU backend's kernels against plain eager ops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny import prompt_cases, sample_image

from samstream.accel.cpu import CpuLinear, apply_cpu_backend
from samstream.accel.cpu_attention import cpu_scaled_dot_product
from samstream.accel.onednn import probe_onednn
from samstream.build import build_model
from samstream.compat import SAM2ImagePredictor

MIN_AGREEMENT = 0.98  # fraction of pixels with the same mask decision as float32


def _predict_all(predictor, image, cases):
    """set_image, then every image_predict case of that image; logits per case."""
    predictor.set_image(image)
    outs = []
    for case in cases:
        masks, ious, low_res = predictor.predict(
            point_coords=case.get("point_coords"),
            point_labels=case.get("point_labels"),
            box=case.get("box"),
            multimask_output=case["multimask_output"],
            return_logits=True,
        )
        outs.append((masks, ious, low_res))
    return outs


def _image_and_cases(name="astronaut"):
    image = sample_image(name)
    return image, prompt_cases(*image.shape[:2])


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))],
)
@pytest.mark.parametrize("image_name", ["astronaut", "coffee"])
def test_bf16_autocast_agrees_with_float32(tiny_file_model, device, image_name):
    model = tiny_file_model.to(device)
    try:
        predictor = SAM2ImagePredictor(model)
        image, cases = _image_and_cases(image_name)
        ref = _predict_all(predictor, image, cases)
        with torch.autocast(device, dtype=torch.bfloat16):
            got = _predict_all(predictor, image, cases)
            assert predictor._features["image_embed"].dtype in (torch.bfloat16, torch.float32)
        same = total = 0
        for (m32, i32, l32), (m16, i16, l16) in zip(ref, got):
            assert m16.dtype == m32.dtype == np.float32 and m16.shape == m32.shape
            for arr in (m16, i16, l16):
                assert np.isfinite(arr).all()
            same += int(((m16 > 0) == (m32 > 0)).sum())
            total += m32.size
            assert np.abs(i16 - i32).max() < 0.1  # predicted IoUs stay close
        assert same / total >= MIN_AGREEMENT, f"only {same / total:.4f} of mask pixels agree with float32"
        # autocast leaves no trace: float32 again afterwards, same as before
        again = _predict_all(predictor, image, cases[:1])
        np.testing.assert_allclose(again[0][0], ref[0][0], atol=1e-5)
    finally:
        tiny_file_model.to("cpu")


def test_autocast_first_leaves_float32_unchanged(tiny_file_model, tiny_model_files):
    """Caches filled inside an autocast region (position encodings, fused or cast weights)
    do not leak into later float32 calls."""
    image, cases = _image_and_cases()
    fresh = SAM2ImagePredictor(build_model(tiny_model_files.config, tiny_model_files.checkpoint))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _predict_all(fresh, image, cases)
    after = _predict_all(fresh, image, cases)
    ref = _predict_all(SAM2ImagePredictor(tiny_file_model), image, cases)
    for a, b in zip(after, ref):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, atol=1e-5, rtol=0)


def test_fast_cpu_kernels_match_eager(tiny_file_model, tiny_model_files):
    """The oneDNN / chunked-attention CPU backend gives the plain model's float32 results."""
    image, cases = _image_and_cases()
    fast = _predict_all(SAM2ImagePredictor(tiny_file_model), image, cases)
    plain_model = build_model(tiny_model_files.config, tiny_model_files.checkpoint, accel=None)
    eager = _predict_all(SAM2ImagePredictor(plain_model), image, cases)
    for a, b in zip(fast, eager):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, atol=1e-4, rtol=0)


@pytest.mark.parametrize("shape", [(1, 2, 2048, 32), (64, 1, 64, 48), (3, 4, 40, 16)])
def test_cpu_attention_paths(shape):
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(shape, generator=gen) * 1.5 for _ in range(3))
    want = F.scaled_dot_product_attention(q.double(), k.double(), v.double()).float()
    kernels = probe_onednn()
    with torch.inference_mode():
        got = cpu_scaled_dot_product(kernels, q, k, v)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = cpu_scaled_dot_product(kernels, q, k, v)
        assert low.dtype == torch.bfloat16
        assert (low.float() - want).abs().max() < 0.15
        assert (low.float() - want).abs().mean() < 0.02


def test_linear_fast_path_and_autocast():
    gen = torch.Generator().manual_seed(0)
    layer = apply_cpu_backend(torch.nn.Linear(48, 80))
    assert isinstance(layer, CpuLinear)
    x = torch.randn(2, 7, 48, generator=gen)
    with torch.inference_mode():
        for act, fn in (("none", lambda t: t), ("gelu", F.gelu), ("relu", F.relu)):
            want = fn(F.linear(x, layer.weight, layer.bias))
            torch.testing.assert_close(layer.forward_fused(x, act), want, atol=1e-5, rtol=1e-5)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                low = layer.forward_fused(x, act)
            assert low.dtype == torch.bfloat16
            torch.testing.assert_close(low.float(), want, atol=0.05, rtol=0.05)
        # the cached bfloat16 weights follow in-place updates of the parameter
        with torch.autocast("cpu", dtype=torch.bfloat16):
            before = layer(x)
        with torch.no_grad():
            layer.weight.mul_(2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            after = layer(x)
        torch.testing.assert_close(after.float(), F.linear(x, layer.weight, layer.bias), atol=0.1, rtol=0.05)
        assert not torch.equal(before, after)
    # with autograd the plain op runs and gradients flow
    y = layer.forward_fused(x, "gelu").sum()
    y.backward()
    assert layer.weight.grad is not None
