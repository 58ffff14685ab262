"""Zoom-in refinement: the crop, the merge back, the guard against a refinement that disagrees."""

from __future__ import annotations

import numpy as np
import pytest
from tiny import sample_image

from samstream.image.predictor import ImagePredictor
from samstream.image.refine import MaskRefiner, RefineConfig, containment, refine_window
from samstream.tiling.grid import Window


def test_refine_window_holds_the_box_with_margin():
    mask = np.zeros((400, 600), dtype=bool)
    mask[100:140, 200:300] = True  # 100 wide, 40 high
    w = refine_window(mask, RefineConfig(margin=0.1))
    assert (w.width, w.height) == (120, 120)
    assert w.x0 <= 200 and w.x1 >= 300 and w.y0 <= 100 and w.y1 >= 140
    edge = np.zeros((400, 600), dtype=bool)
    edge[390:400, 590:600] = True
    w = refine_window(edge, RefineConfig(min_side=64))
    assert w == Window(536, 336, 600, 400)
    assert refine_window(np.zeros((10, 10), dtype=bool)) is None
    w = refine_window(mask, RefineConfig(margin=0.0), box=np.array([180, 90, 320, 150]))
    assert w.x0 <= 180 and w.x1 >= 320 and w.y0 <= 90 and w.y1 >= 150  # the prompt's box is held too


def test_no_refinement_when_the_crop_is_most_of_the_image(tiny_model):
    image = sample_image("coffee")
    coarse = np.zeros(image.shape[:2], dtype=bool)
    coarse[20:380, 30:570] = True
    out = MaskRefiner(tiny_model, RefineConfig(max_fraction=0.8)).refine(image, coarse)
    assert out.window is None and not out.accepted
    np.testing.assert_array_equal(out.mask, coarse)


def test_refined_mask_is_the_crop_decoded_alone(tiny_model):
    image = sample_image("astronaut")  # 512 x 512
    predictor = ImagePredictor(tiny_model)
    predictor.set_image(image)
    coarse = predictor.predict(box=[150, 60, 330, 250], multimask_output=False).masks[0]
    refiner = MaskRefiner(tiny_model, RefineConfig(min_iou=0.0, max_fraction=1.0))
    out = refiner.refine(image, coarse)
    w = out.window
    assert out.accepted and w is not None
    # inside the window: exactly what the model gives on the crop alone with the mask's box
    crop = ImagePredictor(tiny_model)
    crop.set_image(np.ascontiguousarray(image[w.y0 : w.y1, w.x0 : w.x1]))
    rows = np.flatnonzero(coarse.any(axis=1))
    cols = np.flatnonzero(coarse.any(axis=0))
    box = [cols[0] - w.x0, rows[0] - w.y0, cols[-1] + 1 - w.x0, rows[-1] + 1 - w.y0]
    expected = crop.predict(box=box, multimask_output=False).masks[0]
    np.testing.assert_array_equal(out.mask[w.y0 : w.y1, w.x0 : w.x1], expected)
    outside = np.ones(coarse.shape, dtype=bool)
    outside[w.y0 : w.y1, w.x0 : w.x1] = False
    np.testing.assert_array_equal(out.mask[outside], coarse[outside])
    assert predictor.is_image_set  # the caller's predictor keeps its image


def test_refinement_that_disagrees_is_rejected(tiny_model):
    image = sample_image("coffee")
    predictor = ImagePredictor(tiny_model)
    predictor.set_image(image)
    coarse = predictor.predict(box=[200, 100, 300, 200], multimask_output=False).masks[0]
    free = MaskRefiner(tiny_model, RefineConfig(min_iou=0.0, max_fraction=1.0)).refine(image, coarse)
    w = free.window
    fine, old = free.mask[w.y0 : w.y1, w.x0 : w.x1], coarse[w.y0 : w.y1, w.x0 : w.x1]
    agreement = (fine & old).sum() / max((fine | old).sum(), 1)
    assert 0.0 < agreement < 1.0  # random weights: the refined mask differs from the coarse one
    strict = MaskRefiner(
        tiny_model, RefineConfig(min_iou=float(agreement) + 1e-6, min_containment=2.0, max_fraction=1.0)
    ).refine(image, coarse)
    assert not strict.accepted and strict.window == w
    np.testing.assert_array_equal(strict.mask, coarse)
    loose = MaskRefiner(
        tiny_model, RefineConfig(min_iou=float(agreement) - 1e-6, min_containment=2.0, max_fraction=1.0)
    ).refine(image, coarse)
    assert loose.accepted
    np.testing.assert_array_equal(loose.mask, free.mask)
    with pytest.raises(ValueError, match="min_iou"):
        RefineConfig(min_iou=2.0)


def test_containment_counts_the_refined_pixels_near_the_coarse_mask():
    coarse = np.zeros((64, 64), dtype=bool)
    coarse[16:48, 16:48] = True  # a blurred band's worth of coarse mask
    ring = np.zeros_like(coarse)
    ring[20:44, 20:22] = True  # a thin structure inside it
    assert containment(ring, coarse, 0.0) == 1.0
    far = ring.copy()
    far[0:2, 60:62] = True  # 4 of 52 pixels far outside
    assert containment(far, coarse, 4.0) == pytest.approx(48 / 52)
    assert containment(far, coarse, 100.0) == 1.0
    assert containment(np.zeros_like(coarse), coarse, 1.0) == 1.0
    assert containment(ring, np.zeros_like(coarse), 1.0) == 0.0


def test_guard_accepts_a_thin_structure_inside_a_blurred_coarse_mask(tiny_model):
    refiner = MaskRefiner(tiny_model, RefineConfig(min_iou=0.3, min_containment=0.75))
    coarse = np.zeros((128, 128), dtype=bool)
    coarse[30:90, 30:90] = True
    thin = np.zeros_like(coarse)
    thin[40:80, 58:61] = True  # IoU 120 / 3600: far below min_iou
    assert refiner.agrees(thin, coarse, (512, 512))
    moved = np.zeros_like(coarse)
    moved[100:128, 100:128] = True  # elsewhere in the crop: neither test passes
    assert not refiner.agrees(moved, coarse, (512, 512))
    assert not refiner.agrees(np.zeros_like(coarse), coarse, (512, 512))  # an empty refinement never replaces
    off = MaskRefiner(tiny_model, RefineConfig(min_iou=0.3, min_containment=2.0))
    assert not off.agrees(thin, coarse, (512, 512))
    with pytest.raises(ValueError, match="min_containment"):
        RefineConfig(min_containment=-1.0)
