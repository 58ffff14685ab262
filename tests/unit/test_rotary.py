"""The rotary position encoding: the complex-product path (eager) equals the real-valued one
(ONNX export, compile) on every layout attention hands it."""

from __future__ import annotations

import pytest
import torch

from samstream.modeling.position_encoding import _apply_rotary_real, apply_rotary, axial_rope_angles


def _inputs():
    gen = torch.Generator().manual_seed(0)
    angles = axial_rope_angles(16, 4, 4)  # [16, 8]
    base = torch.randn(2, 16, 3, 16, generator=gen)  # [B, N, H, D]
    return angles.cos(), angles.sin(), {
        "contiguous": base.transpose(1, 2).contiguous(),  # [B, H, N, D]
        "heads view": base.transpose(1, 2),  # the projection's transposed view
        "token slice": torch.randn(2, 3, 17, 16, generator=gen)[:, :, 1:],  # odd storage offset
        "bf16": base.transpose(1, 2).to(torch.bfloat16),
    }


@pytest.mark.parametrize("layout", ["contiguous", "heads view", "token slice", "bf16"])
def test_complex_path_equals_real_path(layout):
    cos, sin, cases = _inputs()
    x = cases[layout]
    got, want = apply_rotary(x, cos, sin), _apply_rotary_real(x, cos, sin)
    assert got.dtype == x.dtype and got.shape == x.shape
    tol = 1e-2 if x.dtype == torch.bfloat16 else 1e-6
    torch.testing.assert_close(got.float(), want.float(), atol=tol, rtol=tol)


def test_rotation_keeps_norms_and_zero_angle_is_identity():
    cos, sin, cases = _inputs()
    x = cases["contiguous"]
    out = apply_rotary(x, cos, sin)
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1), atol=1e-5, rtol=1e-5)
    same = apply_rotary(x, torch.ones_like(cos), torch.zeros_like(sin))
    torch.testing.assert_close(same, x)
