"""The image predictor: input conversions, typed API, bad input, CPU post-processing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import sample_image

from samstream.compat import SAM2ImagePredictor
from samstream.image.postprocess import component_areas, fill_holes, remove_sprinkles
from samstream.image.predictor import ImagePredictor, MaskPrediction
from samstream.image.prompts import Prompt
from samstream.image.transforms import load_image, to_rgb_array


@pytest.fixture(scope="module")
def image():
    return sample_image("coffee")  # 400 x 600


@pytest.fixture(scope="module")
def predictor(tiny_file_model, image):
    p = SAM2ImagePredictor(tiny_file_model)
    p.set_image(image)
    return p


def test_typed_api_matches_compat(tiny_file_model, image, predictor):
    engine = ImagePredictor(tiny_file_model)
    engine.set_image(image)
    result = engine.predict(Prompt(points=np.array([[270.0, 160.0]]), labels=np.array([1])))
    assert isinstance(result, MaskPrediction)
    masks, scores, low = predictor.predict(point_coords=[[270.0, 160.0]], point_labels=[1])
    assert result.masks.shape == masks.shape == (3, 400, 600)
    assert result.masks.dtype == bool and masks.dtype == np.float32  # the reference returns float32 masks
    np.testing.assert_array_equal(result.masks, masks > 0.5)
    np.testing.assert_allclose(result.scores, scores, atol=1e-6)
    assert result.low_res_logits.shape == (3, 32, 32)
    assert 0 <= result.best < 3


def test_normalized_points_equal_pixel_points(predictor):
    a = predictor.predict(point_coords=[[270.0, 160.0]], point_labels=[1], return_logits=True)[0]
    b = predictor.predict(
        point_coords=[[270.0 / 600, 160.0 / 400]], point_labels=[1], normalize_coords=False, return_logits=True
    )[0]
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_batched_prompts(predictor):
    boxes = np.array([[60, 40, 300, 300], [200, 100, 560, 380]], dtype=float)
    masks, ious, low = predictor.predict(box=boxes, multimask_output=False)
    assert masks.shape == (2, 1, 400, 600) and ious.shape == (2, 1) and low.shape == (2, 1, 32, 32)
    single, _, _ = predictor.predict(box=boxes[1], multimask_output=False)
    np.testing.assert_array_equal(masks[1], single)


def test_grayscale_rgba_16bit_and_pil_inputs(tiny_file_model, image):
    engine = ImagePredictor(tiny_file_model)
    gray = image.mean(axis=2).astype(np.uint8)
    rgba = np.concatenate([image, np.full(image.shape[:2] + (1,), 255, np.uint8)], axis=2)
    sixteen = image.astype(np.uint16) * 257
    for variant in (gray, rgba, sixteen, Image.fromarray(image).convert("L"), Image.fromarray(rgba)):
        engine.set_image(variant)
        assert engine.orig_hw == [(400, 600)]
        out = engine.predict(points=[[270, 160]], labels=[1])
        assert out.masks.shape == (3, 400, 600)
    # 16-bit scaled by 257 is the same picture as 8-bit
    engine.set_image(image)
    a = engine.predict(points=[[270, 160]], labels=[1]).logits
    engine.set_image(sixteen)
    b = engine.predict(points=[[270, 160]], labels=[1]).logits
    np.testing.assert_allclose(a, b, atol=1e-3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(point_coords=[[1.0, np.nan]], point_labels=[1]), "NaN"),
        (dict(point_coords=[[1.0, np.inf]], point_labels=[1]), "infinite"),
        (dict(point_coords=[[1.0, 2.0]], point_labels=[1, 0]), "point_labels"),
        (dict(point_coords=[[1.0, 2.0]]), "point_labels"),
        (dict(point_coords=[1.0, 2.0, 3.0], point_labels=[1]), "point_coords"),
        (dict(point_coords=[[1.0, 2.0]], point_labels=[7]), "point_labels"),
        (dict(box=[50, 50, 10, 80]), "x1 >= x0"),
        (dict(box=[1, 2, 3]), "box"),
        (dict(mask_input=np.zeros((1, 10, 10))), "mask_input"),
        (dict(), "empty prompt"),
    ],
)
def test_bad_prompts_raise_clear_errors(predictor, kwargs, message):
    with pytest.raises(ValueError, match=message):
        predictor.predict(**kwargs)


def test_predict_before_set_image(tiny_file_model):
    p = SAM2ImagePredictor(tiny_file_model)
    with pytest.raises(RuntimeError, match="set_image"):
        p.predict(point_coords=[[1, 2]], point_labels=[1])
    with pytest.raises(RuntimeError, match="set_image"):
        p.get_image_embedding()
    p.set_image(np.zeros((32, 48, 3), np.uint8))
    with pytest.raises(RuntimeError, match="set_image_batch"):
        p.predict_batch(box_batch=[np.array([1, 2, 3, 4])])
    p.reset_predictor()
    assert p._features is None and not p._is_image_set


@pytest.mark.parametrize(
    "bad, error",
    [
        (np.zeros((10, 10, 2), np.uint8), ValueError),
        (np.zeros((10, 10, 3), np.int64), ValueError),
        (np.full((10, 10, 3), 2.0, np.float32), ValueError),
        (np.full((10, 10, 3), np.nan, np.float32), ValueError),
        (np.zeros((0, 10, 3), np.uint8), ValueError),
        (torch.zeros(10, 10, 3), TypeError),
        ("not an image", TypeError),
    ],
)
def test_bad_images(bad, error):
    with pytest.raises(error):
        to_rgb_array(bad)


def test_unreadable_image_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match="broken.png"):
        load_image(path)
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.png")


def test_hole_and_sprinkle_removal_on_cpu():
    logits = torch.full((1, 1, 20, 20), -5.0)
    logits[0, 0, 2:18, 2:18] = 5.0
    logits[0, 0, 8:10, 8:10] = -5.0  # a 4-pixel hole
    logits[0, 0, 0, 19] = 5.0  # a 1-pixel sprinkle (8-connected to nothing)
    filled = fill_holes(logits, max_area=4)
    assert (filled[0, 0, 8:10, 8:10] > 0).all()
    assert (filled[0, 0, 0, 0] < 0)  # the big background stays
    cleaned = remove_sprinkles(logits, max_area=2)
    assert cleaned[0, 0, 0, 19] < 0 and (cleaned[0, 0, 2:18, 2:4] > 0).all()
    # 8-connectivity: diagonal neighbours belong to one component
    diag = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    diag[0, 0, 0, 0] = diag[0, 0, 1, 1] = diag[0, 0, 2, 2] = True
    assert component_areas(diag)[0, 0, 1, 1] == 3


def test_predictor_hole_filling_changes_output(tiny_file_model, image):
    plain = SAM2ImagePredictor(tiny_file_model)
    filled = SAM2ImagePredictor(tiny_file_model, max_hole_area=50.0, max_sprinkle_area=50.0)
    for p in (plain, filled):
        p.set_image(image)
    a = plain.predict(point_coords=[[270, 160]], point_labels=[1])[0]
    b = filled.predict(point_coords=[[270, 160]], point_labels=[1])[0]
    assert a.shape == b.shape
    # post-processing never adds a small island nor leaves a small hole in the low-res masks
    low = torch.from_numpy(filled.predict(point_coords=[[270, 160]], point_labels=[1], return_logits=True)[2])
    assert low.shape == (3, 32, 32)
