import math
from dataclasses import dataclass

import pytest
import torch
from torch.testing import assert_close

from samstream.training.losses import (
    LossWeights,
    clip_losses,
    dice_loss,
    frame_losses,
    sigmoid_focal_loss,
    step_losses,
)


@dataclass
class Step:
    multimask_logits: torch.Tensor
    ious: torch.Tensor
    object_score_logits: torch.Tensor


def _square_gt(n=2, size=16):
    gt = torch.zeros(n, 1, size, size, dtype=torch.bool)
    gt[:, :, 4:12, 4:12] = True
    return gt


def test_focal_of_zero_logits_matches_closed_form():
    targets = torch.zeros(1, 1, 4, 4)
    targets[..., :2, :] = 1.0  # half the pixels positive
    loss = sigmoid_focal_loss(torch.zeros(1, 1, 4, 4), targets, alpha=0.25, gamma=2.0)
    # p = 0.5 everywhere: ce = ln 2, (1 - p_t)^2 = 1/4, alpha_t = 0.25 or 0.75 on half each.
    expected = math.log(2) * 0.25 * (0.5 * 0.25 + 0.5 * 0.75)
    assert_close(loss, torch.tensor([[expected]]), atol=1e-6, rtol=0)


def test_focal_with_gamma_zero_and_no_alpha_is_bce():
    logits = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    targets = (torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none").flatten(2).mean(-1)
    assert_close(sigmoid_focal_loss(logits, targets, alpha=-1, gamma=0), bce, atol=1e-6, rtol=1e-6)


def test_dice_of_perfect_and_opposite_prediction():
    gt = _square_gt(1).float()
    perfect = (gt * 2 - 1) * 50
    assert_close(dice_loss(perfect, gt), torch.zeros(1, 1), atol=1e-5, rtol=0)
    opposite = -perfect
    # no overlap; the prediction covers the 192 background pixels: 1 - 1 / (192 + 64 + 1)
    assert_close(dice_loss(opposite, gt), torch.tensor([[1 - 1 / 257]]), atol=1e-5, rtol=0)


def test_perfect_prediction_gives_near_zero_loss():
    gt = _square_gt(2)
    logits = ((gt.float() * 2 - 1) * 30).expand(2, 3, 16, 16).clone()
    step = Step(logits, torch.ones(2, 3), torch.full((2, 1), 30.0))
    terms = step_losses(step, gt, num_objects=2)
    for value in (terms.focal, terms.dice, terms.iou, terms.object_score, terms.total):
        assert float(value) < 1e-4


def test_best_candidate_carries_mask_loss_and_gradient():
    gt = _square_gt(1)
    good = (gt.float() * 2 - 1) * 30
    bad = torch.zeros(1, 1, 16, 16)
    logits = torch.cat([bad, good, bad], dim=1).requires_grad_(True)
    step = Step(logits, torch.tensor([[0.0, 1.0, 0.0]]), torch.full((1, 1), 30.0))
    terms = step_losses(step, gt, num_objects=1)
    assert float(terms.focal.detach()) < 1e-6 and float(terms.dice.detach()) < 1e-4
    terms.total.backward()
    # only the best candidate's logits receive gradient from the mask losses
    assert logits.grad[0, 0].abs().sum() == 0
    assert logits.grad[0, 2].abs().sum() == 0
    # the IoU loss is on every candidate: candidates 0 and 2 have IoU 0 (zero logits -> empty), predicted 0
    assert float(terms.iou) < 1e-6


def test_iou_loss_is_l1_averaged_over_candidates():
    gt = _square_gt(1)
    good = (gt.float() * 2 - 1) * 30
    logits = good.expand(1, 2, 16, 16)
    step = Step(logits, torch.tensor([[0.5, 0.9]]), torch.full((1, 1), 30.0))
    terms = step_losses(step, gt, num_objects=1)
    assert_close(terms.iou, torch.tensor((0.5 + 0.1) / 2), atol=1e-6, rtol=0)


def test_absent_object_only_gets_object_score_loss():
    gt = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    step = Step(torch.zeros(1, 3, 16, 16), torch.full((1, 3), 0.7), torch.zeros(1, 1))
    terms = step_losses(step, gt, num_objects=1)
    assert float(terms.focal) == 0 and float(terms.dice) == 0 and float(terms.iou) == 0
    assert_close(terms.object_score, torch.tensor(math.log(2)), atol=1e-6, rtol=0)
    assert_close(terms.total, torch.tensor(math.log(2)), atol=1e-6, rtol=0)


def test_weighted_total_and_normalisation_by_objects():
    gt = _square_gt(2)
    step = Step(torch.zeros(2, 1, 16, 16), torch.zeros(2, 1), torch.zeros(2, 1))
    one = step_losses(step, gt, num_objects=1)
    two = step_losses(step, gt, num_objects=2)
    assert_close(two.total, one.total / 2, atol=1e-6, rtol=1e-6)
    w = LossWeights()
    expected = one.focal * w.mask + one.dice * w.dice + one.iou * w.iou + one.object_score * w.object_score
    assert_close(one.total, expected, atol=1e-6, rtol=1e-6)


def test_low_res_logits_are_upsampled_to_gt_size():
    gt = torch.zeros(1, 1, 32, 32, dtype=torch.bool)
    gt[..., 8:24, 8:24] = True  # the 4x upsampled square of the 8x8 logits below
    low = torch.zeros(1, 1, 8, 8)
    low[..., 2:6, 2:6] = 30.0
    low[..., :2, :] = -30.0
    low[..., 6:, :] = -30.0
    low[..., :, :2] = -30.0
    low[..., :, 6:] = -30.0
    step = Step(low, torch.ones(1, 1), torch.full((1, 1), 30.0))
    terms = step_losses(step, gt, num_objects=1)
    assert float(terms.dice) < 0.05 and float(terms.iou) < 0.05


def test_steps_and_frames_are_summed():
    gt = _square_gt(2)
    step = Step(torch.zeros(2, 3, 16, 16), torch.zeros(2, 3), torch.zeros(2, 1))
    one = step_losses(step, gt, num_objects=2)
    three = frame_losses([step, step, step], gt, num_objects=2)
    assert_close(three.total, one.total * 3, atol=1e-5, rtol=1e-6)
    clip = clip_losses([[step], [step, step]], torch.stack([gt[:, 0], gt[:, 0]]))
    assert_close(clip.total, one.total * 3, atol=1e-5, rtol=1e-6)


def test_bad_shapes_are_named():
    gt = _square_gt(2)
    with pytest.raises(ValueError, match="gt_masks"):
        step_losses(Step(torch.zeros(3, 1, 16, 16), torch.zeros(3, 1), torch.zeros(3, 1)), gt, 1)
    with pytest.raises(ValueError, match="ious"):
        step_losses(Step(torch.zeros(2, 3, 16, 16), torch.zeros(2, 1), torch.zeros(2, 1)), gt, 1)
    with pytest.raises(ValueError, match="frames"):
        clip_losses([[Step(torch.zeros(2, 1, 16, 16), torch.zeros(2, 1), torch.zeros(2, 1))]], torch.zeros(2, 2, 16, 16, dtype=torch.bool))


def test_embedding_rms_penalty_only_above_the_limit():
    from samstream.training.losses import embedding_rms_penalty

    small = torch.full((1, 4, 2, 2), 0.5)  # rms 0.5 per token
    assert float(embedding_rms_penalty(small, 1.0)) == 0.0
    big = torch.full((1, 4, 2, 2), 3.0)  # rms 3 -> (3 - 1)^2
    assert_close(embedding_rms_penalty(big, 1.0), torch.tensor(4.0))
    big.requires_grad_(True)
    embedding_rms_penalty(big, 1.0).backward()
    assert bool((big.grad > 0).all())  # pushes the embedding down


def test_all_candidates_weight_trains_every_candidate():
    gt = _square_gt(1)
    logits = torch.zeros(1, 3, 16, 16, requires_grad=True)
    step = Step(logits, torch.zeros(1, 3), torch.full((1, 1), 30.0))
    step_losses(step, gt, num_objects=1, weights=LossWeights(all_candidates=0.5)).total.backward()
    assert all(logits.grad[0, m].abs().sum() > 0 for m in range(3))
