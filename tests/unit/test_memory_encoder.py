"""The memory encoder's inference chunking gives what one batched pass gives."""

import torch

from samstream.modeling import memory_encoder as me
from samstream.presets import preset_config


def _encoder():
    torch.manual_seed(0)
    return me.MemoryEncoder(preset_config("sam2.1_hiera_t").memory_encoder).eval()


def test_chunks_of_objects_equal_one_batch(monkeypatch):
    enc = _encoder()
    feats = torch.randn(1, 256, 8, 8).expand(5, -1, -1, -1)  # one frame, five objects (stride 0)
    masks = torch.rand(5, 1, 128, 128)
    with torch.inference_mode():
        monkeypatch.setattr(me, "CHUNK_MASK_PIXELS", 10**9)
        whole, whole_pos = enc(feats, masks)
        monkeypatch.setattr(me, "CHUNK_MASK_PIXELS", 2 * 128 * 128)  # chunks of 2, 2, 1
        parts, parts_pos = enc(feats, masks)
        separate = enc(feats.contiguous(), masks)[0]  # rows not shared: projected per object
    assert parts.shape == whole.shape == (5, 64, 8, 8)
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(parts_pos, whole_pos)
    torch.testing.assert_close(separate, whole, rtol=1e-5, atol=1e-5)


def test_training_runs_one_batch_with_gradients(monkeypatch):
    enc = _encoder().train()
    monkeypatch.setattr(me, "CHUNK_MASK_PIXELS", 1)
    feats = torch.randn(3, 256, 8, 8, requires_grad=True)
    out, _ = enc(feats, torch.rand(3, 1, 128, 128))
    out.sum().backward()
    assert feats.grad is not None and feats.grad.shape == feats.shape
