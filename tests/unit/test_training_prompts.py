import pytest
import torch

from samstream.video.clip import ClipPrompts
from samstream.training.prompts import (
    PromptSamplingConfig,
    make_clip_correctors,
    make_corrector,
    masks_to_boxes,
    sample_boxes,
    sample_clicks_from_errors,
    sample_clip_prompts,
    sample_prompt_plan,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _gt(n=3, size=32):
    gt = torch.zeros(n, 1, size, size, dtype=torch.bool)
    for i in range(n):
        gt[i, 0, 2 + i : 10 + 3 * i, 5 : 15 + 2 * i] = True
    return gt


def test_first_click_lies_in_the_object_and_is_positive():
    gt = _gt()
    coords, labels = sample_clicks_from_errors(gt, None, _gen())
    assert coords.shape == (3, 1, 2) and labels.shape == (3, 1) and labels.dtype == torch.int32
    assert (labels == 1).all()
    for i in range(3):
        x, y = coords[i, 0].long().tolist()
        assert gt[i, 0, y, x]


def test_error_clicks_pick_the_error_region_with_the_right_label():
    gt = _gt(1)
    pred = gt.clone()
    pred[0, 0, 20:25, 20:25] = True  # a false positive blob only
    for seed in range(20):
        coords, labels = sample_clicks_from_errors(gt, pred, _gen(seed))
        x, y = coords[0, 0].long().tolist()
        assert 20 <= x < 25 and 20 <= y < 25 and labels.item() == 0
    pred = torch.zeros_like(gt)  # everything is a false negative
    coords, labels = sample_clicks_from_errors(gt, pred, _gen())
    x, y = coords[0, 0].long().tolist()
    assert gt[0, 0, y, x] and labels.item() == 1


def test_exact_prediction_gives_negative_background_click():
    gt = _gt(1)
    coords, labels = sample_clicks_from_errors(gt, gt.clone(), _gen())
    x, y = coords[0, 0].long().tolist()
    assert not gt[0, 0, y, x] and labels.item() == 0


def test_error_clicks_are_uniform_over_the_region():
    gt = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    gt[0, 0, 0, :2] = True  # two false-negative pixels
    counts = {0: 0, 1: 0}
    g = _gen(3)
    for _ in range(400):
        coords, _ = sample_clicks_from_errors(gt, None, g)
        counts[int(coords[0, 0, 0])] += 1
    assert 150 < counts[0] < 250 and counts[0] + counts[1] == 400


def test_boxes_are_tight_without_noise_and_bounded_with_noise():
    gt = _gt()
    tight = masks_to_boxes(gt)
    assert tight[0].tolist() == [5.0, 2.0, 14.0, 9.0]
    coords, labels = sample_boxes(gt, _gen(), noise=0.0)
    assert torch.equal(coords.reshape(3, 4), tight)
    assert labels.tolist() == [[2, 3]] * 3
    side = torch.stack([tight[:, 2] - tight[:, 0], tight[:, 3] - tight[:, 1]] * 2, dim=1)
    limit = torch.clamp(side * 0.1, max=20.0)
    for seed in range(10):
        coords, _ = sample_boxes(gt, _gen(seed))
        assert ((coords.reshape(3, 4) - tight).abs() <= limit + 1e-5).all()


def test_box_noise_is_capped_at_max_px():
    gt = torch.zeros(1, 1, 600, 600, dtype=torch.bool)
    gt[0, 0, 100:500, 100:500] = True
    for seed in range(10):
        coords, _ = sample_boxes(gt, _gen(seed))
        assert ((coords.reshape(4) - torch.tensor([100.0, 100.0, 499.0, 499.0])).abs() <= 20.0).all()


def test_plan_rules_and_frequencies():
    g = _gen(1)
    kinds = {"click": 0, "box": 0, "mask": 0}
    num_cond = {1: 0, 2: 0}
    for _ in range(2000):
        plan = sample_prompt_plan(8, g)
        assert plan.cond_frames[0] == 0 and len(set(plan.cond_frames)) == len(plan.cond_frames)
        num_cond[len(plan.cond_frames)] += 1
        kinds[plan.kinds[0]] += 1
        if plan.kinds[0] == "mask":
            assert plan.correction_frames == ()
            assert all(k == "mask" for k in plan.kinds)
        else:
            assert 1 <= len(plan.correction_frames) <= 2
            assert set(plan.cond_frames) <= set(plan.correction_frames)
    assert 900 < kinds["mask"] < 1100 and 400 < kinds["box"] < 600 and 400 < kinds["click"] < 600
    assert 900 < num_cond[1] < 1100


def test_single_frame_clip_always_gets_points_and_correction():
    for seed in range(50):
        plan = sample_prompt_plan(1, _gen(seed))
        assert plan.cond_frames == (0,) and plan.kinds[0] != "mask" and plan.correction_frames == (0,)


def test_clip_prompts_shapes_and_determinism():
    gt = _gt(2)[:, 0].unsqueeze(0).expand(5, 2, 32, 32).clone()
    a = sample_clip_prompts(gt, _gen(7))
    b = sample_clip_prompts(gt, _gen(7))
    assert a.plan == b.plan
    assert set(a.prompts) == set(a.plan.cond_frames)
    for t, prompt in a.prompts.items():
        other = b.prompts[t]
        if prompt.mask is not None:
            assert prompt.mask.shape == (2, 1, 32, 32) and prompt.mask.dtype == torch.float32
            assert torch.equal(prompt.mask, other.mask)
        else:
            assert prompt.point_coords.shape[0] == 2 and prompt.point_labels.dtype == torch.int32
            assert torch.equal(prompt.point_coords, other.point_coords)


def test_clip_prompts_are_the_clip_forwards_type():
    gt = _gt(2)[:, 0].unsqueeze(0).expand(3, 2, 32, 32).clone()
    for seed in range(10):
        for prompt in sample_clip_prompts(gt, _gen(seed)).prompts.values():
            assert isinstance(prompt, ClipPrompts)
            assert (prompt.mask is None) != (prompt.point_coords is None)  # one kind per frame


def test_corrector_clicks_on_errors_and_sometimes_on_gt():
    gt = _gt(2)
    perfect_logits = gt.float() * 20 - 10
    corrector = make_corrector(gt, _gen(), prob_click_from_gt=0.0)
    coords, labels = corrector(perfect_logits)
    assert coords.shape == (2, 1, 2) and (labels == 0).all()  # exact -> background clicks
    low_res = torch.full((2, 1, 8, 8), -10.0)  # empty prediction at low resolution
    coords, labels = corrector(low_res)
    assert (labels == 1).all()
    always_gt = make_corrector(gt, _gen(), prob_click_from_gt=1.0)
    coords, labels = always_gt(perfect_logits)
    assert (labels == 1).all()  # from the GT: positive clicks despite a perfect prediction
    with pytest.raises(ValueError, match="pred_logits"):
        corrector(torch.zeros(3, 1, 32, 32))


def test_config_validation_names_field():
    with pytest.raises(ValueError, match="prob_points"):
        PromptSamplingConfig(prob_points=1.5)


def test_clip_correctors_use_each_frames_ground_truth():
    gt = torch.zeros(3, 1, 16, 16, dtype=torch.bool)
    gt[0, 0, :4, :4] = True
    gt[2, 0, 12:, 12:] = True
    correctors = make_clip_correctors(gt, (0, 2), _gen(), prob_click_from_gt=0.0)
    empty = torch.full((1, 1, 16, 16), -5.0)
    x0, y0 = correctors[0](empty)[0][0, 0].tolist()
    x2, y2 = correctors[2](empty)[0][0, 0].tolist()
    assert x0 < 4 and y0 < 4 and x2 >= 12 and y2 >= 12
    with pytest.raises(ValueError, match="outside the clip"):
        make_clip_correctors(gt, (5,), _gen())
