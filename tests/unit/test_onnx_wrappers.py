"""The export wrappers (samstream.export.onnx.wrappers) against the model's own steps, in PyTorch,
and the numpy helpers of the runtime against PyTorch: no export here, so every test is fast."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny import tiny_config

from samstream.build import build_model
from samstream.export.onnx.wrappers import MemoryAttentionGraph, MemoryEncoderGraph, PromptDecoderGraph, rotate_pairs
from samstream.modeling.position_encoding import apply_rotary, axial_rope_angles
from samstream.modeling.sam2 import MemoryInput, PointerInput
from samstream.onnx.resize import antialias_weights, bilinear_weights, resize, round_to_bfloat16

TOL = dict(rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(tiny_config(), for_video=True, accel=None)


def _complex_rotary(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotary encoding written with complex numbers: channel pairs as complex values times e^{i angle}."""
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(xc * torch.polar(torch.ones_like(angles), angles)).flatten(-2)


def test_real_rotary_equals_the_complex_one():
    torch.manual_seed(1)
    angles = axial_rope_angles(16, 8, 8)  # [64, 8]
    x = torch.randn(2, 3, 64, 16)
    want = _complex_rotary(x, angles)
    torch.testing.assert_close(rotate_pairs(x, angles.cos(), angles.sin()), want, **TOL)
    torch.testing.assert_close(apply_rotary(x, angles.cos(), angles.sin()), want, **TOL)


def test_identity_rotation_leaves_pointer_keys_unchanged():
    x = torch.randn(1, 1, 5, 8)
    same = rotate_pairs(x, torch.ones(5, 4), torch.zeros(5, 4))
    assert torch.equal(same, x)


@pytest.mark.parametrize("num_memories, num_pointers", [(1, 0), (1, 1), (3, 5), (7, 16)])
def test_memory_attention_graph_equals_condition_on_memory(model, num_memories, num_pointers):
    torch.manual_seed(2)
    b, c, cm, h = 3, model.hidden_dim, model.mem_dim, 8
    feats, pos = torch.randn(b, c, h, h), torch.randn(b, c, h, h)
    mem = torch.randn(b, num_memories, cm, h, h)
    mem_pos = torch.randn(1, cm, h, h).expand(b, -1, -1, -1)
    slots = [0] + list(range(1, num_memories))[::-1]
    ptrs = torch.randn(b, num_pointers, c)
    offsets = list(range(num_pointers))
    window = 16
    with torch.no_grad():
        want = model.condition_on_memory(
            feats,
            pos,
            [MemoryInput(mem[:, i], mem_pos, s) for i, s in enumerate(slots)],
            [PointerInput(ptrs[:, i], o) for i, o in enumerate(offsets)],
            is_init_cond_frame=False,
            pointer_window=window,
        )
        got = MemoryAttentionGraph(model)(
            feats,
            pos,
            mem,
            mem_pos[:, None].expand(-1, num_memories, -1, -1, -1),
            torch.tensor(slots),
            ptrs,
            torch.tensor(offsets, dtype=torch.float32) / (window - 1),
        )
    torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
def test_prompt_decoder_graph_equals_forward_sam_heads(model, multimask, with_mask):
    torch.manual_seed(3)
    b, c, h = 2, model.hidden_dim, 8
    embed = torch.randn(b, c, h, h)
    high = [torch.randn(b, c // 8, 4 * h, 4 * h), torch.randn(b, c // 4, 2 * h, 2 * h)]
    coords = torch.rand(b, 2, 2) * model.image_size
    labels = torch.tensor([[1, 0], [2, 3]])
    mask = torch.randn(b, 1, 4 * h, 4 * h) if with_mask else None
    with torch.no_grad():
        want = model.forward_sam_heads(embed, coords, labels, mask, high, multimask_output=multimask)
        masks, iou, score, ptrs = PromptDecoderGraph(model, multimask)(
            embed,
            *high,
            coords,
            labels,
            mask if with_mask else torch.zeros(b, 1, 4 * h, 4 * h),
            torch.full((b,), 1.0 if with_mask else 0.0),
        )
    present = (score > 0)[:, :, None, None]
    torch.testing.assert_close(torch.where(present, masks, -1024.0), want.low_res_multimasks, **TOL)
    torch.testing.assert_close(iou, want.ious, **TOL)
    torch.testing.assert_close(score, want.object_score_logits, **TOL)
    torch.testing.assert_close(ptrs, want.candidate_ptrs, **TOL)


def test_memory_encoder_graph_equals_encode_memory(model):
    torch.manual_seed(4)
    s = model.image_size
    embed = torch.randn(2, model.hidden_dim, 8, 8)
    low = torch.randn(2, 1, s // 4, s // 4) * 5
    scores = torch.tensor([[1.0], [-1.0]])
    from_pts = torch.tensor([True, False])
    with torch.no_grad():
        high = F.interpolate(low, size=(s, s), mode="bilinear", align_corners=False)
        want = [model.encode_memory(embed[i : i + 1], high[i : i + 1], scores[i : i + 1], bool(from_pts[i])) for i in range(2)]
        got = MemoryEncoderGraph(model)(embed, low, scores, from_pts)
    torch.testing.assert_close(got[0], torch.cat([w.features for w in want]), **TOL)
    torch.testing.assert_close(got[1], torch.cat([w.pos_enc for w in want]), **TOL)


# --------------------------------------------------------------------------- numpy helpers of the runtime


@pytest.mark.parametrize("size_in, size_out", [(512, 256), (400, 256), (600, 256), (64, 136), (64, 320), (256, 64), (7, 7), (100, 300)])
def test_resize_weights_match_torch(size_in, size_out):
    """The weights are torch's (float64 results agree to rounding); in float32 the numpy resize
    is closer to the exact result than torch's own float32 kernel, whose source coordinates are
    rounded to float32 (up to ~2e-4 on unit-variance noise when downscaling 600 -> 256)."""
    torch.manual_seed(6)
    x = torch.randn(1, 2, size_in, size_in + 3)
    out = (size_out, size_out + 5)
    for antialias, weights in ((True, antialias_weights), (False, bilinear_weights)):
        exact = F.interpolate(x.double(), size=out, mode="bilinear", align_corners=False, antialias=antialias).numpy()
        torch32 = F.interpolate(x, size=out, mode="bilinear", align_corners=False, antialias=antialias).numpy()
        got = resize(x.numpy(), out, antialias=antialias)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, exact, rtol=0, atol=1e-6, err_msg=f"antialias={antialias}")
        np.testing.assert_allclose(got, torch32, rtol=0, atol=5e-4, err_msg=f"antialias={antialias}")
        assert weights(size_in, size_out).shape == (size_out, size_in)


def test_bfloat16_rounding_matches_torch():
    torch.manual_seed(5)
    x = torch.cat([torch.randn(10000) * 10, torch.tensor([0.0, -0.0, 1.0, 1.00390625, 1.01171875, 3.0e38])])
    want = x.to(torch.bfloat16).float().numpy()
    assert np.array_equal(round_to_bfloat16(x.numpy()), want)


def test_memory_selection_is_shared_by_both_trackers():
    import samstream.memory_selection as shared
    from samstream.video.memory import selection

    assert selection.select_memories is shared.select_memories
    assert selection.MemoryPolicy is shared.MemoryPolicy
