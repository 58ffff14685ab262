"""The automatic mask generator against the reference outputs (cases ``amg`` and ``amg_all``)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from samstream.image.automatic import SAM2AutomaticMaskGenerator

pytestmark = pytest.mark.parity

MASK_IOU_MIN = 0.999  # tolerances stated by the fixture README
SCORE_TOL = 1e-3

_OPTIONS = (
    "points_per_side",
    "points_per_batch",
    "pred_iou_thresh",
    "stability_score_thresh",
    "box_nms_thresh",
    "crop_n_layers",
    "min_mask_region_area",
)


def _amg_cases(parity_cases):
    cases = [c for c in parity_cases if c["kind"] == "amg"]
    assert {c["output"] for c in cases} >= {"amg", "amg_all"}, "fixture lacks the amg cases"
    return cases


@pytest.mark.parametrize("output", ["amg", "amg_all"])
def test_amg_case(output, parity_model, parity_dir, parity_cases, expected):
    case = next(c for c in _amg_cases(parity_cases) if c["output"] == output)
    image = np.array(Image.open(parity_dir / case["image"]).convert("RGB"))
    generator = SAM2AutomaticMaskGenerator(
        parity_model, output_mode="binary_mask", **{k: case[k] for k in _OPTIONS}
    )
    records = sorted(generator.generate(image), key=lambda r: r["predicted_iou"], reverse=True)

    want_masks = expected[f"{output}_masks"].astype(bool)
    assert len(records) == case["count"] == len(want_masks)

    masks = np.stack([r["segmentation"] for r in records])
    assert masks.shape == want_masks.shape
    inter = (masks & want_masks).sum(axis=(1, 2))
    union = (masks | want_masks).sum(axis=(1, 2))
    mask_iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    assert mask_iou.min() >= MASK_IOU_MIN, f"worst mask IoU {mask_iou.min():.6f}"

    scores = np.array([r["predicted_iou"] for r in records])
    stability = np.array([r["stability_score"] for r in records])
    np.testing.assert_allclose(scores, expected[f"{output}_scores"], rtol=0, atol=SCORE_TOL)
    np.testing.assert_allclose(stability, expected[f"{output}_stability"], rtol=0, atol=SCORE_TOL)
    boxes = np.array([r["bbox"] for r in records], dtype=np.float32)
    np.testing.assert_array_equal(boxes, expected[f"{output}_boxes_xywh"])

    # the rest of each record is consistent with its mask
    for record, mask in zip(records, masks):
        assert record["area"] == int(mask.sum())
        assert record["crop_box"] == [0.0, 0.0, float(image.shape[1]), float(image.shape[0])]
        assert len(record["point_coords"]) == 1 and len(record["point_coords"][0]) == 2
