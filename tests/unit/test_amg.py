"""Automatic mask generation: the pure helpers, option checks, and structural properties of
results on a real image with the tiny random-weight model."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_api

from samstream.image import amg_utils as U
from samstream.image.automatic import (
    AutomaticMaskConfig,
    AutomaticMaskGenerator,
    GeneratedMask,
    MaskProposals,
    SAM2AutomaticMaskGenerator,
)
from samstream.image.predictor import ImagePredictor
from samstream.io import rle as R

# --------------------------------------------------------------------------- helpers


def _blobs(count: int, hw=(37, 53), seed=0) -> torch.Tensor:
    """Smooth random bool masks [count, H, W] (with one empty and one full mask)."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.nn.functional.interpolate(torch.randn(count, 1, 6, 7, generator=gen) * 3, size=hw, mode="bilinear")
    masks = logits[:, 0] > 0.5
    masks[0] = False
    masks[1] = True
    return masks


def _naive_rle(mask: np.ndarray) -> list[int]:
    """The reference's uncompressed RLE, written the slow way."""
    flat = mask.T.ravel()
    counts, current, run = [], False, 0
    for value in flat:
        if value == current:
            run += 1
        else:
            counts.append(run)
            current, run = value, 1
    counts.append(run)
    return counts


def _components(mask: np.ndarray):
    import cv2

    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return stats[1:n, cv2.CC_STAT_AREA]


# --------------------------------------------------------------------------- grids and crops


def test_point_grid_values_and_order():
    grid = U.build_point_grid(2)
    np.testing.assert_allclose(grid, [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]])
    g5 = U.build_point_grid(5)
    assert g5.shape == (25, 2) and g5.min() > 0 and g5.max() < 1
    with pytest.raises(ValueError, match="n_per_side"):
        U.build_point_grid(0)


def test_layer_grids_downscale():
    grids = U.build_layer_point_grids(n_per_side=10, n_layers=3, scale_per_layer=2)
    assert [len(g) for g in grids] == [100, 25, 4, 1]


def test_crop_boxes_match_reference_values():
    # values produced by the reference's generate_crop_boxes
    boxes, layers = U.generate_crop_boxes((100, 200), n_layers=1, overlap_ratio=512 / 1500)
    assert boxes == [[0, 0, 200, 100], [0, 0, 117, 67], [0, 33, 117, 100], [83, 0, 200, 67], [83, 33, 200, 100]]
    assert layers == [0, 1, 1, 1, 1]
    boxes, layers = U.generate_crop_boxes((300, 200), n_layers=2, overlap_ratio=0.25)
    assert boxes[1:6] == [[0, 0, 125, 175], [0, 125, 125, 300], [75, 0, 200, 175], [75, 125, 200, 300], [0, 0, 69, 94]]
    assert layers.count(2) == 16 and len(boxes) == 21
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= 200 and 0 <= y0 < y1 <= 300


def test_batch_iterator():
    a, b = np.arange(10), torch.arange(10) * 2
    batches = list(U.batch_iterator(4, a, b))
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    assert torch.equal(batches[2][1], torch.tensor([16, 18]))
    with pytest.raises(ValueError, match="different lengths"):
        list(U.batch_iterator(4, a, b[:3]))
    with pytest.raises(ValueError, match="batch_size"):
        list(U.batch_iterator(0, a))


# --------------------------------------------------------------------------- scores and boxes


def test_stability_score_is_iou_of_the_two_cuts():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 20, 30, generator=gen) * 2
    got = U.stability_score(logits, mask_threshold=0.5, offset=1.0)
    high, low = logits > 1.5, logits > -0.5
    want = (high & low).flatten(1).sum(1).double() / (high | low).flatten(1).sum(1).double()
    torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-6)
    assert got.dtype == torch.float32
    assert torch.isnan(U.stability_score(torch.full((1, 4, 4), -5.0), mask_threshold=0.0, offset=1.0)).all()


def test_masks_to_boxes_against_numpy():
    masks = _blobs(12)
    boxes = U.masks_to_boxes_xyxy(masks)
    assert boxes.dtype == torch.int64 and boxes.shape == (12, 4)
    for mask, box in zip(masks.numpy(), boxes.tolist()):
        if not mask.any():
            assert box == [0, 0, 0, 0]
            continue
        ys, xs = np.nonzero(mask)
        assert box == [xs.min(), ys.min(), xs.max(), ys.max()]
    assert U.masks_to_boxes_xyxy(masks.reshape(3, 4, 37, 53)).shape == (3, 4, 4)
    assert U.masks_to_boxes_xyxy(torch.zeros(0, 5, 5, dtype=torch.bool)).shape == (0, 4)


def test_box_conversions_and_crop_edges():
    boxes = torch.tensor([[2, 3, 10, 20]])
    assert U.box_xyxy_to_xywh(boxes).tolist() == [[2, 3, 8, 17]]
    assert U.uncrop_boxes_xyxy(boxes, [5, 7, 50, 50]).tolist() == [[7, 10, 15, 27]]
    assert U.uncrop_points(torch.tensor([[1.5, 2.0]]), [5, 7, 50, 50]).tolist() == [[6.5, 9.0]]
    padded = U.uncrop_masks(torch.ones(1, 2, 3, dtype=torch.bool), [4, 1, 7, 3], (5, 10))
    assert padded.shape == (1, 5, 10) and padded.sum() == 6 and padded[0, 1:3, 4:7].all()
    crop, image = [100, 0, 200, 100], [0, 0, 200, 300]
    near = U.is_box_near_crop_edge(
        torch.tensor([[0, 40, 50, 60], [40, 40, 60, 60], [40, 40, 100, 60], [40, 85, 60, 99]]),
        crop_box=crop,
        image_box=image,
    )
    # left edge of the crop (not the image's); inside; right edge is the image's too; bottom of the crop
    assert near.tolist() == [True, False, False, True]


# --------------------------------------------------------------------------- RLE


def test_uncompressed_rle_matches_reference_format_and_pycocotools():
    masks = _blobs(10)
    rles = R.masks_to_uncompressed_rle(masks)
    for mask, rle in zip(masks.numpy(), rles):
        assert rle["size"] == [37, 53]
        assert rle["counts"] == _naive_rle(mask)
        assert sum(rle["counts"]) == 37 * 53
        assert np.array_equal(R.uncompressed_rle_to_mask(rle), mask)
        assert R.area_from_rle(rle) == int(mask.sum())
    assert rles[1]["counts"][0] == 0  # full mask: starts with an empty background run
    coco = R.encode_coco_rle(masks)
    assert [R.coco_rle_from_uncompressed(r) for r in rles] == coco
    assert all(isinstance(r["counts"], str) for r in coco)
    np.testing.assert_array_equal(R.decode_coco_rle(coco), masks.numpy())
    np.testing.assert_array_equal(R.coco_rle_areas(coco), masks.flatten(1).sum(1).numpy())
    assert [R.area_from_rle(r) for r in coco] == masks.flatten(1).sum(1).tolist()
    # pycocotools itself agrees
    direct = mask_api.encode(np.asfortranarray(masks.numpy().transpose(1, 2, 0).astype(np.uint8)))
    assert [r["counts"].decode() for r in direct] == [r["counts"] for r in coco]
    assert R.masks_to_uncompressed_rle(np.zeros((0, 3, 3), bool)) == [] and R.encode_coco_rle(np.zeros((0, 3, 3), bool)) == []
    assert R.decode_coco_rle([], (3, 4)).shape == (0, 3, 4)


# --------------------------------------------------------------------------- small regions


def _square_with_hole_and_island() -> np.ndarray:
    mask = np.zeros((60, 60), dtype=bool)
    mask[10:40, 10:40] = True
    mask[20:23, 20:23] = False  # hole of 9 px
    mask[50:52, 50:52] = True  # island of 4 px
    return mask


@pytest.mark.parametrize("use_cv2", [True, False])
def test_remove_small_regions(monkeypatch, use_cv2):
    if not use_cv2:
        monkeypatch.setitem(sys.modules, "cv2", None)  # the scipy fallback
    mask = _square_with_hole_and_island()
    filled, changed = U.remove_small_regions(mask, area_thresh=10, mode="holes")
    assert changed and filled[20:23, 20:23].all() and filled[50:52, 50:52].all()
    trimmed, changed = U.remove_small_regions(mask, area_thresh=10, mode="islands")
    assert changed and not trimmed[50:52, 50:52].any() and trimmed.sum() == 900 - 9
    same, changed = U.remove_small_regions(mask, area_thresh=4, mode="islands")  # strict "<"
    assert not changed and np.array_equal(same, mask)
    largest, changed = U.remove_small_regions(mask, area_thresh=10_000, mode="islands")
    assert changed and largest.sum() == 900 - 9 and not largest[50:52, 50:52].any()
    empty, changed = U.remove_small_regions(np.zeros((5, 5), bool), area_thresh=10, mode="islands")
    assert not changed and not empty.any()
    with pytest.raises(ValueError, match="mode"):
        U.remove_small_regions(mask, area_thresh=10, mode="sprinkles")


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "options, name",
    [
        ({"points_per_side": 0}, "points_per_side"),
        ({"points_per_side": None}, "points_per_side"),
        ({"point_grids": [np.full((4, 2), 0.5)]}, "points_per_side"),  # both given
        ({"points_per_batch": 0}, "points_per_batch"),
        ({"pred_iou_thresh": 1.5}, "pred_iou_thresh"),
        ({"stability_score_thresh": -0.1}, "stability_score_thresh"),
        ({"box_nms_thresh": 2.0}, "box_nms_thresh"),
        ({"crop_nms_thresh": float("nan")}, "crop_nms_thresh"),
        ({"crop_n_layers": -1}, "crop_n_layers"),
        ({"crop_overlap_ratio": 1.0}, "crop_overlap_ratio"),
        ({"crop_n_points_downscale_factor": 0}, "crop_n_points_downscale_factor"),
        ({"min_mask_region_area": -1}, "min_mask_region_area"),
        ({"output_mode": "png"}, "output_mode"),
        ({"stability_score_offset": -1.0}, "stability_score_offset"),
        ({"max_image_megapixels": 0}, "max_image_megapixels"),
        ({"points_per_side": 4, "crop_n_layers": 3, "crop_n_points_downscale_factor": 2}, "crop layer 3"),
        ({"points_per_side": None, "point_grids": [np.full((4, 3), 0.5)]}, r"point_grids\[0\]"),
        ({"points_per_side": None, "point_grids": [np.full((4, 2), 1.5)]}, r"point_grids\[0\]"),
        ({"points_per_side": None, "point_grids": [np.full((4, 2), 0.5)], "crop_n_layers": 1}, "point_grids has 1"),
    ],
)
def test_config_rejects_bad_options(options, name):
    with pytest.raises(ValueError, match=name):
        AutomaticMaskConfig(**options)


def test_config_grids_and_compat_errors(tiny_file_model):
    cfg = AutomaticMaskConfig(points_per_side=None, point_grids=[np.array([[0.5, 0.5]])])
    assert [g.shape for g in cfg.layer_point_grids()] == [(1, 2)]
    assert [len(g) for g in AutomaticMaskConfig(points_per_side=8, crop_n_layers=1).layer_point_grids()] == [64, 64]
    with pytest.raises(ValueError, match="output_mode"):
        SAM2AutomaticMaskGenerator(tiny_file_model, output_mode="polygons")
    with pytest.raises(TypeError):
        SAM2AutomaticMaskGenerator(tiny_file_model, points_per_sid=4)  # unknown options are not swallowed
    with pytest.raises(TypeError, match="model_or_predictor"):
        AutomaticMaskGenerator("model")


def test_huge_image_is_refused_with_numbers(tiny_file_model):
    gen = AutomaticMaskGenerator(tiny_file_model, AutomaticMaskConfig(max_image_megapixels=0.01))
    with pytest.raises(ValueError, match=r"200x150 pixels \(0\.0 megapixels\).*max_image_megapixels=0\.01"):
        gen.generate(np.zeros((150, 200, 3), np.uint8))


def test_batch_is_lowered_for_large_crops(tiny_file_model):
    gen = AutomaticMaskGenerator(tiny_file_model, AutomaticMaskConfig(points_per_batch=64))
    assert gen._batch_size([0, 0, 512, 512], m2m=False) == 64
    assert 1 <= gen._batch_size([0, 0, 8000, 8000], m2m=False) < 64


# --------------------------------------------------------------------------- on a real image


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.coffee()[::4, ::4])  # 100 x 150


def _config(**overrides) -> AutomaticMaskConfig:
    base = dict(points_per_side=3, points_per_batch=16, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    return AutomaticMaskConfig(**{**base, **overrides})


def _check_records(masks: list[GeneratedMask], image: np.ndarray) -> None:
    height, width = image.shape[:2]
    for m in masks:
        seg = m.segmentation
        assert isinstance(seg, np.ndarray) and seg.dtype == bool and seg.shape == (height, width)
        assert m.area == int(seg.sum()) and isinstance(m.area, int)
        x, y, w, h = m.bbox
        assert 0 <= x <= x + w <= width - 1 and 0 <= y <= y + h <= height - 1
        if m.area:
            ys, xs = np.nonzero(seg)
            assert [x, y, x + w, y + h] == [xs.min(), ys.min(), xs.max(), ys.max()]
        cx, cy, cw, ch = m.crop_box
        assert 0 <= cx and 0 <= cy and cx + cw <= width and cy + ch <= height
        assert not seg[:, : int(cx)].any() and not seg[: int(cy)].any()
        assert not seg[:, int(cx + cw) :].any() and not seg[int(cy + ch) :].any()
        px, py = m.point_coords[0]
        assert cx <= px <= cx + cw and cy <= py <= cy + ch
        assert isinstance(m.predicted_iou, float) and isinstance(m.stability_score, float)


@pytest.fixture(scope="module")
def binary_result(tiny_file_model, coffee):
    return AutomaticMaskGenerator(tiny_file_model, _config(box_nms_thresh=1.0)).generate(coffee)


def test_binary_masks_structure(binary_result, coffee):
    assert len(binary_result) == 27  # NMS at 1.0 keeps all 9 points x 3 masks
    _check_records(binary_result, coffee)
    scores = [m.predicted_iou for m in binary_result]
    assert scores == sorted(scores, reverse=True)


def test_output_modes_agree(tiny_file_model, coffee, binary_result):
    want = np.stack([m.segmentation for m in binary_result])
    for mode in ("coco_rle", "uncompressed_rle"):
        result = AutomaticMaskGenerator(tiny_file_model, _config(box_nms_thresh=1.0, output_mode=mode)).generate(coffee)
        assert len(result) == len(binary_result)
        segs = [m.segmentation for m in result]
        assert all(s["size"] == list(coffee.shape[:2]) for s in segs)
        if mode == "coco_rle":
            assert all(isinstance(s["counts"], str) for s in segs)
            got = R.decode_coco_rle(segs)
        else:
            assert all(isinstance(s["counts"], list) for s in segs)
            got = np.stack([R.uncompressed_rle_to_mask(s) for s in segs])
        np.testing.assert_array_equal(got, want)
        assert [m.area for m in result] == [m.area for m in binary_result]


def test_reference_compatible_records(tiny_file_model, coffee):
    gen = SAM2AutomaticMaskGenerator(tiny_file_model, points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    assert gen.points_per_batch == 64 and gen.output_mode == "binary_mask" and len(gen.point_grids[0]) == 16
    records = gen.generate(coffee)
    assert records, "expected at least one mask with all filters off"
    keys = {"segmentation", "area", "bbox", "predicted_iou", "point_coords", "stability_score", "crop_box"}
    for r in records:
        assert set(r) == keys
        assert isinstance(r["bbox"], list) and all(isinstance(v, float) for v in r["bbox"])
        assert isinstance(r["crop_box"], list) and all(isinstance(v, float) for v in r["crop_box"])
        assert isinstance(r["point_coords"], list) and all(isinstance(v, float) for v in r["point_coords"][0])


def test_nothing_passes_gives_empty_list(tiny_file_model, coffee):
    gen = AutomaticMaskGenerator(tiny_file_model, _config(pred_iou_thresh=1.0, stability_score_thresh=1.0))
    assert gen.generate(coffee) == []
    compat = SAM2AutomaticMaskGenerator(tiny_file_model, points_per_side=2, pred_iou_thresh=1.0, output_mode="coco_rle")
    assert compat.generate(coffee) == []


def test_crops_layer_one(tiny_file_model, coffee):
    cfg = _config(points_per_side=2, crop_n_layers=1, box_nms_thresh=1.0, crop_nms_thresh=1.0)
    result = AutomaticMaskGenerator(tiny_file_model, cfg).generate(coffee)
    _check_records(result, coffee)
    boxes, _ = U.generate_crop_boxes(coffee.shape[:2], n_layers=1, overlap_ratio=cfg.crop_overlap_ratio)
    allowed = {tuple(float(v) for v in U.box_xyxy_to_xywh(np.array(b))) for b in boxes}
    seen = {tuple(m.crop_box) for m in result}
    assert seen <= allowed
    assert (0.0, 0.0, 150.0, 100.0) in seen  # the whole image is always a crop
    # masks from the tiles do not touch a tile border that is inside the image
    for m in result:
        cx, cy, cw, ch = m.crop_box
        if (cw, ch) == (150.0, 100.0):
            continue
        x, y, w, h = m.bbox
        for side, edge, image_edge in ((x, cx, 0), (y, cy, 0), (x + w, cx + cw, 150), (y + h, cy + ch, 100)):
            assert abs(side - edge) > 20 or abs(side - image_edge) <= 20


def test_m2m_and_single_mask(tiny_file_model, coffee):
    m2m = AutomaticMaskGenerator(tiny_file_model, _config(use_m2m=True, box_nms_thresh=1.0)).generate(coffee)
    assert len(m2m) == 27
    _check_records(m2m, coffee)
    single = AutomaticMaskGenerator(tiny_file_model, _config(multimask_output=False, box_nms_thresh=1.0)).generate(coffee)
    assert len(single) == 9
    _check_records(single, coffee)


def test_min_mask_region_area(tiny_file_model, coffee):
    area = 40
    plain = AutomaticMaskGenerator(tiny_file_model, _config(min_mask_region_area=area))
    assert plain.predictor.max_hole_area == area and plain.predictor.max_sprinkle_area == area
    _check_records(plain.generate(coffee), coffee)
    cleaned = AutomaticMaskGenerator(
        tiny_file_model, _config(min_mask_region_area=area, postprocess_small_regions=True, box_nms_thresh=1.0)
    ).generate(coffee)
    assert cleaned
    _check_records(cleaned, coffee)
    for m in cleaned:
        islands = _components(m.segmentation)
        assert len(islands) <= 1 or islands.min() >= area
        background = _components(~m.segmentation)  # small holes were filled, whatever they touch
        assert len(background) == 0 or background.min() >= area


def test_small_region_cleanup_prefers_unchanged_masks(tiny_file_model):
    """On synthetic proposals: the dirty mask is cleaned, then NMS keeps the clean twin."""
    dirty = _square_with_hole_and_island()
    clean = np.zeros_like(dirty)
    clean[10:40, 10:40] = True
    other = np.zeros_like(dirty)
    other[45:58, 2:20] = True
    stack = np.stack([dirty, clean, other])
    found = MaskProposals(
        rles=R.encode_coco_rle(stack),
        boxes=U.masks_to_boxes_xyxy(torch.from_numpy(stack)),
        areas=torch.from_numpy(stack.reshape(3, -1).sum(1)),
        iou=torch.tensor([0.9, 0.8, 0.7]),
        stability=torch.ones(3),
        points=torch.zeros(3, 2),
        crop_boxes=torch.tensor([[0, 0, 60, 60]] * 3),
    )
    gen = AutomaticMaskGenerator(tiny_file_model, _config(min_mask_region_area=10, postprocess_small_regions=True))
    out = gen._clean_small_regions(found, (60, 60))
    assert len(out) == 2
    assert sorted(out.iou.tolist()) == pytest.approx([0.7, 0.8])  # the clean twin won over the cleaned dirty one
    masks = R.decode_coco_rle(out.rles)
    by_iou = {round(v, 3): mask for v, mask in zip(out.iou.tolist(), masks)}
    assert np.array_equal(by_iou[0.8], clean) and np.array_equal(by_iou[0.7], other)

    # a mask that needed cleaning and has no twin is kept, with its RLE, area and box updated
    lone = found.select(torch.tensor([0, 2]))
    out = gen._clean_small_regions(lone, (60, 60))
    assert len(out) == 2
    masks = R.decode_coco_rle(out.rles)
    assert np.array_equal(masks[1], clean)  # unchanged masks come first in NMS order
    assert out.areas.tolist() == [other.sum(), 900] and out.boxes[1].tolist() == [10, 10, 39, 39]


def test_generator_accepts_a_predictor(tiny_file_model, coffee):
    predictor = ImagePredictor(tiny_file_model)
    gen = AutomaticMaskGenerator(predictor, _config(points_per_side=2))
    assert gen.predictor is predictor
    assert len(gen.generate(coffee)) >= 1
    assert not predictor.is_image_set  # the crop's embedding is dropped after use


def test_supervision_interop(binary_result, tiny_file_model, coffee):
    sv = pytest.importorskip("supervision")
    detections = sv.Detections.from_sam([m.to_dict() for m in binary_result])
    assert len(detections) == len(binary_result)
    assert detections.mask.shape == (len(binary_result), *coffee.shape[:2])
    areas = sorted((m.area for m in binary_result), reverse=True)
    assert detections.mask.reshape(len(detections), -1).sum(1).tolist() == areas
    rle = AutomaticMaskGenerator(tiny_file_model, _config(points_per_side=2, output_mode="uncompressed_rle")).generate(coffee)
    from_rle = sv.Detections.from_sam([m.to_dict() for m in rle])
    assert from_rle.mask.shape == (len(rle), *coffee.shape[:2])
