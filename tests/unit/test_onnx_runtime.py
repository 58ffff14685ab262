"""``samstream export onnx`` on the tiny model, and samstream.onnx (ONNX Runtime, no torch)
against the PyTorch predictors.

One export (through the command line) is shared by the module: it takes most of the time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import moving_clip, prompt_cases, sample_image, write_jpeg_folder

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from samstream.build import build_model  # noqa: E402
from samstream.cli import main  # noqa: E402
from samstream.compat import SAM2ImagePredictor  # noqa: E402
from samstream.export.onnx import quantize_export  # noqa: E402
from samstream.export.onnx.wrappers import MemoryAttentionGraph, PromptDecoderGraph  # noqa: E402
from samstream.onnx import OnnxImagePredictor, OnnxModel, OnnxStreamingTracker, OnnxVideoPredictor, read_manifest  # noqa: E402
from samstream.video.predictor import VideoPredictor  # noqa: E402
from samstream.video.streaming import StreamingTracker  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
IMAGE_TOL = 1e-3  # max |diff| of logits and IoUs against PyTorch
MIN_AGREEMENT = 0.995  # video: fraction of pixels with the same decision, on every frame
CLICK = {"points": [[160.0, 74.8]], "labels": [1]}
BOX = {"box": [16.0, 27.2, 112.0, 122.4]}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny_export(tiny_model_files, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "tiny"
    assert main(["export", "onnx", *tiny_model_files.cli_args(), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def onnx_model(tiny_export) -> OnnxModel:
    return OnnxModel(tiny_export, num_threads=1)


@pytest.fixture(scope="module")
def video_model(tiny_model_files):
    return build_model(tiny_model_files.config, tiny_model_files.checkpoint, for_video=True)


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a > 0) == (b > 0)).mean())


# --------------------------------------------------------------------------- export


def test_manifest_describes_every_graph(tiny_export):
    manifest = read_manifest(tiny_export)
    assert manifest.opset == 18 and manifest.quantization is None
    assert set(manifest.graphs) == {
        "image_encoder", "decoder_single", "decoder_multi", "mask_downsample", "memory_attention", "memory_encoder"
    }
    assert manifest.config["image_size"] == 128 and manifest.config["binarize_mask_from_pts_for_mem_enc"]
    mem = {t.name: t for t in manifest.graphs["memory_attention"].inputs}
    assert mem["memory"].shape == ("batch", "frames", 16, 8, 8) and mem["memory"].dtype == "float32"
    assert mem["obj_ptrs"].shape == ("batch", "pointers", 32)
    dec = {t.name: t for t in manifest.graphs["decoder_multi"].outputs}
    assert dec["masks"].shape == ("batch", 3, 32, 32)
    assert {t.name for t in manifest.graphs["decoder_single"].inputs} >= {"point_coords", "point_labels", "mask_input", "has_mask_input"}
    raw = json.loads((tiny_export / "manifest.json").read_text())
    assert raw["format"] == "samstream-onnx" and raw["constants"]["no_mem_embed"] == [32]


def test_cli_refuses_bad_arguments(tiny_model_files, tiny_export, tmp_path, capsys):
    assert main(["export", "onnx", *tiny_model_files.cli_args(), "--out", str(tmp_path / "a"), "--opset", "16"]) == 2
    assert "--opset must be >= 17" in capsys.readouterr().err
    assert main(["export", "onnx", *tiny_model_files.cli_args(), "--out", str(tiny_export)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["export", "onnx", *tiny_model_files.cli_args(), "--out", str(tmp_path / "b"), "--bf16"]) == 2
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_export_refuses_a_model_with_fast_paths(video_model, tmp_path):
    from samstream.export.onnx import export_onnx

    with pytest.raises(ValueError, match="accel=None"):
        export_onnx(video_model, tmp_path)
    with pytest.raises(ValueError, match="opset"):
        export_onnx(video_model, tmp_path, opset=13)


def test_graphs_match_pytorch_with_dynamic_axes(onnx_model, tiny_model_files):
    model = build_model(tiny_model_files.config, tiny_model_files.checkpoint, for_video=True, accel=None)
    torch.manual_seed(0)
    c, cm, h = 32, 16, 8
    attention = MemoryAttentionGraph(model)
    for b, frames, pointers in ((1, 1, 0), (3, 2, 5), (2, 7, 16)):
        args = (
            torch.randn(b, c, h, h), torch.randn(b, c, h, h), torch.randn(b, frames, cm, h, h),
            torch.randn(b, frames, cm, h, h), torch.randint(0, 7, (frames,)), torch.randn(b, pointers, c), torch.rand(pointers),
        )
        with torch.no_grad():
            want = attention(*args).numpy()
        got = onnx_model.condition_on_memory(*(a.numpy() for a in args))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4, err_msg=f"B={b} F={frames} P={pointers}")
    images = torch.randn(3, 3, 128, 128)
    with torch.no_grad():
        feats = model.encode_images(images)
    got = onnx_model.encode_images(images.numpy())
    np.testing.assert_allclose(got.image_embed, feats.image_embed.numpy(), rtol=0, atol=1e-4)
    for multimask in (False, True):
        coords, labels = torch.rand(3, 4, 2) * 128, torch.tensor([[1, 0, 1, 1], [2, 3, 1, 0], [1, 1, 1, 1]])
        with torch.no_grad():
            want = PromptDecoderGraph(model, multimask)(
                feats.image_embed, *feats.high_res, coords, labels, torch.zeros(3, 1, 32, 32), torch.zeros(3)
            )
        heads = onnx_model.decode(got.image_embed, got.high_res, coords.numpy(), labels.numpy(), None, multimask=multimask)
        for g, w in zip(heads, want):
            np.testing.assert_allclose(g, w.numpy(), rtol=0, atol=1e-3)


# --------------------------------------------------------------------------- image predictor


def test_image_predictor_matches_pytorch(tiny_export, tiny_file_model):
    image = sample_image("coffee")
    torch_pred = SAM2ImagePredictor(tiny_file_model)
    onnx_pred = OnnxImagePredictor(tiny_export, num_threads=1)
    torch_pred.set_image(image)
    onnx_pred.set_image(image)
    embed = torch_pred._features["image_embed"].numpy()
    np.testing.assert_allclose(onnx_pred._features["image_embed"], embed, rtol=0, atol=IMAGE_TOL)
    low_res = None
    for case in prompt_cases(*image.shape[:2]):
        want = torch_pred.predict(**case, return_logits=True)
        got = onnx_pred.predict(**case, return_logits=True)
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=0, atol=IMAGE_TOL, err_msg=str(case))
        low_res = want[2]
    refine = {"point_coords": [[300, 200]], "point_labels": [1], "mask_input": low_res[None] if low_res.ndim == 2 else low_res[:1]}
    for multimask in (False, True):
        want = torch_pred.predict(**refine, multimask_output=multimask)
        got = onnx_pred.predict(**refine, multimask_output=multimask)
        assert np.array_equal(got[0] > 0, want[0] > 0) or _agreement(got[0], want[0]) > 0.999
        np.testing.assert_allclose(got[1], want[1], rtol=0, atol=IMAGE_TOL)
    # batched prompt sets: a leading axis
    boxes = np.array([[50, 40, 300, 300], [200, 100, 500, 380]], dtype=np.float32)
    got = onnx_pred.predict(box=boxes, multimask_output=False, return_logits=True)
    want = torch_pred.predict(box=boxes, multimask_output=False, return_logits=True)
    assert got[0].shape == want[0].shape == (2, 1, 400, 600)
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=IMAGE_TOL)


def test_image_batch_matches_pytorch(tiny_export, tiny_file_model):
    images = [sample_image("astronaut"), sample_image("coffee")]
    boxes = [np.array([100.0, 80.0, 400.0, 420.0]), np.array([120.0, 60.0, 420.0, 320.0])]
    torch_pred, onnx_pred = SAM2ImagePredictor(tiny_file_model), OnnxImagePredictor(tiny_export, num_threads=1)
    torch_pred.set_image_batch(images)
    onnx_pred.set_image_batch(images)
    want = torch_pred.predict_batch(box_batch=boxes, multimask_output=False, return_logits=True)
    got = onnx_pred.predict_batch(box_batch=boxes, multimask_output=False, return_logits=True)
    for g_list, w_list in zip(got, want):
        for g, w in zip(g_list, w_list):
            np.testing.assert_allclose(g, w, rtol=0, atol=IMAGE_TOL)


def test_image_predictor_errors(tiny_export):
    pred = OnnxImagePredictor(tiny_export)
    with pytest.raises(RuntimeError, match="set_image"):
        pred.predict(point_coords=[[1, 1]], point_labels=[1])
    pred.set_image(sample_image("coffee"))
    with pytest.raises(RuntimeError, match="set_image_batch"):
        pred.predict_batch(box_batch=[[0, 0, 10, 10]])
    with pytest.raises(ValueError, match="point_labels"):
        pred.predict(point_coords=[[1, 1]])
    with pytest.raises(ValueError, match="mask_input"):
        pred.predict(mask_input=np.zeros((1, 16, 16)))
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        OnnxImagePredictor(tiny_export.parent)


# --------------------------------------------------------------------------- video


def _run_video(predictor, session, frames_out: int):
    predictor.add_prompt(session, 0, 1, **CLICK)
    predictor.add_prompt(session, 0, 2, **BOX)
    first = list(predictor.propagate(session, **({"progress": False})))
    predictor.add_prompt(session, 4, 1, points=[[160.0, 74.8], [224.0, 40.8]], labels=[1, 0])
    predictor.add_mask(session, 5, 3, np.pad(np.ones((40, 60), bool), ((30, 66), (100, 160))))
    second = list(predictor.propagate(session, start_frame_idx=5, reverse=True, progress=False))
    third = list(predictor.propagate(session, start_frame_idx=2, max_frames=frames_out, progress=False))
    return first + second + third


def test_video_predictor_matches_pytorch(onnx_model, video_model, tmp_path):
    folder = write_jpeg_folder(tmp_path / "clip", moving_clip(8))
    torch_pred, onnx_pred = VideoPredictor(video_model), OnnxVideoPredictor(onnx_model)
    torch_session, onnx_session = torch_pred.open_session(str(folder)), onnx_pred.open_session(str(folder))
    want = _run_video(torch_pred, torch_session, 4)
    got = _run_video(onnx_pred, onnx_session, 4)
    assert [(r.frame_idx, r.obj_ids) for r in got] == [(r.frame_idx, r.obj_ids) for r in want]
    for g, w in zip(got, want):
        assert _agreement(g.masks, w.masks.numpy()) >= MIN_AGREEMENT, g.frame_idx
        np.testing.assert_allclose(g.masks, w.masks.numpy(), rtol=0, atol=5e-3)
    for obj in (1, 2, 3):
        for t in range(8):
            a, b = onnx_pred.object_score_logits(onnx_session, obj, t), torch_pred.object_score_logits(torch_session, obj, t)
            assert (a is None) == (b is None) and (a is None or abs(a - b) < 1e-3)
    np.testing.assert_allclose(onnx_pred.frame_masks(onnx_session, 4).masks, torch_pred.frame_masks(torch_session, 4).masks.numpy(), atol=5e-3)
    assert onnx_pred.remove_object(onnx_session, 2).obj_ids == [1, 3]


def test_streaming_tracker_matches_pytorch(onnx_model, video_model):
    clip = moving_clip(20)
    torch_tracker, onnx_tracker = StreamingTracker(video_model), OnnxStreamingTracker(onnx_model)
    for t, frame in enumerate(clip):
        results = []
        for tracker in (torch_tracker, onnx_tracker):
            result = tracker.add_frame(frame)
            if t == 0:
                result = tracker.add_prompt(1, **CLICK)
            if t == 9:
                result = tracker.add_prompt(2, **BOX)
            results.append(result)
        want, got = results
        assert got.obj_ids == want.obj_ids
        masks = want.masks.numpy() if hasattr(want.masks, "numpy") else want.masks
        assert _agreement(np.asarray(got.masks), masks) >= MIN_AGREEMENT, t
    assert onnx_tracker.stored_frames() == torch_tracker.stored_frames()


def test_video_options_refuse_what_the_runtime_lacks():
    from samstream.onnx import OnnxVideoOptions

    with pytest.raises(ValueError, match="fill_hole_area"):
        OnnxVideoOptions(fill_hole_area=8)


# --------------------------------------------------------------------------- without torch, int8


def test_runtime_runs_without_torch(tiny_export, tmp_path):
    folder = write_jpeg_folder(tmp_path / "clip", moving_clip(3))
    script = f"""
import sys
import numpy as np
from PIL import Image
from samstream.onnx import OnnxImagePredictor, OnnxStreamingTracker, OnnxVideoPredictor
pred = OnnxImagePredictor({str(tiny_export)!r}, num_threads=1)
pred.set_image(np.asarray(Image.open({str(folder / '00000.jpg')!r})))
masks, scores, low = pred.predict(point_coords=[[100, 60]], point_labels=[1])
assert masks.shape == (3, 136, 320) and scores.shape == (3,)
video = OnnxVideoPredictor({str(tiny_export)!r}, num_threads=1)
session = video.open_session({str(folder)!r})
video.add_prompt(session, 0, 1, points=[[100, 60]], labels=[1])
assert [r.frame_idx for r in video.propagate(session)] == [0, 1, 2]
assert "torch" not in sys.modules, sorted(m for m in sys.modules if m.startswith("torch"))
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_int8_export_agrees_with_float32(tiny_export, tmp_path):
    q = quantize_export(tiny_export, tmp_path / "int8")
    assert read_manifest(q).quantization == "int8"
    size = lambda d: sum(f.stat().st_size for f in Path(d).glob("*.onnx"))  # noqa: E731
    assert size(q) < 0.75 * size(tiny_export)  # MatMul / Gemm weights in int8, convolutions stay float32
    image = sample_image("astronaut")
    fp32, int8 = OnnxImagePredictor(tiny_export, num_threads=1), OnnxImagePredictor(q, num_threads=1)
    fp32.set_image(image)
    int8.set_image(image)
    a = fp32.predict(box=[100, 80, 400, 420], multimask_output=False)[0]
    b = int8.predict(box=[100, 80, 400, 420], multimask_output=False)[0]
    assert not np.array_equal(int8._features["image_embed"], fp32._features["image_embed"])  # really quantized
    assert _agreement(a, b) >= 0.9


def test_cli_says_which_extra_export_needs(tiny_model_files, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if it were not installed
    assert main(["export", "onnx", *tiny_model_files.cli_args(), "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "onnxscript" in err and "pip install 'samstream[export]'" in err
    assert not (tmp_path / "x").exists()
