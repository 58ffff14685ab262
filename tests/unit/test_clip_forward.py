"""The differentiable clip forward (SAM2Model.forward / samstream.video.clip), on the tiny config."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import IMAGE_SIZE, tiny_config

from samstream.build import build_model
from samstream.modeling.sam2 import SAM2Model
from samstream.prompts import to_model_coords
from samstream.video.clip import ClipPrompts, run_clip, run_images
from samstream.video.predictor import VideoPredictor

S = IMAGE_SIZE
# parameters that the tiny config never uses, by design of the architecture:
# no_mem_pos_enc only serves configs without directly_add_no_mem_embed.
UNUSED_BY_CONFIG = {"no_mem_pos_enc"}


def _video(t: int = 4, h: int = 72, w: int = 96, seed: int = 0) -> np.ndarray:
    """A smooth random clip [T, H, W, 3] uint8 with a bright square moving right."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(t, h // 8, w // 8, 3)).astype(np.float32)
    frames = np.kron(base, np.ones((1, 8, 8, 1), dtype=np.float32))
    for i in range(t):
        frames[i, 20:44, 10 + 6 * i : 34 + 6 * i] = 250.0
    return frames.clip(0, 255).astype(np.uint8)


def _objects_present(model) -> None:
    """Random weights judge objects absent about half the time; make them present so the
    masks (not the -1024 of absent objects) are what gets compared."""
    head = model.sam_mask_decoder.pred_obj_score_head
    last = head.layers[-1] if hasattr(head, "layers") else head
    with torch.no_grad():
        last.bias.add_(20.0)


def _corrector(coords_xy: tuple[float, float]):
    def correct(high_res: torch.Tensor):
        n = high_res.shape[0]
        xy = torch.tensor(coords_xy, dtype=torch.float32).expand(n, 1, 2).clone()
        return xy, torch.ones(n, 1, dtype=torch.int32)

    return correct


def test_every_parameter_gets_a_finite_nonzero_gradient():
    torch.manual_seed(0)
    model = SAM2Model(tiny_config()).train()
    frames = torch.randn(3, 3, S, S)
    clicks = ClipPrompts(  # object 0: a box and a click; object 1: a click, a negative click, padding
        point_coords=torch.tensor([[[20.0, 30.0], [70.0, 90.0], [40.0, 50.0]], [[90.0, 80.0], [10.0, 10.0], [0.0, 0.0]]]),
        point_labels=torch.tensor([[2, 3, 1], [1, 0, -1]], dtype=torch.int32),
    )
    mask = torch.zeros(2, 1, S, S)
    mask[0, :, 30:70, 30:90] = 1.0  # object 1 is absent on frame 2: its pointer is the no-object one
    outputs = model(
        frames,
        {0: clicks, 2: ClipPrompts(mask=mask)},
        corrector=_corrector((64.0, 64.0)),
        correction_frames={1},
        num_correction_clicks=2,
    )
    assert [o.frame_idx for o in outputs] == [0, 1, 2]
    assert [len(o.steps) for o in outputs] == [1, 3, 1]
    assert outputs[1].steps[-1].point_coords.shape == (2, 2, 2)  # frame 1 had no prompt: two clicks
    loss = sum(
        step.multimask_logits.sigmoid().mean() + step.ious.mean() + step.object_score_logits.mean()
        for o in outputs
        for step in o.steps
    )
    loss.backward()
    missing, bad = [], []
    for name, p in model.named_parameters():
        if name in UNUSED_BY_CONFIG:
            assert p.grad is None or not p.grad.any(), f"{name} is used after all: drop it from UNUSED_BY_CONFIG"
            continue
        if p.grad is None or not p.grad.abs().sum() > 0:
            missing.append(name)
        elif not torch.isfinite(p.grad).all():
            bad.append(name)
    assert not missing, f"no gradient: {missing}"
    assert not bad, f"non-finite gradient: {bad}"


def test_eval_clip_forward_equals_the_video_predictor():
    model = build_model(tiny_config(), for_video=True)
    torch.manual_seed(1)
    _objects_present(model)
    video = _video(t=5)
    h, w = video.shape[1:3]
    clicks = {1: [[22.0, 32.0]], 2: [[70.0, 50.0]]}

    predictor = VideoPredictor(model)
    session = predictor.open_session(video)
    for obj_id, pts in clicks.items():
        predictor.add_prompt(session, 0, obj_id, points=pts, labels=[1])
    expected = {r.frame_idx: r for r in predictor.propagate(session, progress=False)}

    frames = torch.stack([session.frames.get(t) for t in range(len(video))])
    coords = to_model_coords(torch.tensor([clicks[1], clicks[2]]), (h, w), S, "pixels")
    prompts = {0: ClipPrompts(point_coords=coords, point_labels=torch.ones(2, 1, dtype=torch.int32))}
    with torch.no_grad():
        outputs = model(frames, prompts)
    for t, out in enumerate(outputs):
        for i, obj_id in enumerate(clicks):
            want = session.objects[obj_id].output_at(t)
            torch.testing.assert_close(out.masks[i : i + 1], want.pred_masks, atol=1e-4, rtol=0)
            torch.testing.assert_close(out.object_score_logits[i : i + 1], want.object_score_logits, atol=1e-4, rtol=0)
            torch.testing.assert_close(out.obj_ptr[i : i + 1], want.obj_ptr, atol=1e-4, rtol=0)
        video_res = torch.nn.functional.interpolate(out.masks, size=(h, w), mode="bilinear", align_corners=False)
        torch.testing.assert_close(video_res, expected[t].masks, atol=1e-4, rtol=0)
    assert outputs[0].is_conditioning and not any(o.is_conditioning for o in outputs[1:])


def test_clip_prompts_are_checked():
    model = SAM2Model(tiny_config()).eval()
    frames = torch.randn(2, 3, S, S)
    with pytest.raises(ValueError, match="point_labels"):
        ClipPrompts(point_coords=torch.zeros(1, 1, 2))
    with pytest.raises(ValueError, match="points .* or a mask"):
        ClipPrompts()
    with pytest.raises(ValueError, match="outside the clip"):
        run_clip(model, frames, {5: ClipPrompts(mask=torch.zeros(1, 1, S, S))})
    with pytest.raises(ValueError, match="same objects"):
        run_clip(
            model,
            frames,
            {0: ClipPrompts(mask=torch.zeros(1, 1, S, S)), 1: ClipPrompts(mask=torch.zeros(2, 1, S, S))},
        )
    with pytest.raises(ValueError, match="corrector"):
        run_clip(model, frames, {0: ClipPrompts(mask=torch.zeros(1, 1, S, S))}, correction_frames={1})


@pytest.mark.parametrize("t_len, reverse", [(1, False), (3, False), (3, True)])
def test_the_last_processed_frame_is_not_encoded_into_memory(monkeypatch, t_len, reverse):
    """No later frame reads it, so the memory encoder runs on every frame but the last one
    processed (none for an image): T - 1 calls, and never on the final frame of the order."""
    model = SAM2Model(tiny_config()).train()
    encoded = []
    encode = model.encode_memory

    def counting(features, *args, **kwargs):
        encoded.append(features.shape[0])
        return encode(features, *args, **kwargs)

    monkeypatch.setattr(model, "encode_memory", counting)
    frames = torch.randn(t_len, 3, S, S)
    prompt_frame = t_len - 1 if reverse else 0
    clicks = ClipPrompts(point_coords=torch.tensor([[[40.0, 50.0]]]), point_labels=torch.ones(1, 1, dtype=torch.int32))
    outputs = run_clip(model, frames, {prompt_frame: clicks}, reverse=reverse)
    assert len(outputs) == t_len
    assert len(encoded) == t_len - 1
    outputs[-1 if not reverse else 0].masks.sum().backward()  # the unencoded frame still trains the heads


def _image_clicks(n: int, seed: int) -> ClipPrompts:
    gen = torch.Generator().manual_seed(seed)
    coords = torch.rand(n, 1, 2, generator=gen) * S
    return ClipPrompts(point_coords=coords, point_labels=torch.ones(n, 1, dtype=torch.int32))


@pytest.mark.parametrize("training", [False, True])
def test_run_images_equals_run_clip_on_each_image(training):
    """B images with 2, 1 and 3 objects, two corrective clicks each: the same multimask logits,
    IoUs, object scores and chosen masks as a 1-frame run_clip per image, and gradients too."""
    torch.manual_seed(0)
    model = SAM2Model(tiny_config()).train(training)
    _objects_present(model)
    images = torch.randn(3, 3, S, S)
    prompts = [_image_clicks(n, seed) for seed, n in enumerate((2, 1, 3))]
    correctors = [_corrector((30.0 + 10 * b, 60.0)) for b in range(3)]
    batched = run_images(model, images, prompts, corrector=correctors, num_correction_clicks=2)
    assert len(batched) == 3
    for b in range(3):
        alone = run_clip(
            model, images[b : b + 1], {0: prompts[b]}, corrector=correctors[b], correction_frames={0}, num_correction_clicks=2
        )[0]
        assert len(batched[b].steps) == len(alone.steps) == 3
        for got, want in zip(batched[b].steps, alone.steps):
            torch.testing.assert_close(got.multimask_logits, want.multimask_logits, atol=1e-4, rtol=0)
            torch.testing.assert_close(got.ious, want.ious, atol=1e-5, rtol=0)
            torch.testing.assert_close(got.object_score_logits, want.object_score_logits, atol=1e-5, rtol=0)
            torch.testing.assert_close(got.point_coords, want.point_coords)
        torch.testing.assert_close(batched[b].masks, alone.masks, atol=1e-4, rtol=0)
        assert batched[b].is_conditioning
    if training:  # gradients reach the image encoder through each image's rows
        sum(o.masks.sum() for o in batched).backward()
        grad = model.image_encoder.trunk.patch_embed.proj.weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_run_images_checks_its_prompts():
    model = SAM2Model(tiny_config()).eval()
    images = torch.randn(2, 3, S, S)
    box = ClipPrompts(point_coords=torch.zeros(1, 2, 2), point_labels=torch.tensor([[2, 3]], dtype=torch.int32))
    with pytest.raises(ValueError, match="prompted alike"):
        run_images(model, images, [_image_clicks(1, 0), box])
    with pytest.raises(ValueError, match="1 prompts for 2 images"):
        run_images(model, images, [_image_clicks(1, 0)])
    with pytest.raises(ValueError, match="correctors for 2 images"):
        run_images(model, images, [_image_clicks(1, 0), _image_clicks(2, 1)], corrector=[_corrector((1.0, 1.0))])
    with pytest.raises(ValueError, match=r"\[B, 3, S, S\]"):
        run_images(model, images[:, :1], [_image_clicks(1, 0)] * 2)
