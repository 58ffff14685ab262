"""int8 CPU inference (samstream.accel.int8) against the float32 model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny import moving_clip, prompt_cases, sample_image
from torch import nn

import samstream.accel.int8 as int8_module
from samstream.accel import INT8_PARTS, apply_cpu_backend, has_int8, quantize_int8, remove_int8
from samstream.accel.cpu import CpuLinear
from samstream.accel.int8 import Int8Kernels, Int8Linear, int8_linear, pack_weight, probe_int8
from samstream.build import build_model
from samstream.cli import main
from samstream.compat import SAM2ImagePredictor
from samstream.video.predictor import VideoPredictor

# fraction of mask pixels with the same decision as float32 (the tiny random model: measured
# >= 99.88 % on the image cases; int8 rounding moves logits near 0 across the threshold)
MIN_AGREEMENT = 0.99
HEADS = ("sam_mask_decoder.iou_prediction_head", "sam_mask_decoder.pred_obj_score_head", "obj_ptr_proj")


@pytest.fixture(scope="module")
def kernels() -> Int8Kernels:
    found = probe_int8()
    if found.engine is None:
        pytest.skip("this PyTorch build has no working quantized CPU engine")
    return found


@pytest.fixture(scope="module")
def models(tiny_model_files, kernels):
    """(float32 model, int8 model), same tiny weights, both with the CPU backend."""
    fp32 = build_model(*tiny_model_files, for_video=True, accel="cpu")
    q = build_model(*tiny_model_files, for_video=True, accel="cpu", quantize="int8")
    return fp32, q


def _predict(model, image, cases):
    predictor = SAM2ImagePredictor(model)
    predictor.set_image(image)
    return [
        predictor.predict(
            point_coords=case.get("point_coords"),
            point_labels=case.get("point_labels"),
            box=case.get("box"),
            multimask_output=case["multimask_output"],
            return_logits=True,
        )
        for case in cases
    ]


def _agreement(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    same = sum(int(((x > 0) == (y > 0)).sum()) for x, y in zip(a, b))
    return same / sum(x.size for x in a)


# --------------------------------------------------------------------------- the kernel


def test_int8_linear_is_close_to_float_and_not_equal(kernels):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 50, 96, generator=gen)
    w = torch.randn(40, 96, generator=gen) / 10
    b = torch.randn(40, generator=gen)
    want = F.linear(x, w, b)
    got = int8_linear(x, pack_weight(w, b, kernels.engine), kernels)
    assert got.shape == want.shape and got.dtype == torch.float32
    err = (got - want).abs().max() / want.abs().max()
    assert 0 < err < 0.02  # int8 rounding: not the float result, within 2 % of its range


def test_packed_weights_are_int8_per_channel(kernels):
    w = torch.randn(12, 20)
    qweight, bias = pack_weight(w, torch.zeros(12), kernels.engine).unpack()
    assert qweight.dtype == torch.qint8
    assert qweight.int_repr().dtype == torch.int8
    torch.testing.assert_close(qweight.q_per_channel_scales().float(), w.abs().amax(1) / 127, rtol=1e-6, atol=0)
    torch.testing.assert_close(qweight.dequantize(), w, atol=float(w.abs().max()) / 254 + 1e-6, rtol=0)


# --------------------------------------------------------------------------- same masks, within int8


def test_image_masks_agree_with_float32(models):
    fp32, q = models
    image = sample_image("astronaut")
    cases = prompt_cases(*image.shape[:2])
    want = _predict(fp32, image, cases)
    got = _predict(q, image, cases)
    assert _agreement([g[0] for g in got], [w[0] for w in want]) >= MIN_AGREEMENT
    for (_, ious_q, _), (_, ious_f, _) in zip(got, want):
        np.testing.assert_allclose(ious_q, ious_f, atol=0.02, rtol=0)
    # and it is not the float32 computation under another name
    assert max(float(np.abs(g[0] - w[0]).max()) for g, w in zip(got, want)) > 1e-4


def test_video_masks_agree_with_float32(models):
    clip = moving_clip(4)  # 4 frames, 320 x 136
    outputs = []
    for model in models:
        predictor = VideoPredictor(model)
        session = predictor.open_session(clip)
        predictor.add_prompt(session, 0, 1, points=[[160.0, 74.8]], labels=[1])
        predictor.add_prompt(session, 0, 2, box=[16.0, 27.2, 112.0, 122.4])
        outputs.append([logits.numpy().copy() for _, _, logits in predictor.propagate(session, progress=False)])
    want, got = outputs
    assert len(got) == len(want) == len(clip)
    assert _agreement(got, want) >= MIN_AGREEMENT


def test_int8_kernel_runs_at_inference(models, monkeypatch):
    _, q = models
    calls = []
    real = int8_module.int8_linear
    monkeypatch.setattr(int8_module, "int8_linear", lambda *a: calls.append(1) or real(*a))
    with torch.inference_mode():
        q.encode_images(torch.randn(1, 3, q.image_size, q.image_size))
    assert len(calls) > 0


# --------------------------------------------------------------------------- structure


def test_linear_layers_of_the_parts_are_int8_heads_stay_float(models):
    _, q = models
    for name, module in q.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        inside = any(name.startswith(part + ".") for part in INT8_PARTS)
        assert isinstance(module, Int8Linear) == inside, name
        if name.startswith(HEADS):
            assert not isinstance(module, Int8Linear)
    assert isinstance(q.image_encoder.trunk.blocks[0].attn.qkv, Int8Linear)
    assert isinstance(q.memory_attention.layers[0].cross_attn_image.k_proj, Int8Linear)
    assert isinstance(q.sam_mask_decoder.transformer.layers[0].cross_attn_token_to_image.v_proj, Int8Linear)
    packed, _ = q.image_encoder.trunk.blocks[0].attn.qkv.packed_weight().unpack()
    assert packed.dtype == torch.qint8


def test_state_dict_untouched_and_loading_repacks(tiny_model_files, kernels):
    model = build_model(*tiny_model_files, accel="cpu")
    before = model.state_dict(keep_vars=True)
    quantize_int8(model, kernels=kernels)
    after = model.state_dict(keep_vars=True)
    assert list(after) == list(before)
    assert all(after[k] is before[k] and after[k].dtype == torch.float32 for k in before)

    layer = model.memory_attention.layers[0].linear1
    x = torch.randn(2, 7, layer.in_features)
    with torch.inference_mode():
        first = layer(x)
    other = {k: v.detach() * 0.5 if k.endswith("linear1.weight") else v.detach() for k, v in before.items()}
    model.load_state_dict(other)  # copies in place: the int8 copy is made again from the new weights
    with torch.inference_mode():
        second = layer(x)
    with torch.no_grad():
        want = F.linear(x, layer.weight, layer.bias)
    assert float((second - want).abs().max()) < 0.02 * float(want.abs().max())
    assert not torch.allclose(first, second, atol=1e-3)

    remove_int8(model)
    assert not has_int8(model)
    assert type(model.memory_attention.layers[0].linear1) is CpuLinear  # the class it had before
    assert list(model.state_dict()) == list(before)


def test_order_with_cpu_backend_does_not_matter(tiny_model_files, kernels):
    first_backend = build_model(*tiny_model_files, accel=None)
    apply_cpu_backend(first_backend)
    quantize_int8(first_backend, kernels=kernels)
    first_int8 = build_model(*tiny_model_files, accel=None)
    quantize_int8(first_int8, kernels=kernels)
    apply_cpu_backend(first_int8)
    types = [[type(m) for m in model.modules()] for model in (first_backend, first_int8)]
    assert types[0] == types[1]
    image = sample_image("coffee")
    cases = prompt_cases(*image.shape[:2])[:2]
    a = _predict(first_backend, image, cases)
    b = _predict(first_int8, image, cases)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x[0], y[0], atol=1e-5, rtol=0)
    remove_int8(first_int8)  # layers quantized before the backend get nn.Linear back, then
    assert type(first_int8.memory_attention.layers[0].linear1) is nn.Linear
    apply_cpu_backend(first_int8)  # the backend can take them again
    assert type(first_int8.memory_attention.layers[0].linear1) is CpuLinear


def test_steps_aside_for_autograd(tiny_model_files, kernels):
    model = build_model(*tiny_model_files, accel=None)
    quantize_int8(model, kernels=kernels)
    layer = model.memory_attention.layers[0].linear1
    x = torch.randn(4, layer.in_features)
    y = layer(x)  # weights require gradients: the float layer runs
    torch.testing.assert_close(y, F.linear(x, layer.weight, layer.bias), atol=0, rtol=0)
    y.sum().backward()
    assert layer.weight.grad is not None


# --------------------------------------------------------------------------- errors


def test_non_cpu_devices_are_refused(tiny_model_files, kernels):
    with pytest.raises(ValueError, match="quantize='int8' runs on the CPU only"):
        build_model(tiny_model_files.config, device="meta", quantize="int8")
    with pytest.raises(ValueError, match="quantize must be one of"):
        build_model(tiny_model_files.config, quantize="int4")
    meta = build_model(tiny_model_files.config, accel=None).to("meta")
    with pytest.raises(ValueError, match="CPU only, got a model with parameters on meta"):
        quantize_int8(meta, kernels=kernels)
    model = build_model(tiny_model_files.config, accel=None)
    quantize_int8(model, kernels=kernels)
    layer = model.memory_attention.layers[0].linear1.to("meta")
    with torch.inference_mode(), pytest.raises(RuntimeError, match="remove_int8"):
        layer(torch.zeros(2, layer.in_features, device="meta"))
    with pytest.raises(ValueError, match="no_such_part"):
        quantize_int8(build_model(tiny_model_files.config, accel=None), parts=("no_such_part",), kernels=kernels)
    with pytest.raises(RuntimeError, match="quantized CPU kernels"):
        quantize_int8(build_model(tiny_model_files.config, accel=None), kernels=Int8Kernels(engine=None))


def test_cli_int8_flag(tiny_model_files, tmp_path, capsys):
    image = tmp_path / "cat.png"
    from PIL import Image

    Image.fromarray(sample_image("coffee")).save(image)
    args = ["segment", str(image), "--point", "100,100", *tiny_model_files.cli_args()]
    assert main([*args, "--out", str(tmp_path / "out"), "--int8"]) == 0
    assert (tmp_path / "out" / "scores.json").is_file()
    assert main([*args, "--out", str(tmp_path / "cuda"), "--int8", "--device", "cuda"]) == 2
    assert "--int8 runs on the CPU only" in capsys.readouterr().err
    assert main(["export", "onnx", *tiny_model_files.cli_args(), "--out", str(tmp_path / "x"), "--int8"]) == 2
