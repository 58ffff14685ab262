"""``samstream.compat`` behaves like the reference package where a user can see it (issue 8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samstream.compat import SAM2ImagePredictor, SAM2VideoPredictor, _check_device


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (96, 120, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def image_predictor(tiny_model, image):
    predictor = SAM2ImagePredictor(tiny_model)
    predictor.set_image(image)
    return predictor


def test_predict_returns_float32_masks_like_the_reference(image_predictor):
    masks, scores, low_res = image_predictor.predict(point_coords=[[60, 40]], point_labels=[1])
    assert masks.dtype == np.float32 and masks.shape == (3, 96, 120)
    assert set(np.unique(masks).tolist()) <= {0.0, 1.0}
    assert scores.dtype == np.float32 and low_res.dtype == np.float32


def test_predict_with_logits_keeps_the_logits(image_predictor):
    binary, _, _ = image_predictor.predict(point_coords=[[60, 40]], point_labels=[1])
    logits, _, _ = image_predictor.predict(point_coords=[[60, 40]], point_labels=[1], return_logits=True)
    assert logits.dtype == np.float32
    np.testing.assert_array_equal(logits > 0, binary > 0.5)


def test_predict_batch_returns_float32_masks(tiny_model, image):
    predictor = SAM2ImagePredictor(tiny_model)
    predictor.set_image_batch([image, image[:50]])
    masks, _, _ = predictor.predict_batch(point_coords_batch=[[[10, 10]], [[5, 5]]], point_labels_batch=[[1], [1]])
    assert [m.dtype for m in masks] == [np.float32, np.float32]
    assert masks[1].shape[-2:] == (50, 120)


def test_propagate_without_prompts_raises_like_the_reference(tiny_model, image):
    predictor = SAM2VideoPredictor(tiny_model)
    state = predictor.init_state(np.stack([image, image]))
    with pytest.raises(RuntimeError, match="No input points or masks are provided for any object"):
        next(iter(predictor.propagate_in_video(state)))


def test_propagate_with_a_prompt_still_yields_every_frame(tiny_model, image):
    predictor = SAM2VideoPredictor(tiny_model)
    state = predictor.init_state(np.stack([image, image]))
    predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=[[60, 40]], labels=[1])
    assert [frame for frame, _, _ in predictor.propagate_in_video(state)] == [0, 1]


@pytest.mark.parametrize("device", ["gpu0", "cuda:x", "tpu"])
def test_device_rule_is_the_cli_rule(device):
    with pytest.raises(RuntimeError, match="expected cpu, cuda, cuda:N or mps; this machine has: cpu"):
        _check_device(device)


def test_cpu_is_always_accepted():
    assert _check_device("cpu") == torch.device("cpu")
