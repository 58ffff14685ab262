"""Memory projections kept across frames, and the first self-attention computed once per frame:
the same results as projecting everything again on every frame, with memory bounded."""

from __future__ import annotations

import pytest
import torch
from tiny import moving_clip

from samstream.build import build_model
from samstream.modeling.memory_cache import MemoryProjectionCache
from samstream.video.predictor import VideoPredictor

pytestmark = pytest.mark.usefixtures("one_thread")

H, W = 136, 320
PROMPTS = {
    1: {"points": [[160.0, 74.8]], "labels": [1]},
    2: {"box": [16.0, 27.2, 112.0, 122.4]},
    3: {"points": [[256.0, 68.0], [200.0, 40.0]], "labels": [1, 0]},
}


@pytest.fixture(scope="module")
def predictor(tiny_model_files):
    return VideoPredictor(build_model(tiny_model_files.config, tiny_model_files.checkpoint, for_video=True))


@pytest.fixture(scope="module")
def clip():
    return moving_clip(12, H, W)


def _track(predictor, clip, *, cached: bool, prompts=PROMPTS, autocast: bool = False):
    session = predictor.open_session(clip)
    if not cached:
        session.projection_cache = None
    sizes = []
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        for obj_id, prompt in prompts.items():
            predictor.add_prompt(session, 0, obj_id, **prompt)
        out = {}
        for f, _, logits in predictor.propagate(session, progress=False):
            out[f] = logits.float().clone()
            if cached:
                sizes.append(len(session.projection_cache))
    return out, session, sizes


def test_kept_projections_give_the_same_masks(predictor, clip):
    cached, session, sizes = _track(predictor, clip, cached=True)
    plain, _, _ = _track(predictor, clip, cached=False)
    assert sorted(cached) == sorted(plain) == list(range(len(clip)))
    for f in plain:
        torch.testing.assert_close(cached[f], plain[f], atol=1e-4, rtol=0)
    cache = session.projection_cache
    # after the first frames every memory but the newest one is found again
    assert cache.hits > cache.misses > 0
    # bounded by the memory window (num_maskmem frames per object, plus the one just dropped)
    num_maskmem = predictor.model.num_maskmem
    assert max(sizes) <= (num_maskmem + 1) * len(PROMPTS)
    assert sizes[-1] == sizes[-2], "the cache keeps growing with the video"


def test_kept_projections_under_bf16_autocast(predictor, clip):
    cached, _, _ = _track(predictor, clip, cached=True, autocast=True)
    plain, _, _ = _track(predictor, clip, cached=False, autocast=True)
    for f in plain:
        agree = ((cached[f] > 0) == (plain[f] > 0)).float().mean()
        assert agree >= 0.99, f"frame {f}: {agree:.4f}"


def test_a_replaced_memory_is_projected_again(predictor, clip):
    cache = MemoryProjectionCache()
    model = predictor.model
    layers = model.memory_attention.layers
    from samstream.modeling.memory_cache import CachedMemoryFrame, project_memories

    hw = (model.image_size // 16) ** 2
    side = model.image_size // 16
    row = torch.randn(1, model.mem_dim, side, side)
    pos = torch.randn(1, model.mem_dim, side, side)
    frame = CachedMemoryFrame((row,), pos, torch.zeros(model.mem_dim))
    args = ([l.cross_attn_image for l in layers], [l.pos_enc_at_cross_attn_keys for l in layers])
    with torch.inference_mode():
        # the layers' keys and values are assembled into reused buffers: copy them out
        first = [t.clone() for t in project_memories(cache, *args, [frame], None, None, hw)[0]]
        again = [t.clone() for t in project_memories(cache, *args, [frame], None, None, hw)[0]]
        assert (cache.hits, cache.misses) == (1, 1)
        torch.testing.assert_close(first[0], again[0])
        torch.testing.assert_close(first[1], again[1])
        other = CachedMemoryFrame((row.clone() + 1.0,), pos, torch.zeros(model.mem_dim))
        changed = project_memories(cache, *args, [other], None, None, hw)[0]
        assert cache.misses == 2
        assert not torch.allclose(changed[1], first[1])
    cache.advance()
    cache.advance()
    assert len(cache) == 0, "entries unused for two frames are dropped"


def test_shared_query_rows_computed_once_give_the_same_result(predictor):
    attention = predictor.model.memory_attention.eval()
    gen = torch.Generator().manual_seed(0)
    c, hw, m = attention.d_model, 64, 3 * 64
    kv_dim = attention.layers[0].cross_attn_image.kv_in_dim
    curr = torch.randn(1, hw, c, generator=gen)
    curr_pos = torch.randn(1, hw, c, generator=gen)
    memory = torch.randn(3, m, kv_dim, generator=gen)
    memory_pos = torch.randn(3, m, kv_dim, generator=gen)
    calls = []
    hook = attention.layers[0].self_attn.register_forward_pre_hook(lambda mod, args: calls.append(args[0].shape[0]))
    try:
        with torch.inference_mode():
            shared = attention(curr.expand(3, -1, -1), curr_pos.expand(3, -1, -1), memory, memory_pos)
            full = attention(curr.repeat(3, 1, 1), curr_pos.repeat(3, 1, 1), memory, memory_pos)
    finally:
        hook.remove()
    assert calls == [1, 3], "the shared frame's self-attention ran once, the materialized one per object"
    torch.testing.assert_close(shared, full, atol=1e-5, rtol=1e-5)
