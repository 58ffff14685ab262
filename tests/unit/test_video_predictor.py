"""The video predictor and the streaming tracker on the tiny model (128 input).

Most tests run on the first 8 frames of a 24-frame 320x136 clip made in the test (a pan over a
photograph, written as JPEGs); the streaming comparisons use all 24 (more than the 16-frame
object-pointer window).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import moving_clip, read_jpeg_folder, write_jpeg_folder, write_mp4

from samstream.build import build_model
from samstream.modeling.sam2 import NO_OBJECT_LOGIT
from samstream.video.sources import FrameDecodeError, FrameSourceError
from samstream.video.predictor import VideoPredictor, VideoPredictorOptions
from samstream.video.streaming import StreamingTracker

H, W = 136, 320
CLIP = 8  # frames of the short clip

CLICK = {"points": [[160.0, 74.8]], "labels": [1]}
BOX = {"box": [16.0, 27.2, 112.0, 122.4]}
CLICKS = {"points": [[256.0, 68.0], [200.0, 40.0]], "labels": [1, 0]}
PROMPTS = {1: CLICK, 2: BOX, 3: CLICKS}


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The model is tiny: one intra-op thread is as fast, and far faster on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def model(tiny_model_files):
    return build_model(tiny_model_files.config, tiny_model_files.checkpoint, for_video=True)


@pytest.fixture(scope="module")
def predictor(model):
    return VideoPredictor(model)


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory) -> Path:
    """A folder of 24 JPEG frames, 320 x 136."""
    return write_jpeg_folder(tmp_path_factory.mktemp("video"), moving_clip(24, H, W))


@pytest.fixture(scope="module")
def all_frames(video_dir) -> np.ndarray:
    """The 24 frames, decoded (T, H, W, 3) uint8."""
    frames = read_jpeg_folder(video_dir)
    assert frames.shape == (24, H, W, 3)
    return frames


@pytest.fixture(scope="module")
def clip_dir(video_dir, tmp_path_factory) -> Path:
    """A folder with the first CLIP JPEGs."""
    folder = tmp_path_factory.mktemp("clip")
    for p in sorted(video_dir.glob("*.jpg"))[:CLIP]:
        shutil.copy(p, folder / p.name)
    return folder


@pytest.fixture(scope="module")
def clip(all_frames) -> np.ndarray:
    return np.ascontiguousarray(all_frames[:CLIP])


def track(predictor, source, prompts: dict, *, frame_idx: int = 0, **propagate):
    """Prompt objects on one frame, propagate; {frame: (obj_ids, logits [N, 1, H, W])}."""
    session = predictor.open_session(source)
    for obj_id, prompt in prompts.items():
        predictor.add_prompt(session, frame_idx, obj_id, **prompt)
    return {f: (ids, logits.clone()) for f, ids, logits in predictor.propagate(session, progress=False, **propagate)}


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a > 0) == (b > 0)).float().mean())


# --------------------------------------------------------------------------- sessions


def test_init_state_records_no_autograd_graph(predictor, clip):
    assert torch.is_grad_enabled()
    session = predictor.open_session(clip)
    cached = [t for feats in session.features.values() for t in feats.features + feats.position]
    assert cached, "init_state warms up frame 0"
    assert not any(t.requires_grad for t in cached)


# --------------------------------------------------------------------------- batching


def test_batching_three_objects_equals_each_alone(predictor, clip, monkeypatch):
    batch_sizes = []
    original = VideoPredictor._propose

    def spy(self, session, feats, items, selection):
        batch_sizes.append(len(items))
        return original(self, session, feats, items, selection)

    monkeypatch.setattr(VideoPredictor, "_propose", spy)
    together = track(predictor, clip, PROMPTS)
    assert batch_sizes and set(batch_sizes) == {3}, "the three objects were not tracked as one batch"
    assert sorted(together) == list(range(CLIP))
    for position, obj_id in enumerate(PROMPTS):
        alone = track(predictor, clip, {obj_id: PROMPTS[obj_id]})
        for f in range(CLIP):
            ids, logits = together[f]
            assert ids == [1, 2, 3] and alone[f][0] == [obj_id]
            assert max_diff(logits[position], alone[f][1][0]) <= 1e-4, f"object {obj_id} frame {f}"


def test_batching_objects_prompted_on_different_frames(predictor, clip):
    # object 2 is prompted on frame 3: different memory layouts, tracked in separate groups
    session = predictor.open_session(clip)
    predictor.add_prompt(session, 0, 1, **CLICK)
    predictor.add_prompt(session, 3, 2, **BOX)
    together = {f: logits.clone() for f, _, logits in predictor.propagate(session, progress=False)}
    alone1 = track(predictor, clip, {1: CLICK})
    alone2 = track(predictor, clip, {2: BOX}, frame_idx=3, start_frame_idx=0)
    for f in range(CLIP):
        assert max_diff(together[f][0], alone1[f][1][0]) <= 1e-4
        assert max_diff(together[f][1], alone2[f][1][0]) <= 1e-4


# --------------------------------------------------------------------------- editing a session


def test_object_added_after_tracking_started(predictor, clip):
    session = predictor.open_session(clip)
    predictor.add_prompt(session, 0, 1, **CLICK)
    first = {f: logits.clone() for f, _, logits in predictor.propagate(session, progress=False)}
    _, ids, masks = predictor.add_prompt(session, 4, 2, **BOX)
    assert ids == [1, 2] and masks.shape == (2, 1, H, W)
    assert max_diff(masks[0], first[4][0]) == 0  # object 1 shows its tracked mask on frame 4
    second = {f: (i, logits.clone()) for f, i, logits in predictor.propagate(session, start_frame_idx=4, progress=False)}
    assert sorted(second) == list(range(4, CLIP))
    alone2 = track(predictor, clip, {2: BOX}, frame_idx=4)
    for f in range(4, CLIP):
        ids, logits = second[f]
        assert ids == [1, 2] and logits.shape == (2, 1, H, W)
        assert max_diff(logits[0], first[f][0]) <= 1e-4  # object 1 is unaffected
        assert max_diff(logits[1], alone2[f][1][0]) <= 1e-4  # object 2 as if alone
    assert max_diff(second[4][1][1], masks[1]) <= 1e-5  # the prompted frame is reused as is


def test_remove_object(predictor, clip):
    session = predictor.open_session(clip)
    for obj_id, prompt in PROMPTS.items():
        predictor.add_prompt(session, 0, obj_id, **prompt)
    first = {f: logits.clone() for f, _, logits in predictor.propagate(session, progress=False)}

    ids, prompted = predictor.remove_object(session, 2)
    assert ids == [1, 3] and session.obj_ids == [1, 3]
    assert prompted == [0]  # the frames where object 2 had prompts
    frame0 = predictor.frame_masks(session, 0).masks
    assert frame0.shape == (2, 1, H, W)
    assert max_diff(frame0[0], first[0][0]) == 0 and max_diff(frame0[1], first[0][2]) == 0

    again = {f: (i, logits.clone()) for f, i, logits in predictor.propagate(session, progress=False)}
    for f in range(CLIP):
        assert again[f][0] == [1, 3] and again[f][1].shape == (2, 1, H, W)
        assert max_diff(again[f][1][0], first[f][0]) <= 1e-5
        assert max_diff(again[f][1][1], first[f][2]) <= 1e-5

    # unknown ids: ignored unless strict
    assert predictor.remove_object(session, 42) == ([1, 3], [])
    with pytest.raises(KeyError, match="42"):
        predictor.remove_object(session, 42, strict=True)
    # removing the last object resets the session
    assert predictor.remove_object(session, 1).obj_ids == [3]
    assert predictor.remove_object(session, 3) == ([], [])
    with pytest.raises(RuntimeError, match="prompt"):
        next(predictor.propagate(session, progress=False))


def test_remove_object_refreshes_outputs_with_non_overlap(model, clip):
    predictor = VideoPredictor(model, VideoPredictorOptions(non_overlap_masks=True))
    session = predictor.open_session(clip)
    for obj_id, prompt in PROMPTS.items():
        _, _, before = predictor.add_prompt(session, 0, obj_id, **prompt)
    ids, prompted = predictor.remove_object(session, 2)
    assert ids == [1, 3]
    # object 2 no longer hides the others: frame 0 is what objects 1 and 3 alone give
    fresh = predictor.open_session(clip)
    predictor.add_prompt(fresh, 0, 1, **CLICK)
    _, _, want = predictor.add_prompt(fresh, 0, 3, **CLICKS)
    assert prompted == [0]
    refreshed = predictor.frame_masks(session, 0).masks
    assert max_diff(refreshed, want) <= 1e-5
    assert max_diff(refreshed[0], before[0]) > 1.0, "object 2 did not hide anything: test is vacuous"


def test_clear_all_prompts_before_tracking(predictor, clip):
    session = predictor.open_session(clip)
    predictor.add_prompt(session, 0, 1, **CLICK)
    _, _, both = predictor.add_prompt(session, 0, 2, **BOX)
    frame_idx, ids, masks = predictor.clear_prompts(session, 0, 1)
    assert frame_idx == 0 and ids == [1, 2]
    assert torch.all(masks[0] == NO_OBJECT_LOGIT)  # nothing left for object 1 on frame 0
    assert max_diff(masks[1], both[1]) == 0
    with pytest.raises(RuntimeError, match="1"):  # object 1 has no prompt anywhere
        next(predictor.propagate(session, progress=False))
    predictor.add_prompt(session, 0, 1, **CLICK)
    assert len(list(predictor.propagate(session, progress=False))) == CLIP


def test_clear_all_prompts_after_tracking(predictor, clip):
    session = predictor.open_session(clip)
    predictor.add_prompt(session, 0, 1, **CLICK)
    predictor.add_prompt(session, 5, 1, points=[[224.0, 40.8]], labels=[0])
    first = {f: logits.clone() for f, _, logits in predictor.propagate(session, progress=False)}
    # clearing a consolidated prompt keeps its result there (as a tracked frame), like the reference
    _, ids, masks = predictor.clear_prompts(session, 5, 1)
    assert ids == [1]
    assert max_diff(masks, first[5]) == 0
    # tracking again from frame 0 now only uses the frame-0 click
    again = {f: logits.clone() for f, _, logits in predictor.propagate(session, progress=False)}
    only_first_click = track(predictor, clip, {1: CLICK})
    assert any(max_diff(first[f], only_first_click[f][1]) > 1e-3 for f in range(1, CLIP)), "vacuous"
    for f in range(CLIP):
        assert max_diff(again[f], only_first_click[f][1]) <= 1e-4, f"frame {f}"


def test_reset_state(predictor, clip):
    session = predictor.open_session(clip)
    for obj_id, prompt in PROMPTS.items():
        predictor.add_prompt(session, 0, obj_id, **prompt)
    list(predictor.propagate(session, progress=False))
    predictor.reset_session(session)
    assert session.obj_ids == []
    with pytest.raises(RuntimeError, match="prompt"):
        next(predictor.propagate(session, progress=False))
    predictor.add_prompt(session, 0, 2, **BOX)
    after = {f: logits.clone() for f, _, logits in predictor.propagate(session, progress=False)}
    fresh = track(predictor, clip, {2: BOX})
    for f in range(CLIP):
        assert max_diff(after[f], fresh[f][1]) <= 1e-5


def test_clear_old_points_false_appends_clicks(predictor, clip):
    a, b = [[160.0, 74.8]], [[224.0, 40.8]]
    s1 = predictor.open_session(clip)
    predictor.add_prompt(s1, 0, 1, points=a, labels=[1])
    _, _, appended = predictor.add_prompt(s1, 0, 1, points=b, labels=[0], clear_old=False)
    assert s1.objects[1].points[0].coords.shape == (1, 2, 2)
    # same as giving both clicks again (the previous mask is fed back in both cases)
    s2 = predictor.open_session(clip)
    predictor.add_prompt(s2, 0, 1, points=a, labels=[1])
    _, _, both = predictor.add_prompt(s2, 0, 1, points=a + b, labels=[1, 0])
    assert max_diff(appended, both) <= 1e-5
    # while clear_old_points=True keeps only the new click
    s3 = predictor.open_session(clip)
    predictor.add_prompt(s3, 0, 1, points=a, labels=[1])
    _, _, replaced = predictor.add_prompt(s3, 0, 1, points=b, labels=[0])
    assert s3.objects[1].points[0].coords.shape == (1, 1, 2)
    assert max_diff(appended, replaced) > 1e-3
    # a box after clicks cannot be appended
    with pytest.raises(ValueError, match="box"):
        predictor.add_prompt(s1, 0, 1, box=BOX["box"], clear_old=False)


def test_normalized_coords_equal_pixel_coords(predictor, clip):
    pixels = predictor.open_session(clip)
    normalized = predictor.open_session(clip)
    pts = np.array(CLICKS["points"])
    box = np.array(BOX["box"])
    _, _, p1 = predictor.add_prompt(pixels, 0, 1, points=pts, labels=CLICKS["labels"])
    _, _, n1 = predictor.add_prompt(
        normalized, 0, 1, points=pts / [W, H], labels=CLICKS["labels"], coords="normalized"
    )
    _, _, p2 = predictor.add_prompt(pixels, 0, 2, box=box)
    _, _, n2 = predictor.add_prompt(normalized, 0, 2, box=box / [W, H, W, H], coords="normalized")
    assert max_diff(p1, n1) <= 1e-4
    assert max_diff(p2, n2) <= 1e-4
    for (fp, _, lp), (fn, _, ln) in zip(
        predictor.propagate(pixels, progress=False), predictor.propagate(normalized, progress=False)
    ):
        assert fp == fn and max_diff(lp, ln) <= 1e-4


def test_max_frame_num_to_track_and_reverse_ranges(predictor, clip):
    session = predictor.open_session(clip)
    predictor.add_prompt(session, 2, 1, **CLICK)
    frames = lambda **kw: [f for f, _, _ in predictor.propagate(session, progress=False, **kw)]  # noqa: E731
    assert frames(max_frames=3) == [2, 3, 4, 5]
    assert frames(start_frame_idx=5, max_frames=2, reverse=True) == [5, 4, 3]
    assert frames(max_frames=0) == [2]
    assert frames(start_frame_idx=6, max_frames=100) == [6, 7]  # stops at the last frame
    assert frames(reverse=True) == [2, 1, 0]
    assert frames(start_frame_idx=0, reverse=True) == []  # like the reference: nothing before frame 0
    assert frames() == list(range(2, CLIP))
    with pytest.raises(ValueError, match="max_frames"):
        frames(max_frames=-1)


def test_reverse_equals_forward_on_reversed_clip(predictor, clip):
    backward = track(predictor, clip, {1: CLICK, 2: BOX}, frame_idx=CLIP - 1, reverse=True)
    assert sorted(backward) == list(range(CLIP))
    forward = track(predictor, np.ascontiguousarray(clip[::-1]), {1: CLICK, 2: BOX}, frame_idx=0)
    for f in range(CLIP):
        assert max_diff(backward[f][1], forward[CLIP - 1 - f][1]) <= 1e-4, f"frame {f}"


def test_non_overlap_masks(model, predictor, clip):
    overlapping = track(predictor, clip, PROMPTS)
    assert any(((logits > 0).sum(0) > 1).any() for _, logits in overlapping.values()), "objects never overlap: vacuous"
    disjoint_predictor = VideoPredictor(model, VideoPredictorOptions(non_overlap_masks=True))
    session = disjoint_predictor.open_session(clip)
    for obj_id, prompt in PROMPTS.items():
        _, _, masks = disjoint_predictor.add_prompt(session, 0, obj_id, **prompt)
        assert int(((masks > 0).sum(0) > 1).sum()) == 0
    for f, ids, logits in disjoint_predictor.propagate(session, progress=False):
        assert ids == [1, 2, 3]
        assert int(((logits > 0).sum(0) > 1).sum()) == 0, f"frame {f}: a pixel has two objects"
        # the winner at each pixel keeps its logit
        winner = overlapping[f][1].max(dim=0).values
        assert max_diff(logits.max(dim=0).values, winner) <= 1e-4


def test_fill_holes_unit():
    from samstream.image.postprocess import fill_holes

    logits = torch.full((1, 1, 10, 12), 5.0)
    logits[0, 0, 0, :] = -3.0  # a long background strip on the border (area 12)
    logits[0, 0, 3, 3] = -1.0  # a diagonal pair of background pixels: one 8-connected hole of area 2
    logits[0, 0, 4, 4] = -2.0
    logits[0, 0, 7, 8] = 0.0  # logit 0 is background, a hole of area 1
    out = fill_holes(logits, 2, fill_value=0.1)
    assert out[0, 0, 3, 3] == pytest.approx(0.1) and out[0, 0, 4, 4] == pytest.approx(0.1)
    assert out[0, 0, 7, 8] == pytest.approx(0.1)
    assert torch.equal(out[0, 0, 0], logits[0, 0, 0])  # too large: untouched
    assert torch.equal(out[logits > 0], logits[logits > 0])
    # the diagonal pair is ONE component of area 2 (8-connectivity), so max_area=1 keeps it
    out = fill_holes(logits, 1, fill_value=0.1)
    assert out[0, 0, 3, 3] == -1.0 and out[0, 0, 4, 4] == -2.0
    assert out[0, 0, 7, 8] == pytest.approx(0.1)
    assert torch.equal(fill_holes(logits, 0), logits)


def test_fill_hole_area_fills_a_hole_in_a_mask_prompt(model, clip):
    mask = np.zeros((H, W), dtype=bool)
    mask[20:116, 40:280] = True
    mask[58:78, 150:170] = False  # a 20x20 hole
    plain = VideoPredictor(model, VideoPredictorOptions(fill_hole_area=0))
    filled = VideoPredictor(model, VideoPredictorOptions(fill_hole_area=200))
    _, _, without = plain.add_mask(plain.open_session(clip), 0, 1, mask)
    _, _, with_fill = filled.add_mask(filled.open_session(clip), 0, 1, mask)
    hole = (slice(None), slice(None), slice(62, 74), slice(154, 166))
    assert bool((without[hole] < 0).all()), "the hole survived no resizing: vacuous"
    assert bool((with_fill[hole] > 0).all()), "fill_hole_area did not fill the hole"
    # the large outer background is not a hole
    assert float(with_fill[0, 0, 2, 2]) < 0 and float(with_fill[0, 0, H - 3, W - 3]) < 0
    outside = np.ones((H, W), dtype=bool)
    outside[50:86, 140:180] = False
    assert torch.equal((with_fill[0, 0] > 0)[outside], (without[0, 0] > 0)[outside])


def test_offload_state_to_cpu(predictor, clip):
    session = predictor.open_session(clip, offload_state_to_cpu=True)
    assert session.storage_device == torch.device("cpu")
    for obj_id, prompt in PROMPTS.items():
        predictor.add_prompt(session, 0, obj_id, **prompt)
    offloaded = {f: logits.clone() for f, _, logits in predictor.propagate(session, progress=False)}
    for track_ in session.objects.values():
        for out in list(track_.cond.values()) + list(track_.tracked.values()):
            assert out.pred_masks.device.type == "cpu" and out.maskmem_features.device.type == "cpu"
    plain = track(predictor, clip, PROMPTS)
    for f in range(CLIP):
        assert offloaded[f].device == predictor.device
        assert max_diff(offloaded[f], plain[f][1]) <= 1e-5


def test_compat_predictor_matches_engine(tiny_model_files, predictor, clip_dir):
    from samstream.compat import build_sam2_video_predictor

    compat = build_sam2_video_predictor(
        tiny_model_files.config, tiny_model_files.checkpoint, device="cpu", fill_hole_area=0
    )
    state = compat.init_state(str(clip_dir))
    assert state.num_frames == CLIP
    compat.add_new_points_or_box(state, 0, 1, **CLICK)
    got = {f: m.clone() for f, _, m in compat.propagate_in_video(state)}
    want = track(predictor, str(clip_dir), {1: CLICK})
    for f in range(CLIP):
        assert max_diff(got[f], want[f][1]) <= 1e-5


# --------------------------------------------------------------------------- sources


@pytest.fixture(scope="module")
def folder_tracks(predictor, clip_dir):
    return track(predictor, str(clip_dir), {1: CLICK, 2: BOX})


@pytest.mark.parametrize(
    "kind",
    [
        "folder_path",
        "mp4",
        "array",
        "tensor",
        "generator",
    ],
)
def test_sources_give_the_same_tracks(kind, predictor, clip_dir, clip, folder_tracks, tmp_path):
    if kind == "folder_path":
        source = clip_dir  # a Path, not a str
    elif kind == "mp4":
        source = str(write_mp4(tmp_path / "clip.mp4", clip, fps=10))
    elif kind == "array":
        source = clip
    elif kind == "tensor":
        source = torch.from_numpy(clip).permute(0, 3, 1, 2)  # (T, 3, H, W)
    else:
        source = (frame for frame in clip)
    got = track(predictor, source, {1: CLICK, 2: BOX})
    assert sorted(got) == sorted(folder_tracks) == list(range(CLIP))
    for f in range(CLIP):
        assert got[f][0] == folder_tracks[f][0] == [1, 2]
        assert got[f][1].shape == folder_tracks[f][1].shape == (2, 1, H, W)
        if kind in ("folder_path", "array", "tensor"):
            # the same decoded RGB frames: the same masks
            assert max_diff(got[f][1], folder_tracks[f][1]) <= 1e-5, f"{kind} frame {f}"


def test_video_file_tracked_backwards(predictor, clip, tmp_path):
    """Reverse tracking reads a video file backwards (seeking): same as its decoded frames."""
    import av

    path = write_mp4(tmp_path / "clip.mp4", clip, fps=10)
    with av.open(str(path)) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert decoded.shape == clip.shape
    from_file = track(predictor, str(path), {1: CLICK}, frame_idx=CLIP - 1, reverse=True)
    from_array = track(predictor, decoded, {1: CLICK}, frame_idx=CLIP - 1, reverse=True)
    assert sorted(from_file) == list(range(CLIP))
    for f in range(CLIP):
        assert max_diff(from_file[f][1], from_array[f][1]) <= 1e-5, f"frame {f}"


def test_folder_and_array_sessions_agree(predictor, clip_dir, clip):
    a = predictor.open_session(str(clip_dir))
    b = predictor.open_session(clip)
    assert (a.num_frames, a.video_height, a.video_width) == (b.num_frames, b.video_height, b.video_width) == (CLIP, H, W)
    for f in (0, CLIP - 1):
        assert torch.equal(a.frames.get(f), b.frames.get(f))


# --------------------------------------------------------------------------- bad input


@pytest.fixture()
def session(predictor, clip):
    return predictor.open_session(clip)


@pytest.mark.parametrize("frame_idx", [999, CLIP, -1])
def test_frame_index_out_of_range(predictor, session, frame_idx):
    with pytest.raises(IndexError, match=str(frame_idx)):
        predictor.add_prompt(session, frame_idx, 1, **CLICK)
    with pytest.raises(IndexError, match=str(frame_idx)):
        predictor.add_mask(session, frame_idx, 1, np.ones((H, W), dtype=bool))
    assert session.obj_ids == [] or all(not t.points for t in session.objects.values())


@pytest.mark.parametrize("frame_idx", [1.0, "2", None, True])
def test_frame_index_of_the_wrong_type(predictor, session, frame_idx):
    with pytest.raises(TypeError, match="frame_idx"):
        predictor.add_prompt(session, frame_idx, 1, **CLICK)


@pytest.mark.parametrize("obj_id", [1.5, "1", None])
def test_object_id_of_the_wrong_type(predictor, session, obj_id):
    with pytest.raises(TypeError, match="obj_id"):
        predictor.add_prompt(session, 0, obj_id, **CLICK)


def test_numpy_integers_are_accepted(predictor, session):
    _, ids, masks = predictor.add_prompt(session, np.int64(2), np.int32(5), **CLICK)
    assert ids == [5] and masks.shape == (1, 1, H, W)


def test_propagate_start_out_of_range(predictor, session):
    predictor.add_prompt(session, 0, 1, **CLICK)
    with pytest.raises(IndexError, match="999"):
        next(predictor.propagate(session, start_frame_idx=999, progress=False))


def test_unknown_object_id(predictor, session):
    predictor.add_prompt(session, 0, 1, **CLICK)
    with pytest.raises(KeyError, match="7"):
        predictor.remove_object(session, 7, strict=True)
    with pytest.raises(KeyError, match="7"):
        predictor.clear_prompts(session, 0, 7)
    assert session.obj_ids == [1]


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"points": [[10.0, 10.0]]}, ValueError, "labels"),  # points without labels
        ({"labels": [1]}, ValueError, "points"),  # labels without points
        ({"points": [[10.0, 10.0], [20.0, 20.0]], "labels": [1]}, ValueError, "labels"),
        ({"points": [[10.0, 10.0]], "labels": [1, 0]}, ValueError, "labels"),
        ({"points": [[float("nan"), 10.0]], "labels": [1]}, ValueError, "NaN"),
        ({"points": [[10.0, float("inf")]], "labels": [1]}, ValueError, "infinite"),
        ({"points": [[10.0, 10.0, 3.0]], "labels": [1]}, ValueError, "points"),
        ({"box": [100.0, 10.0, 50.0, 80.0]}, ValueError, "x1 >= x0"),  # x1 < x0
        ({"box": [10.0, 80.0, 50.0, 20.0]}, ValueError, "y1 >= y0"),
        ({"box": [10.0, 20.0, 50.0]}, ValueError, "box"),
        ({"box": [10.0, float("nan"), 50.0, 60.0]}, ValueError, "NaN"),
        ({}, ValueError, "points"),  # nothing at all
    ],
)
def test_bad_prompts(predictor, session, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        predictor.add_prompt(session, 0, 1, **kwargs)


@pytest.mark.parametrize(
    "mask, match",
    [
        (np.ones((1, H, W), dtype=bool), "2-D"),
        (np.ones((W,), dtype=bool), "2-D"),
        (np.full((H, W), 255, dtype=np.uint8), "0 and 1"),
        (np.full((H, W), 0.5, dtype=np.float32), "0 and 1"),
    ],
)
def test_bad_masks(predictor, session, mask, match):
    with pytest.raises(ValueError, match=match):
        predictor.add_mask(session, 0, 1, mask)


def test_propagate_before_any_prompt(predictor, session):
    with pytest.raises(RuntimeError, match="prompt"):
        next(predictor.propagate(session, progress=False))


def test_empty_folder(predictor, tmp_path):
    (tmp_path / "notes.txt").write_text("not a frame")
    with pytest.raises(FrameSourceError, match="no frames"):
        predictor.open_session(str(tmp_path))


def test_missing_path(predictor, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        predictor.open_session(str(tmp_path / "nowhere.mp4"))


def test_frames_of_mixed_sizes(predictor, clip, tmp_path):
    for i in range(3):
        Image.fromarray(clip[i]).save(tmp_path / f"{i:05d}.png")
    Image.fromarray(clip[3][:100, :200]).save(tmp_path / "00003.png")
    with pytest.raises(FrameSourceError, match="00003.png"):
        predictor.open_session(str(tmp_path))


def test_corrupt_frame_in_folder(predictor, clip, tmp_path):
    for i in range(3):
        Image.fromarray(clip[i]).save(tmp_path / f"{i:05d}.jpg")
    (tmp_path / "00003.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(FrameDecodeError, match="00003.jpg"):
        predictor.open_session(str(tmp_path))


@pytest.mark.parametrize("faststart", [False, True], ids=["index-at-end", "index-at-start"])
def test_truncated_video_file(predictor, clip, tmp_path, faststart):
    whole = write_mp4(tmp_path / "whole.mp4", clip, fps=10, faststart=faststart).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(FrameDecodeError, match="truncated"):
        predictor.open_session(str(cut))


def test_unreadable_video_file(predictor, tmp_path):
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(FrameDecodeError, match="garbage.mp4"):
        predictor.open_session(str(bad))


# --------------------------------------------------------------------------- streaming


@pytest.fixture(scope="module")
def offline_click_24(predictor, all_frames):
    """Offline tracks of the frame-0 click over the whole 24-frame clip."""
    return track(predictor, all_frames, {1: CLICK})


def assert_close_tracks(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    assert got.shape == want.shape, what
    assert max_diff(got, want) <= 1e-3, f"{what}: max |diff| {max_diff(got, want):.2e}"
    assert agreement(got, want) >= 0.999, f"{what}: agreement {agreement(got, want):.5f}"


def test_streaming_matches_offline(model, all_frames, offline_click_24):
    tracker = StreamingTracker(model)
    assert tracker.frame_idx == -1
    with pytest.raises(RuntimeError, match="frame"):
        tracker.add_prompt(1, **CLICK)
    results = {}
    for i, frame in enumerate(all_frames):
        idx, ids, logits = tracker.add_frame(frame)
        assert idx == i == tracker.frame_idx
        if i == 0:
            assert ids == [] and logits.shape == (0, 1, H, W)
            idx, ids, logits = tracker.add_prompt(1, **CLICK)
        results[idx] = (ids, logits.clone())
    assert sorted(results) == list(range(24))
    for f in range(24):
        assert results[f][0] == [1]
        assert_close_tracks(results[f][1], offline_click_24[f][1], f"frame {f}")


def test_streaming_object_added_on_a_later_frame(model, predictor, all_frames, offline_click_24):
    tracker = StreamingTracker(model)
    results = {}
    for i, frame in enumerate(all_frames):
        result = tracker.add_frame(frame)
        if i == 0:
            result = tracker.add_prompt(1, **CLICK)
        if i == 5:
            result = tracker.add_prompt(2, **BOX)
        results[i] = (result[1], result[2].clone())
    assert tracker.obj_ids == [1, 2]
    later = track(predictor, all_frames, {2: BOX}, frame_idx=5)
    for f in range(24):
        ids, logits = results[f]
        assert ids == ([1] if f < 5 else [1, 2])
        assert logits.shape == (len(ids), 1, H, W)
        assert_close_tracks(logits[0], offline_click_24[f][1][0], f"object 1 frame {f}")
        if f >= 5:
            assert_close_tracks(logits[1], later[f][1][0], f"object 2 frame {f}")
    # removing an object
    assert tracker.remove_object(1) == [2]
    _, ids, logits = tracker.add_frame(all_frames[0])
    assert ids == [2] and logits.shape == (1, 1, H, W)
    with pytest.raises(KeyError, match="1"):
        tracker.remove_object(1)


def test_streaming_memory_stays_bounded(model, all_frames):
    from samstream.video.memory import MemoryPolicy

    def repeat_clip(count):  # a live source: the 24 frames over and over
        for i in range(count):
            yield all_frames[i % len(all_frames)]

    tracker = StreamingTracker(model)
    stored = []
    for i, frame in enumerate(repeat_clip(40)):
        _, ids, logits = tracker.add_frame(frame)
        if i == 0:
            tracker.add_prompt(1, **CLICK)
        if i == 3:
            tracker.add_prompt(2, **BOX)
        if i > 3:
            assert ids == [1, 2] and logits.shape == (2, 1, H, W)
        stored.append(tracker.stored_frames())
        assert len(tracker.session.features) <= tracker._engine.options.feature_cache_size
    horizon = MemoryPolicy.from_config(model.config).horizon()
    # per object: its conditioning frame plus at most horizon + 1 tracked frames
    assert max(stored) <= 2 * (horizon + 2), stored
    assert stored[-1] == stored[-10], f"storage keeps growing: {stored}"
    assert tracker.frame_idx == 39


def test_streaming_correction_click(model, predictor, all_frames):
    t = 10
    negative = {"points": [[224.0, 40.8]], "labels": [0]}
    tracker = StreamingTracker(model)
    results = {}
    for i, frame in enumerate(all_frames):
        result = tracker.add_frame(frame)
        if i == 0:
            result = tracker.add_prompt(1, **CLICK)
        if i == t:
            tracked = result[2].clone()
            result = tracker.add_prompt(1, **negative)
            corrected = result[2].clone()
        results[i] = result[2].clone()
    assert max_diff(tracked, corrected) > 1e-3, "the correction changed nothing"
    # offline: track to frame t, correct there, go on from t + 1
    session = predictor.open_session(all_frames)
    predictor.add_prompt(session, 0, 1, **CLICK)
    offline = {f: m.clone() for f, _, m in predictor.propagate(session, max_frames=t, progress=False)}
    assert_close_tracks(tracked, offline[t], "tracked frame before the correction")
    _, _, offline_corrected = predictor.add_prompt(session, t, 1, **negative)
    assert_close_tracks(corrected, offline_corrected, "corrected frame")
    offline.update({f: m.clone() for f, _, m in predictor.propagate(session, start_frame_idx=t + 1, progress=False)})
    for f in range(24):
        if f != t:
            assert_close_tracks(results[f], offline[f], f"frame {f}")
