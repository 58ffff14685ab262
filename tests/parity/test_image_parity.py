"""Image features and every image_predict / image_predict_batch case against the reference outputs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from samstream.compat import SAM2ImagePredictor

pytestmark = pytest.mark.parity
TOL = 1e-4  # max |diff| stated by the fixture README


def _load(parity_dir, name):
    return np.array(Image.open(parity_dir / name).convert("RGB"))


def _max_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != expected {b.shape}"
    return float(np.abs(a - b).max())


def test_image_features(parity_model, parity_dir, parity_cases, expected):
    predictor = SAM2ImagePredictor(parity_model)
    images = sorted({c["image"] for c in parity_cases if c["kind"] == "image_predict"})
    assert images, "no image cases in the fixture"
    for name in images:
        idx = name.split("_")[1].split(".")[0]
        predictor.set_image(_load(parity_dir, name))
        feats = predictor._features
        assert _max_diff(feats["image_embed"].numpy(), expected[f"img{idx}_image_embed"]) <= TOL
        for level in (0, 1):
            got = feats["high_res_feats"][level].numpy()
            assert _max_diff(got, expected[f"img{idx}_high_res_feat{level}"]) <= TOL


def _image_cases(cases):
    return [c for c in cases if c["kind"] == "image_predict"]


def test_image_predict_cases(parity_model, parity_dir, parity_cases, expected):
    predictor = SAM2ImagePredictor(parity_model)
    cases = _image_cases(parity_cases)
    assert len(cases) >= 10
    current = None
    for case in cases:
        if case["image"] != current:
            predictor.set_image(_load(parity_dir, case["image"]))
            current = case["image"]
        mask_input = expected[case["mask_input"]] if "mask_input" in case else None
        masks, ious, low_res = predictor.predict(
            point_coords=case.get("point_coords"),
            point_labels=case.get("point_labels"),
            box=case.get("box"),
            mask_input=mask_input,
            multimask_output=case["multimask_output"],
            return_logits=True,
        )
        out = case["output"]
        assert _max_diff(masks, expected[f"{out}_masks"]) <= TOL, out
        assert _max_diff(ious, expected[f"{out}_ious"]) <= TOL, out
        assert _max_diff(low_res, expected[f"{out}_low_res"]) <= TOL, out


def test_image_predict_batch(parity_model, parity_dir, parity_cases, expected):
    cases = [c for c in parity_cases if c["kind"] == "image_predict_batch"]
    assert cases
    predictor = SAM2ImagePredictor(parity_model)
    for case in cases:
        predictor.set_image_batch([_load(parity_dir, n) for n in case["images"]])
        masks, ious, low_res = predictor.predict_batch(
            box_batch=[np.array(b) for b in case["box_batch"]],
            multimask_output=case["multimask_output"],
            return_logits=True,
        )
        for j in range(len(case["images"])):
            out = case["output"].format(j=j)
            assert _max_diff(masks[j], expected[f"{out}_masks"]) <= TOL, out
            assert _max_diff(ious[j], expected[f"{out}_ious"]) <= TOL, out
            assert _max_diff(low_res[j], expected[f"{out}_low_res"]) <= TOL, out
