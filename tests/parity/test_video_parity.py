"""Every step of the fixture's video case against the reference outputs."""

from __future__ import annotations

import numpy as np
import pytest

from samstream.compat import build_sam2_video_predictor

pytestmark = pytest.mark.parity
MIN_AGREEMENT = 0.999  # fraction of pixels with the same decision (logit > 0), per frame
MAX_P99 = 5e-4  # 99th percentile of |logit diff|, per frame


def _check_frames(name: str, got: np.ndarray, want: np.ndarray) -> None:
    """got/want: [frames, objects, H, W] or [objects, H, W] logits."""
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    if got.ndim == 3:
        got, want = got[None], want[None]
    for f in range(got.shape[0]):
        g, w = got[f].astype(np.float64), want[f].astype(np.float64)
        agreement = float(((g > 0) == (w > 0)).mean())
        p99 = float(np.percentile(np.abs(g - w), 99))
        assert agreement >= MIN_AGREEMENT, f"{name} frame {f}: agreement {agreement:.5f}"
        assert p99 <= MAX_P99, f"{name} frame {f}: p99 |diff| {p99:.2e}"


@pytest.fixture(scope="module")
def video_case(parity_cases):
    cases = [c for c in parity_cases if c["kind"] == "video"]
    assert cases, "no video case in the fixture"
    return cases[0]


def test_video_steps(video_case, parity_dir, expected):
    predictor = build_sam2_video_predictor(
        parity_dir / "model.yaml", parity_dir / "model.pt", device="cpu", **video_case["predictor_options"]
    )
    state = predictor.init_state(str(parity_dir / video_case["video"]))
    assert (state.video_height, state.video_width) == (video_case["video_height"], video_case["video_width"])
    assert state.num_frames == video_case["frames"]
    engine = predictor._engine
    for step in video_case["steps"]:
        out = step["output"]
        if step["op"] == "add_new_points_or_box":
            _, obj_ids, masks = predictor.add_new_points_or_box(
                state, step["frame_idx"], step["obj_id"], points=step.get("points"), labels=step.get("labels"), box=step.get("box")
            )
        elif step["op"] == "add_new_mask":
            _, obj_ids, masks = predictor.add_new_mask(state, step["frame_idx"], step["obj_id"], expected[step["mask"]].astype(bool))
        else:
            kwargs = {k: step[k] for k in ("start_frame_idx", "max_frame_num_to_track", "reverse") if k in step}
            frames, per_frame = [], []
            for frame_idx, obj_ids, masks in predictor.propagate_in_video(state, **kwargs):
                frames.append(frame_idx)
                per_frame.append(masks[:, 0].numpy())
            assert frames == expected[f"{out}_frames"].tolist(), out
            assert list(obj_ids) == expected[f"{out}_obj_ids"].tolist(), out
            _check_frames(out, np.stack(per_frame), expected[f"{out}_masks"])
            for key in expected.files:
                if key.startswith(f"{out}_obj") and key.endswith("_object_score_logits"):
                    obj_id = int(key[len(out) + 4 :].split("_")[0])
                    want = expected[key]
                    got = np.array(
                        [np.nan if (v := engine.object_score_logits(state, obj_id, t)) is None else v for t in range(len(want))]
                    )
                    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=key)
                    np.testing.assert_allclose(got[~np.isnan(want)], want[~np.isnan(want)], atol=1e-4, err_msg=key)
            continue
        assert list(obj_ids) == expected[f"{out}_obj_ids"].tolist(), out
        _check_frames(out, masks[:, 0].numpy(), expected[f"{out}_masks"])
