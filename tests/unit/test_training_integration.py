"""Losses, prompt simulation and the corrector plugged into the model's differentiable clip forward."""

import numpy as np
import pytest
import torch
from tiny import IMAGE_SIZE, tiny_config

from samstream.build import build_model
from samstream.training.augment import VideoAugment
from samstream.training.config import AugmentConfig
from samstream.training.data.mix import collate_clips
from samstream.training.data.synthetic import SyntheticDataset
from samstream.training.losses import clip_losses
from samstream.training.optim import OptimizerConfig, build_optimizer, clip_gradients
from samstream.training.prompts import PromptSamplingConfig, make_corrector, sample_clip_prompts
from samstream.training.synthetic import SyntheticVideoConfig

CLICKS_ONLY = PromptSamplingConfig(prob_points=1.0, prob_box_given_points=0.0, max_cond_frames=1, max_corrected_frames=1)


@pytest.fixture(scope="module")
def clip():
    dataset = SyntheticDataset(SyntheticVideoConfig(num_frames=2, num_objects=(2, 2)), length=10, max_objects=2)
    rng = np.random.default_rng(0)
    sample = VideoAugment(AugmentConfig(), size=IMAGE_SIZE, max_objects=2)(dataset.load(0, rng), rng)
    batch = collate_clips([sample])
    return batch.frames[0], batch.masks[0]  # [T, 3, S, S], [T, N, S, S]


def _loss(model, frames, gt, seed):
    generator = torch.Generator().manual_seed(seed)
    sample = sample_clip_prompts(gt, generator, CLICKS_ONLY)
    assert sample.plan.correction_frames == (0,)
    corrector = make_corrector(gt[0][:, None], generator)
    outputs = model(frames, sample.prompts, corrector=corrector, correction_frames=[0], num_correction_clicks=2)
    assert len(outputs[0].steps) == 3 and len(outputs[1].steps) == 1
    return clip_losses([o.steps for o in outputs], gt)


def test_clip_forward_losses_backpropagate(clip):
    frames, gt = clip
    model = build_model(tiny_config()).train()
    terms = _loss(model, frames, gt, seed=0)
    assert torch.isfinite(terms.total)
    terms.total.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert grads["sam_mask_decoder.iou_prediction_head.layers.2.weight"].abs().sum() > 0
    assert grads["image_encoder.trunk.patch_embed.proj.weight"].abs().sum() > 0
    assert grads["memory_encoder.out_proj.weight"].abs().sum() > 0  # frame 1 attends to frame 0's memory


@pytest.mark.slow  # about a minute on a busy 2-core CPU
def test_loss_falls_when_fitting_one_clip(clip):
    frames, gt = clip
    torch.manual_seed(0)
    model = build_model(tiny_config()).train()
    optimizer = build_optimizer(model, OptimizerConfig(lr=1e-3, image_encoder_lr_factor=1.0))
    history = []
    for step in range(12):
        terms = _loss(model, frames, gt, seed=step)
        optimizer.zero_grad()
        terms.total.backward()
        clip_gradients(model, 1.0)
        optimizer.step()
        history.append(float(terms.total.detach()))
    assert np.mean(history[-3:]) < 0.7 * np.mean(history[:3]), history
