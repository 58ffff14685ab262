"""The ONNX export of the fixture model on ONNX Runtime against the reference outputs: the image
cases within max |diff| <= 1e-3, the video case with >= 99.5% same-decision pixels on every frame.

Exporting the fixture model takes about a minute on two cores, hence ``slow``
(``pytest -m slow tests/parity/test_onnx_parity.py``); the tiny-model export runs in CI
(tests/unit/test_onnx_runtime.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

pytestmark = [pytest.mark.parity, pytest.mark.slow]
IMAGE_TOL = 1e-3  # max |diff| of logits, IoUs and features
MIN_AGREEMENT = 0.995  # video: fraction of pixels with the same decision (logit > 0), per frame


@pytest.fixture(scope="module")
def parity_export(parity_dir, tmp_path_factory):
    from samstream.build import build_model
    from samstream.export.onnx import export_onnx

    model = build_model(parity_dir / "model.yaml", parity_dir / "model.pt", for_video=True, accel=None)
    out = tmp_path_factory.mktemp("onnx_parity")
    export_onnx(model, out)
    return out


def _load(parity_dir, name):
    return np.array(Image.open(parity_dir / name).convert("RGB"))


def _max_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != expected {b.shape}"
    return float(np.abs(a - b).max())


def test_onnx_image_cases(parity_export, parity_dir, parity_cases, expected):
    from samstream.onnx import OnnxImagePredictor

    predictor = OnnxImagePredictor(parity_export, num_threads=1)
    cases = [c for c in parity_cases if c["kind"] == "image_predict"]
    assert len(cases) >= 10
    current = None
    for case in cases:
        if case["image"] != current:
            predictor.set_image(_load(parity_dir, case["image"]))
            current = case["image"]
            idx = current.split("_")[1].split(".")[0]
            feats = predictor._features
            assert _max_diff(feats["image_embed"], expected[f"img{idx}_image_embed"]) <= IMAGE_TOL
            for level in (0, 1):
                assert _max_diff(feats["high_res_feats"][level], expected[f"img{idx}_high_res_feat{level}"]) <= IMAGE_TOL
        masks, ious, low_res = predictor.predict(
            point_coords=case.get("point_coords"),
            point_labels=case.get("point_labels"),
            box=case.get("box"),
            mask_input=expected[case["mask_input"]] if "mask_input" in case else None,
            multimask_output=case["multimask_output"],
            return_logits=True,
        )
        out = case["output"]
        assert _max_diff(masks, expected[f"{out}_masks"]) <= IMAGE_TOL, out
        assert _max_diff(ious, expected[f"{out}_ious"]) <= IMAGE_TOL, out
        assert _max_diff(low_res, expected[f"{out}_low_res"]) <= IMAGE_TOL, out


def test_onnx_image_batch(parity_export, parity_dir, parity_cases, expected):
    from samstream.onnx import OnnxImagePredictor

    predictor = OnnxImagePredictor(parity_export, num_threads=1)
    for case in [c for c in parity_cases if c["kind"] == "image_predict_batch"]:
        predictor.set_image_batch([_load(parity_dir, n) for n in case["images"]])
        masks, ious, low_res = predictor.predict_batch(
            box_batch=[np.array(b) for b in case["box_batch"]], multimask_output=case["multimask_output"], return_logits=True
        )
        for j in range(len(case["images"])):
            out = case["output"].format(j=j)
            assert _max_diff(masks[j], expected[f"{out}_masks"]) <= IMAGE_TOL, out
            assert _max_diff(ious[j], expected[f"{out}_ious"]) <= IMAGE_TOL, out
            assert _max_diff(low_res[j], expected[f"{out}_low_res"]) <= IMAGE_TOL, out


def _check_frames(name: str, got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    if got.ndim == 3:
        got, want = got[None], want[None]
    for f in range(got.shape[0]):
        agreement = float(((got[f] > 0) == (want[f] > 0)).mean())
        assert agreement >= MIN_AGREEMENT, f"{name} frame {f}: agreement {agreement:.5f}"


def test_onnx_video_case(parity_export, parity_dir, parity_cases, expected):
    from samstream.onnx import OnnxVideoOptions, OnnxVideoPredictor

    case = next(c for c in parity_cases if c["kind"] == "video")
    predictor = OnnxVideoPredictor(parity_export, OnnxVideoOptions(**case["predictor_options"]), num_threads=1)
    session = predictor.open_session(str(parity_dir / case["video"]))
    assert (session.video_height, session.video_width) == (case["video_height"], case["video_width"])
    for step in case["steps"]:
        out = step["output"]
        if step["op"] == "add_new_points_or_box":
            result = predictor.add_prompt(
                session, step["frame_idx"], step["obj_id"], points=step.get("points"), labels=step.get("labels"), box=step.get("box")
            )
        elif step["op"] == "add_new_mask":
            result = predictor.add_mask(session, step["frame_idx"], step["obj_id"], expected[step["mask"]].astype(bool))
        else:
            kwargs = {"start_frame_idx": step.get("start_frame_idx"), "reverse": step.get("reverse", False)}
            kwargs["max_frames"] = step.get("max_frame_num_to_track")
            results = list(predictor.propagate(session, **kwargs))
            assert [r.frame_idx for r in results] == expected[f"{out}_frames"].tolist(), out
            assert results[-1].obj_ids == expected[f"{out}_obj_ids"].tolist(), out
            _check_frames(out, np.stack([r.masks[:, 0] for r in results]), expected[f"{out}_masks"])
            for key in expected.files:
                if key.startswith(f"{out}_obj") and key.endswith("_object_score_logits"):
                    obj_id = int(key[len(out) + 4 :].split("_")[0])
                    want = expected[key]
                    got = np.array(
                        [np.nan if (v := predictor.object_score_logits(session, obj_id, t)) is None else v for t in range(len(want))]
                    )
                    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=key)
                    np.testing.assert_allclose(got[~np.isnan(want)], want[~np.isnan(want)], atol=1e-3, err_msg=key)
            continue
        assert result.obj_ids == expected[f"{out}_obj_ids"].tolist(), out
        _check_frames(out, result.masks[:, 0], expected[f"{out}_masks"])
