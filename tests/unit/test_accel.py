"""The CPU backend (samstream.accel.cpu) and compile helper against the plain PyTorch model."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import moving_clip, prompt_cases, sample_image
from torch import nn

from samstream.accel import cpu as cpu_backend
from samstream.accel import VIDEO_PARTS, apply_cpu_backend, compile_model, has_cpu_backend, remove_cpu_backend
from samstream.accel.cpu import (
    CpuConv1x1,
    CpuHiera,
    CpuLinear,
    CpuMaskDecoder,
    CpuMemoryEncoder,
    CpuModule,
    CpuMultiScaleAttention,
)
from samstream.accel.onednn import OnednnKernels, probe_onednn
from samstream.build import build_model
from samstream.compat import SAM2ImagePredictor
from samstream.config import load_config
from samstream.modeling.memory_encoder import MemoryEncoder
from samstream.video.predictor import VideoPredictor

FP32_TOL = 1e-4
MIN_AGREEMENT = 0.98  # fraction of mask pixels with the same decision


class CountingKernels:
    """An :class:`OnednnKernels` whose fused linear op counts its calls."""

    def __init__(self) -> None:
        real = probe_onednn()
        if real.linear_op is None:
            pytest.skip("this PyTorch build has no working oneDNN linear op")
        self.calls = 0

        def op(*args):
            self.calls += 1
            return real.linear_op(*args)

        self.kernels = OnednnKernels(linear_op=op, bf16=real.bf16)


@pytest.fixture(scope="module")
def models(tiny_model_files):
    """(plain model, model with the CPU backend), same tiny weights."""
    plain = build_model(*tiny_model_files, accel=None, for_video=True)
    fast = build_model(*tiny_model_files, accel="cpu", for_video=True)
    return plain, fast


def _images(size: int) -> torch.Tensor:
    """Two sample photographs resized to the model size, roughly normalized: [2, 3, S, S]."""
    names = ("astronaut", "coffee")
    arrays = [np.asarray(Image.fromarray(sample_image(n)).resize((size, size))) for n in names]
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0
    return (x - 0.45) / 0.225


def _predict(model, image, cases):
    predictor = SAM2ImagePredictor(model)
    predictor.set_image(image)
    out = []
    for case in cases:
        masks, ious, low = predictor.predict(
            point_coords=case.get("point_coords"),
            point_labels=case.get("point_labels"),
            box=case.get("box"),
            multimask_output=case["multimask_output"],
            return_logits=True,
        )
        out.append((masks, ious, low))
    return out


# --------------------------------------------------------------------------- same results


def test_image_features_agree_in_float32(models):
    plain, fast = models
    x = _images(plain.image_size)
    with torch.inference_mode():
        want = plain.encode_images(x)
        got = fast.encode_images(x)
    assert len(got.features) == len(want.features) == 3
    for a, b in zip(got.features + got.position, want.features + want.position):
        assert a.shape == b.shape and a.dtype == b.dtype == torch.float32
        torch.testing.assert_close(a, b, atol=FP32_TOL, rtol=FP32_TOL)


def test_image_features_agree_under_bf16_autocast(models):
    plain, fast = models
    x = _images(plain.image_size)
    with torch.inference_mode():
        ref = plain.encode_images(x).image_embed
        with torch.autocast("cpu", dtype=torch.bfloat16):
            a = plain.encode_images(x).image_embed.float()
            b = fast.encode_images(x).image_embed.float()
    assert torch.isfinite(b).all()
    scale = ref.abs().mean()
    # both low-precision runs are about as far from float32 as each other
    assert (b - ref).abs().mean() < 0.05 * scale
    assert (a - b).abs().mean() < 0.05 * scale


def test_predict_agrees(models):
    plain, fast = models
    image = sample_image("astronaut")
    cases = prompt_cases(*image.shape[:2])
    for a, b in zip(_predict(plain, image, cases), _predict(fast, image, cases)):
        for x, y in zip(a, b):
            np.testing.assert_allclose(y, x, atol=FP32_TOL, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = _predict(fast, image, cases)
    ref = _predict(plain, image, cases)
    same = sum(int(((lo[0] > 0) == (r[0] > 0)).sum()) for lo, r in zip(low, ref))
    total = sum(r[0].size for r in ref)
    assert same / total >= MIN_AGREEMENT


@pytest.mark.parametrize("grouped", [False, True])
def test_video_frames_agree(models, grouped, monkeypatch):
    """Also with the objects going through memory attention in groups (here 2 + 1)."""
    plain, fast = models
    if grouped:
        hw = (plain.config.image_size // 16) ** 2  # tokens of the memory-attention feature map
        monkeypatch.setattr(cpu_backend, "GROUP_TOKENS", 2 * hw)
        monkeypatch.setattr(cpu_backend, "GROUPED_FROM_TOKENS", 3 * hw)
        from samstream.modeling.memory_cache import MemoryKV

        groups = []
        rows = MemoryKV.rows
        monkeypatch.setattr(MemoryKV, "rows", lambda kv, s, e: groups.append(e - s) or rows(kv, s, e))
    clip = moving_clip(4)  # 4 frames, 320 x 136
    outputs = []
    for model in (plain, fast):
        predictor = VideoPredictor(model)
        session = predictor.open_session(clip)
        predictor.add_prompt(session, 0, 1, points=[[160.0, 74.8]], labels=[1])
        predictor.add_prompt(session, 0, 2, box=[16.0, 27.2, 112.0, 122.4])
        predictor.add_prompt(session, 0, 3, points=[[250.0, 60.0], [40.0, 40.0]], labels=[1, 0])
        outputs.append({f: logits.clone() for f, _, logits in predictor.propagate(session, progress=False)})
    want, got = outputs
    assert sorted(got) == sorted(want) == list(range(len(clip)))
    for f in want:
        torch.testing.assert_close(got[f], want[f], atol=FP32_TOL * 10, rtol=FP32_TOL)
    if grouped:
        assert groups and set(groups) == {2, 1}


def test_memory_encoder_group_size_follows_the_mask_size():
    group = CpuMemoryEncoder.group_size
    assert group(torch.empty(8, 1, 1024, 1024)) == 1  # a 4 MB first map: one mask at a time
    assert group(torch.empty(8, 1, 512, 512)) == 1  # 1 MB
    assert group(torch.empty(8, 1, 256, 256)) == 4  # 256 KB each
    assert group(torch.empty(8, 1, 256, 256, dtype=torch.bfloat16)) == 8


def test_memory_encoder_in_groups_agrees_with_the_batch(tiny_model_files, monkeypatch):
    plain = build_model(*tiny_model_files, accel=None, for_video=True)
    fast = build_model(*tiny_model_files, accel="cpu", for_video=True)
    side = plain.image_size
    count = 5
    monkeypatch.setattr(CpuMemoryEncoder, "group_bytes", 2 * side * side * 4)  # groups of 2, 2 and 1
    assert CpuMemoryEncoder.group_size(torch.empty(count, 1, side, side)) == 2
    torch.manual_seed(0)
    shared = torch.randn(1, plain.config.memory_encoder.in_dim, side // 16, side // 16).expand(count, -1, -1, -1)
    masks = torch.rand(count, 1, side, side)
    calls = []
    fuse = MemoryEncoder.fuse
    monkeypatch.setattr(MemoryEncoder, "fuse", lambda self, p, m: calls.append(m.shape[0]) or fuse(self, p, m))
    for feats in (shared, shared.contiguous() + torch.randn_like(shared)):  # one frame for all; one per object
        calls.clear()
        with torch.inference_mode():
            want = plain.memory_encoder(feats, masks)
            assert calls == [count]
            calls.clear()
            got = fast.memory_encoder(feats, masks)
            assert calls == [2, 2, 1]
        for a, b in zip(got, want):
            assert a.shape == b.shape == (count, plain.config.memory_encoder.out_dim, side // 16, side // 16)
            torch.testing.assert_close(a, b, atol=FP32_TOL, rtol=FP32_TOL)
    # with gradients needed (the plain batched path) gradients reach the masks
    masks.requires_grad_(True)
    fast.memory_encoder(shared, masks)[0].square().mean().backward()
    assert masks.grad is not None and masks.grad.abs().sum() > 0


def test_mask_decoder_groups_follow_the_token_budget():
    groups = CpuMaskDecoder.prompt_groups
    assert groups(64, 4096) == [(s, s + 2) for s in range(0, 64, 2)]  # 1024 px: two at a time
    assert groups(20, 1024) == [(0, 8), (8, 16), (16, 20)]  # 512 px: eight
    assert groups(3, 100_000) == [(0, 1), (1, 2), (2, 3)]  # never fewer than one


def test_mask_decoder_in_groups_agrees_with_the_batch(models, monkeypatch):
    """Prompt sets decoded in groups of 2, 2 and 1: a shared image embedding (repeat_image), one
    per prompt set, and a precomputed image context, against the plain decoder on the whole batch."""
    plain, fast = models
    decoder, ours = plain.sam_mask_decoder, fast.sam_mask_decoder
    assert isinstance(ours, CpuMaskDecoder)
    c, side = decoder.transformer_dim, plain.image_size // 16
    monkeypatch.setattr(cpu_backend, "DECODER_GROUP_TOKENS", 2 * side * side)
    monkeypatch.setattr(cpu_backend, "DECODER_GROUPED_FROM_TOKENS", 5 * side * side)
    calls = []
    predict_all = type(decoder).predict_all
    monkeypatch.setattr(type(decoder), "predict_all", lambda self, *a: calls.append(a[2].shape[0]) or predict_all(self, *a))
    torch.manual_seed(0)
    count = 5
    image = torch.randn(1, c, side, side)
    pe = torch.randn(1, c, side, side)
    sparse = torch.randn(count, 3, c)
    dense = torch.randn(1, c, side, side).expand(count, -1, -1, -1)
    high = [torch.randn(1, c // 8, 4 * side, 4 * side), torch.randn(1, c // 4, 2 * side, 2 * side)]
    per_prompt = image.expand(count, -1, -1, -1) + 0.1 * torch.randn(count, c, side, side)
    with torch.inference_mode():
        context = decoder.image_context(image, pe, dense[:1])
        cases = [
            (image, dense, high, True, None),
            (per_prompt, dense, [f.expand(count, -1, -1, -1).contiguous() for f in high], False, None),
            (image, dense, high, True, context),
        ]
        for embed, dense_in, feats, repeat, ctx in cases:
            calls.clear()
            want = decoder.predict_all(embed, pe, sparse, dense_in, feats, repeat, ctx)
            assert calls == [count]
            calls.clear()
            got = ours.predict_all(embed, pe, sparse, dense_in, feats, repeat, ctx)
            assert calls == [2, 2, 1]
            calls.clear()
            ours.predict_all(embed[:4], pe, sparse[:4], dense_in[:4], [f[:4] for f in feats], repeat, ctx)
            assert calls == [4]  # below DECODER_GROUPED_FROM_TOKENS: the whole batch
            for a, b in zip((got.masks, got.iou, got.tokens, got.object_score_logits),
                            (want.masks, want.iou, want.tokens, want.object_score_logits)):
                assert a.shape == b.shape and a.shape[0] == count
                torch.testing.assert_close(a, b, atol=FP32_TOL, rtol=FP32_TOL)
        with pytest.raises(ValueError, match="2 image embeddings for 5 prompt sets"):  # refused as by the plain decoder
            ours.predict_all(per_prompt[:2], pe, sparse, dense, high, False, None)


# --------------------------------------------------------------------------- structure


def test_swap_keeps_parameters_and_state_dict(tiny_model_files):
    model = build_model(*tiny_model_files, accel=None)
    before = model.state_dict(keep_vars=True)
    apply_cpu_backend(model)
    after = model.state_dict(keep_vars=True)
    assert list(after) == list(before)
    assert all(after[k] is before[k] for k in before)  # the same tensors, not copies
    assert isinstance(model.image_encoder.trunk, CpuHiera)
    assert isinstance(model.image_encoder.trunk.blocks[0].attn, CpuMultiScaleAttention)
    assert isinstance(model.sam_mask_decoder.conv_s0, CpuConv1x1)
    assert isinstance(model.memory_attention.layers[0].linear1, CpuLinear)
    assert isinstance(model.memory_encoder, CpuMemoryEncoder)
    assert not any(isinstance(m, CpuModule) for m in model.memory_encoder.modules() if isinstance(m, nn.Conv2d))

    remove_cpu_backend(model)
    assert not has_cpu_backend(model)
    assert type(model.sam_mask_decoder.conv_s0) is nn.Conv2d
    assert not hasattr(model.image_encoder.trunk, "_pos_cache")
    assert list(model.state_dict()) == list(before)


def test_plain_build_has_no_swapped_module(tiny_model_files, monkeypatch):
    yaml_path = tiny_model_files.config
    plain = build_model(*tiny_model_files, accel=None)
    assert not has_cpu_backend(plain)
    assert has_cpu_backend(build_model(yaml_path, accel="auto"))
    monkeypatch.setenv("SAMSTREAM_FAST_CPU", "0")  # read when building, not at import
    assert not has_cpu_backend(build_model(yaml_path, accel="auto"))
    assert has_cpu_backend(build_model(yaml_path, accel="cpu"))


def test_build_rejects_bad_accel(tiny_model_files):
    yaml_path = tiny_model_files.config
    with pytest.raises(ValueError, match="accel"):
        build_model(yaml_path, accel="gpu")
    with pytest.raises(ValueError, match="accel='cpu'"):
        build_model(yaml_path, device="meta", accel="cpu")


def test_modeling_imports_no_accel_and_reads_no_environment():
    """In a fresh interpreter: importing the model code pulls in no accel module and reads
    no environment variable (torch is imported first: its own reads do not count)."""
    code = r"""
import os, sys
import torch
reads = []
Base = type(os.environ)
class Recording(Base):
    pass
def record(name):
    def wrapper(self, key, *args):
        reads.append(key)
        return getattr(Base, name)(self, key, *args)
    return wrapper
for name in ("__getitem__", "get", "__contains__"):
    setattr(Recording, name, record(name))
os.environ.__class__ = Recording
real_getenv = os.getenv
os.getenv = lambda key, *a: (reads.append(key), real_getenv(key, *a))[1]
import samstream.modeling.sam2
os.environ.__class__ = Base
print(sorted(m for m in sys.modules if m.startswith("samstream.accel")))
print(sorted(set(reads)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["[]", "[]"], out


# --------------------------------------------------------------------------- stepping aside


def test_kernels_run_at_inference_and_step_aside_for_autograd(tiny_model_files):
    counting = CountingKernels()
    weights = tiny_model_files.checkpoint
    config, _ = load_config(tiny_model_files.config)
    torch.manual_seed(0)
    plain = build_model(config, weights, accel=None)
    fast = build_model(config, weights, accel=None)
    apply_cpu_backend(fast, kernels=counting.kernels)
    x = _images(plain.image_size)[:1]

    with torch.inference_mode():
        fast.encode_images(x)
    assert counting.calls > 0  # the oneDNN kernels do run at inference

    counting.calls = 0
    grads = []
    for model in (plain, fast):
        model.zero_grad()
        loss = model.encode_images(x).image_embed.square().mean()
        loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert counting.calls == 0  # with gradients needed, the plain path ran
    want, got = grads
    assert "image_encoder.trunk.blocks.0.attn.qkv.weight" in got
    assert sorted(got) == sorted(want)
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-3)


def test_merged_neck_projection_is_differentiable(tiny_model_files):
    """The neck's merged conv_s0/conv_s1 projection (plain math in modeling/) passes
    gradients to both convolutions it merges."""
    model = build_model(*tiny_model_files, accel=None)
    x = _images(model.image_size)[:1]
    feats = model.encode_images(x)
    (feats.features[0].sum() + feats.features[1].sum()).backward()
    assert model.sam_mask_decoder.conv_s0.weight.grad is not None
    assert model.image_encoder.neck.convs[-1].conv.weight.grad is not None


# --------------------------------------------------------------------------- compile


def test_compile_model_compiles_parts_without_patching_forward(tiny_model_files):
    model = build_model(tiny_model_files.config, accel="cpu")
    keys = list(model.state_dict())
    compile_model(model, parts=VIDEO_PARTS)
    for name in VIDEO_PARTS:
        part = getattr(model, name)
        assert "forward" not in vars(part)  # forward is the class's, not an instance patch
        assert part._compiled_call_impl is not None
    assert model.memory_attention._compiled_call_impl is None
    assert list(model.state_dict()) == keys
    with pytest.raises(ValueError, match="no_such_part"):
        compile_model(model, parts=("no_such_part",))
    with pytest.raises(TypeError, match="parts"):
        compile_model(model, parts="image_encoder")


def test_builder_compiles_image_encoder_from_config(tiny_model_files):
    config, _ = load_config(tiny_model_files.config)
    model = build_model(replace(config, compile_image_encoder=True), accel=None)
    assert model.image_encoder._compiled_call_impl is not None
    assert model.sam_mask_decoder._compiled_call_impl is None


def test_backend_steps_aside_inside_torch_compile(tiny_model_files):
    """Traced by torch.compile (dynamo, eager backend: no C++ build), the swapped modules run
    their plain code: no oneDNN call, the plain model's features."""
    counting = CountingKernels()
    plain = build_model(*tiny_model_files, accel=None)
    fast = build_model(*tiny_model_files, accel=None)
    apply_cpu_backend(fast, kernels=counting.kernels)
    compile_model(fast, parts=("image_encoder",), backend="eager")
    x = _images(plain.image_size)[:1]
    with torch.inference_mode():
        got = fast.encode_images(x)
        want = plain.encode_images(x)
    assert counting.calls == 0
    for a, b in zip(got.features, want.features):
        torch.testing.assert_close(a, b, atol=FP32_TOL, rtol=FP32_TOL)


@pytest.mark.parametrize("amx", [False, True])
def test_bf16_attention_kernel_follows_amx(amx):
    """Without AMX, bfloat16 attention runs as chunked matrix products (a [B, Nq, H, D] layout);
    with AMX it is PyTorch's fused kernel, which is faster there. Both give the same attention."""
    real = probe_onednn()
    if not real.bf16:
        pytest.skip("no bfloat16 kernels on this CPU")
    from samstream.accel.cpu_attention import cpu_scaled_dot_product

    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 32, generator=gen).to(torch.bfloat16) for n in (64, 96, 96))
    with torch.inference_mode():
        got = cpu_scaled_dot_product(replace(real, amx=amx), q, k, v)
        want = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert got.is_contiguous() == amx  # the chunked path writes heads interleaved
    torch.testing.assert_close(got.float(), want.float(), atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("activation", ["gelu", "relu"])
@pytest.mark.parametrize("separate", [False, True])
def test_fused_linear_with_the_activation_apart_agrees(activation, separate):
    """Whether the CPU at hand runs an activation fused or apart, the layer computes the same."""
    real = probe_onednn()
    if real.linear_op is None:
        pytest.skip("this PyTorch build has no working oneDNN linear op")
    from samstream.accel.onednn import fused_linear, plain_linear

    pairs = frozenset({(activation, torch.float32)}) if separate else frozenset()
    kernels = replace(real, separate=pairs)
    gen = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(2, 40, 24, generator=gen), torch.randn(56, 24, generator=gen), torch.randn(56, generator=gen)
    with torch.inference_mode():
        got = fused_linear(kernels, x, w, b, activation)
        want = plain_linear(x, w, b, activation)
    torch.testing.assert_close(got, want, atol=FP32_TOL, rtol=FP32_TOL)


def test_slow_epilogues_keeps_only_the_pairs_timed_slower_fused():
    """An op whose fused GELU is slow (and fused ReLU quick) is run with GELU apart only."""
    import time

    from samstream.accel.onednn import slow_epilogues

    def op(x, w, b, activation, scalars, algorithm):
        if activation == "gelu":
            time.sleep(0.01)
        return torch.nn.functional.linear(x, w, b)

    got = slow_epilogues(op, [torch.float32], ("gelu", "relu"), shape=(8, 4, 4), repeats=2)
    assert got == frozenset({("gelu", torch.float32)})


def test_probe_onednn_is_done_once_a_process():
    assert probe_onednn() is probe_onednn()
    assert all(a in ("gelu", "relu") and d in (torch.float32, torch.bfloat16) for a, d in probe_onednn().separate)
