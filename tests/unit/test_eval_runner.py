"""Dataset inference with a tiny random model on 2 synthetic videos of 4 frames (64x64)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from samstream.checkpoint import save_safetensors
from samstream.eval.layouts import LayoutError, labels_from_masks, list_videos, read_binary_png, read_id_png, write_palette_png
from samstream.eval.runner import (
    MARKER_DIR,
    InferenceConfig,
    ModelSpec,
    make_predictor,
    read_prompts,
    run_dataset,
)
from samstream.eval.synthetic import make_synthetic_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def spec(tiny_model, tmp_path_factory) -> ModelSpec:
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_safetensors(tiny_model, path)
    return ModelSpec(model=tiny_model.config, checkpoint=path, threads=1)


@pytest.fixture(scope="module")
def model(spec):
    return spec.build()


def direct_labels(model, video, config, groups):
    """What the runner should write for a palette layout, computed with the predictor directly:
    one session per prompt group, objects merged with the smaller id winning."""
    n = len(video.frame_names)
    out = None
    for g in groups:
        predictor = make_predictor(model, config)
        session = predictor.open_session(str(video.frames_dir))
        for obj, mask in zip(g.obj_ids, g.masks):
            predictor.add_mask(session, g.frame_idx, obj, mask)
        frames = {t: labels_from_masks((lg[:, 0] > 0).numpy(), ids) for t, ids, lg in predictor.propagate(session, start_frame_idx=g.frame_idx, progress=False)}
        h, w = session.video_height, session.video_width
        if out is None:
            out = np.zeros((n, h, w), np.uint8)
        for t, ids in frames.items():
            old = out[t]
            out[t] = np.where(old == 0, ids, np.where(ids == 0, old, np.minimum(old, ids)))
    return out


def test_davis_outputs_match_the_predictor_and_a_rerun_skips(tmp_path, spec, model):
    make_synthetic_dataset(tmp_path / "ds", "davis")
    videos = list_videos(tmp_path / "ds", "davis")
    config = InferenceConfig(output_dir=tmp_path / "out", layout="davis")
    outcomes = run_dataset(videos, spec, config, model=model, progress=False)
    assert [(o.video, o.status, o.frames, o.objects) for o in outcomes] == [("video00", "done", 4, 2), ("video01", "done", 4, 2)]
    for video in videos:
        written = sorted(p.name for p in (tmp_path / "out" / video.name).iterdir())
        assert written == [f"{s}.png" for s in video.frame_names]
        expected = direct_labels(model, video, config, read_prompts(video, "davis"))
        got = np.stack([read_id_png(tmp_path / "out" / video.name / f"{s}.png") for s in video.frame_names])
        np.testing.assert_array_equal(got, expected)
        assert got[1:].any()  # the random model does predict something on tracked frames
    # a rerun skips complete videos; one whose marker is gone runs again
    (tmp_path / "out" / MARKER_DIR / "video01.done.json").unlink()
    again = run_dataset(videos, spec, config, model=model, progress=False)
    assert [o.status for o in again] == ["skipped", "done"]


def test_prompts_are_the_first_annotated_frame(tmp_path):
    truth = make_synthetic_dataset(tmp_path / "ds", "davis", videos=1)
    (video,) = list_videos(tmp_path / "ds", "davis")
    (group,) = read_prompts(video, "davis")
    assert group.frame_idx == 0 and group.obj_ids == (1, 2)
    ids = labels_from_masks(truth["video00"][0], [1, 2])
    np.testing.assert_array_equal(group.masks, np.stack([ids == 1, ids == 2]))


def test_objects_appearing_later_get_their_own_start(tmp_path, spec, model):
    make_synthetic_dataset(tmp_path / "ds", "ytvos", videos=1, appear_at={1: 2})
    (video,) = list_videos(tmp_path / "ds", "ytvos")
    assert [g.obj_ids for g in read_prompts(video, "ytvos")] == [(1,)]
    groups = read_prompts(video, "ytvos", track_objects_appearing_later=True)
    assert [(g.frame_idx, g.obj_ids) for g in groups] == [(0, (1,)), (2, (2,))]
    config = InferenceConfig(output_dir=tmp_path / "out", layout="ytvos", track_objects_appearing_later=True)
    (outcome,) = run_dataset([video], spec, config, model=model, progress=False)
    assert outcome.status == "done" and outcome.objects == 2
    got = np.stack([read_id_png(tmp_path / "out" / video.name / f"{s}.png") for s in video.frame_names])
    np.testing.assert_array_equal(got, direct_labels(model, video, config, groups))
    assert not (got[:2] == 2).any()  # object 2 does not exist before frame 2


def test_sav_writes_one_png_per_object_per_frame(tmp_path, spec, model):
    make_synthetic_dataset(tmp_path / "ds", "sav", videos=1, annotate_every=2)
    videos = list_videos(tmp_path / "ds", "sav")
    config = InferenceConfig(output_dir=tmp_path / "out", layout="sav")
    assert config.writes_per_object
    (outcome,) = run_dataset(videos, spec, config, model=model, progress=False)
    assert outcome.status == "done"
    for obj in ("001", "002"):
        names = sorted(p.name for p in (tmp_path / "out" / "video00" / obj).iterdir())
        assert names == [f"{t:05d}.png" for t in range(4)]
        assert read_binary_png(tmp_path / "out" / "video00" / obj / "00000.png").shape == (64, 64)


def test_a_bad_video_fails_alone_with_its_error(tmp_path, spec, model):
    make_synthetic_dataset(tmp_path / "ds", "davis")
    write_palette_png(tmp_path / "ds" / "Annotations" / "video00" / "00000.png", np.ones((10, 12), np.uint8))
    videos = list_videos(tmp_path / "ds", "davis")
    config = InferenceConfig(output_dir=tmp_path / "out")
    bad, good = run_dataset(videos, spec, config, model=model, progress=False)
    assert bad.status == "failed" and "12x10" in bad.error and "64x64" in bad.error
    assert good.status == "done"
    report = json.loads((tmp_path / "out" / MARKER_DIR / "video01.done.json").read_text())
    assert report["frames"] == 4
    assert not (tmp_path / "out" / MARKER_DIR / "video00.done.json").exists()


def test_layout_errors_are_clear(tmp_path):
    with pytest.raises(LayoutError, match="no annotations folder"):
        (tmp_path / "a" / "JPEGImages").mkdir(parents=True)
        list_videos(tmp_path / "a", "davis")
    (tmp_path / "a" / "Annotations").mkdir()
    with pytest.raises(LayoutError, match="empty dataset"):
        list_videos(tmp_path / "a", "davis")
    make_synthetic_dataset(tmp_path / "b", "davis", videos=1)
    (tmp_path / "b" / "Annotations" / "video00" / "00000.png").unlink()
    (video,) = list_videos(tmp_path / "b", "davis")
    (tmp_path / "b" / "Annotations" / "video00" / "00007.png").write_bytes(
        (tmp_path / "b" / "Annotations" / "video00" / "00001.png").read_bytes()
    )
    with pytest.raises(LayoutError, match="have no frame of that name"):
        read_prompts(video, "davis")
    with pytest.raises(ValueError, match="layout must be one of"):
        InferenceConfig(output_dir=tmp_path, layout="mose")


def test_two_worker_processes_write_the_same_masks(tmp_path, spec, model):
    make_synthetic_dataset(tmp_path / "ds", "davis")
    videos = list_videos(tmp_path / "ds", "davis")
    one = InferenceConfig(output_dir=tmp_path / "one")
    two = InferenceConfig(output_dir=tmp_path / "two")
    run_dataset(videos, spec, one, model=model, progress=False)
    outcomes = run_dataset(videos, spec, two, workers=2, progress=False)
    assert [o.status for o in outcomes] == ["done", "done"], [o.error for o in outcomes]
    for video in videos:
        for stem in video.frame_names:
            np.testing.assert_array_equal(
                read_id_png(tmp_path / "two" / video.name / f"{stem}.png"),
                read_id_png(tmp_path / "one" / video.name / f"{stem}.png"),
            )


def test_the_memory_option_reaches_the_predictor(model):
    import uuid

    from samstream.video.memory import register_strategy
    from samstream.video.memory.default import DefaultMemory
    from samstream.video.memory.selection import MemoryPolicy

    made = []
    name = f"test-{uuid.uuid4().hex[:8]}"
    register_strategy(name, lambda config: made.append(DefaultMemory(MemoryPolicy.from_config(config))) or made[-1])
    predictor = make_predictor(model, InferenceConfig(output_dir=".", memory=name))
    assert made and predictor.memory is made[0]
    with pytest.raises(ValueError, match="unknown memory strategy 'nope'"):
        make_predictor(model, InferenceConfig(output_dir=".", memory="nope"))
