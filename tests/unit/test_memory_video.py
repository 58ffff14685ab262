"""Every memory strategy on a real (tiny, random) model: several objects, corrections at any
time, the streaming tracker's flat memory, and the fixed-lag output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny import moving_clip, tiny_config

from samstream.build import build_model
from samstream.video.memory import (
    DistractorConfig,
    DistractorMemory,
    MemoryPolicy,
    PerObjectMemory,
    Quality,
)
from samstream.video.memory.distractor import DistractorState
from samstream.video.memory.motion import MotionConfig, MotionState, motion_memory_ok
from samstream.video.memory.multipath import MultipathConfig, path_memory_ok
from samstream.video.predictor import VideoPredictor, VideoPredictorOptions
from samstream.video.streaming import StreamingTracker

T = 12
STRATEGIES = ["motion", "multipath", "distractor", "motion+distractor", "per-object"]
CLICKS = {1: [[25.0, 30.0]], 2: [[70.0, 45.0]]}


def _spec(name):
    return {1: "motion", 2: "multipath"} if name == "per-object" else name


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    net = build_model(tiny_config(), for_video=True)
    head = net.sam_mask_decoder.pred_obj_score_head
    with torch.no_grad():  # random weights judge objects absent half the time: make them present
        head.layers[-1].bias.add_(20.0)
    return net


@pytest.fixture(scope="module")
def video() -> np.ndarray:
    return moving_clip(num_frames=64, height=72, width=96)


def _upsampled(out, shape):
    return F.interpolate(out.pred_masks.float(), size=shape, mode="bilinear", align_corners=False)


def _eligible(predictor, obj_id):
    memory = predictor.memory
    if isinstance(memory, PerObjectMemory):
        memory = memory.strategy_for(obj_id)
    if memory.name == "multipath":
        return lambda note: path_memory_ok(note, MultipathConfig())
    if memory.name in ("motion", "motion+distractor"):
        return lambda note: motion_memory_ok(note, MotionConfig())
    return None


@pytest.mark.parametrize("name", STRATEGIES)
def test_several_objects_batched(model, video, name, monkeypatch):
    batches: dict[int, list] = {}
    propose, track_frame = VideoPredictor._propose, VideoPredictor.track_frame
    current = []

    def spy_track(self, session, frame_idx, reverse):
        current[:] = [frame_idx]
        return track_frame(self, session, frame_idx, reverse)

    def spy_propose(self, session, feats, items, selection):
        batches.setdefault(current[0], []).append((len(items), selection))
        return propose(self, session, feats, items, selection)

    monkeypatch.setattr(VideoPredictor, "track_frame", spy_track)
    monkeypatch.setattr(VideoPredictor, "_propose", spy_propose)
    predictor = VideoPredictor(model, memory=_spec(name))
    session = predictor.open_session(video[:T])
    for obj_id, pts in CLICKS.items():
        predictor.add_prompt(session, 0, obj_id, points=pts, labels=[1])
    results = list(predictor.propagate(session, progress=False))
    assert [r.frame_idx for r in results] == list(range(T))
    assert [size for size, _ in batches[1]] == [2]  # frame 1: both objects attend to frame 0 only: one batch
    pairs = sum(len(tr.hypotheses) for tr in session.objects.values())
    for t in range(2, T):  # every (object, hypothesis) pair runs once; one batch per distinct selection
        assert sum(size for size, _ in batches[t]) == pairs
        assert len({sel for _, sel in batches[t]}) == len(batches[t])
    for i, (obj_id, track) in enumerate(session.objects.items()):
        assert len(track.hypotheses) == (3 if _spec(name) == "multipath" or (name == "per-object" and obj_id == 2) else 1)
        for t in range(1, T):  # the output is the first (best) hypothesis'
            torch.testing.assert_close(results[t].masks[i : i + 1], _upsampled(track.tracked[t], video.shape[1:3]))
            assert isinstance(track.tracked[t].note, Quality)
        scores = [h.score for h in track.hypotheses]
        assert scores == sorted(scores, reverse=True)
        # beyond the adjacent frame, a filtered bank attends only to frames that pass its rule
        ok = _eligible(predictor, obj_id)
        for hyp in track.hypotheses:
            sel = predictor._selection(session, track, hyp, T, reverse=False)
            for ref in sel.memories:
                if ok is not None and ref.slot not in (0, 6):
                    assert ok(hyp.tracked[ref.frame_idx].note), (obj_id, ref)
    states = [tr.memory_state for tr in session.objects.values()]
    if name == "per-object":
        assert isinstance(states[0].state, MotionState) and states[1].state is None
    elif "distractor" in name:
        assert all(isinstance(s, DistractorState) and s.tracked == T - 1 for s in states)
    elif name == "motion":
        assert all(isinstance(s, MotionState) and s.stable >= 1 for s in states)


def test_distractor_frames_are_attended_like_prompts(model, video):
    permissive = DistractorConfig(drm_iou=-1.0, area_ratio=(0.0, 1e9), alternative_box_iou=1.0, drm_gap=0)
    predictor = VideoPredictor(model, memory=DistractorMemory(MemoryPolicy.from_config(model.config), permissive))
    session = predictor.open_session(video[:T])
    predictor.add_prompt(session, 0, 1, points=CLICKS[1], labels=[1])
    list(predictor.propagate(session, progress=False))
    track = session.objects[1]
    drm = track.memory_state.drm
    assert 1 <= len(drm) <= 3 and all(t in track.tracked for t in drm)
    sel = predictor._selection(session, track, track.hypotheses[0], T, reverse=False)
    assert {r.frame_idx for r in sel.memories if r.slot == 0} == {0, *drm}
    assert {p.frame_idx for p in sel.pointers if p.from_cond} == {0, *drm}
    ram = [r for r in sel.memories if r.slot > 0]
    assert len(sel.memories) <= 7 and 1 <= len(ram) <= 6 - len(drm)  # no bigger than the reference's bank
    assert all(r.frame_idx not in drm and track.tracked[r.frame_idx].box.abs().sum() > 0 for r in ram)
    with torch.inference_mode():
        heads = predictor._propose(session, predictor._features(session, T - 1), [(track, track.hypotheses[0])], sel)
    assert torch.isfinite(heads.ious).all()


@pytest.mark.parametrize("name", STRATEGIES)
def test_corrections_mid_video(model, video, name):
    options = VideoPredictorOptions(add_all_frames_to_correct_as_cond=True)  # interactive use
    predictor = VideoPredictor(model, options, memory=_spec(name))
    session = predictor.open_session(video[:T])
    for obj_id, pts in CLICKS.items():
        predictor.add_prompt(session, 0, obj_id, points=pts, labels=[1])
    list(predictor.propagate(session, progress=False))
    fix = predictor.add_prompt(session, 6, 1, points=[[40.0, 40.0]], labels=[1]).masks
    again = {r.frame_idx: r.masks for r in predictor.propagate(session, start_frame_idx=6, progress=False)}
    assert sorted(again) == list(range(6, T))
    torch.testing.assert_close(again[6], fix)  # the corrected frame is the correction's masks
    track = session.objects[1]
    assert 6 in track.cond and all(6 not in h.tracked for h in track.hypotheses)  # shared by every hypothesis
    for hyp in track.hypotheses:  # later frames attend to the correction
        assert 6 in {r.frame_idx for r in predictor._selection(session, track, hyp, 7, reverse=False).memories}
    state = track.memory_state
    motion = getattr(state, "motion", state)
    if name == "per-object":
        motion = state.state
    if isinstance(motion, MotionState):  # the prompt restarted the filter: at most 5 updates since
        assert 1 <= motion.stable <= T - 7


#: the most frames a strategy keeps beyond its horizon, per hypothesis: the frames its bank may
#: still select (multipath: the pointer window's 15; distractor: 6 RAM + 3 DRM frames)
RETAINED = {"default": 0, "motion": 6, "multipath": 15, "distractor": 9, "motion+distractor": 9}


def _per_hypothesis_bound(memory, obj_id: int, lag: int = 0) -> int:
    """Frames one hypothesis may hold in a stream: the horizon (or the lag), the current frame
    and what the strategy retains beyond them."""
    if isinstance(memory, PerObjectMemory):
        memory = memory.strategy_for(obj_id)
    return max(memory.horizon(), lag) + 1 + RETAINED[memory.name]


@pytest.mark.parametrize("name", STRATEGIES)
def test_streaming_memory_is_flat_with_corrections(model, video, name):
    tracker = StreamingTracker(model, memory=_spec(name))
    counts = []
    for i in range(len(video)):
        tracker.add_frame(video[i])
        if i == 0:
            tracker.add_prompt(1, points=CLICKS[1], labels=[1])
        if i == 5:
            tracker.add_prompt(2, points=CLICKS[2], labels=[1])  # a new object mid-stream
        if i == 30:
            result = tracker.add_prompt(1, points=[[40.0, 40.0]], labels=[1])  # a correction
            assert result.frame_idx == 30 and result.masks.shape[0] == 2
        counts.append(tracker.stored_frames())
    # bounded per hypothesis, far below the 64 frames of the stream
    memory = tracker._engine.memory
    for obj_id, track in tracker.session.objects.items():
        assert len(track.cond) == 1
        for hyp in track.hypotheses:
            assert len(hyp.tracked) <= _per_hypothesis_bound(memory, obj_id) < len(video) - 10
    assert counts[-1] <= max(counts[:45])  # it stopped growing


def test_fixed_lag_follows_the_best_pathway(model, video):
    lag = 3
    predictor = VideoPredictor(model, VideoPredictorOptions(output_lag=lag), memory="multipath")
    session = predictor.open_session(video[:T])
    for obj_id, pts in CLICKS.items():
        predictor.add_prompt(session, 0, obj_id, points=pts, labels=[1])
    seen = []
    for result in predictor.propagate(session, progress=False):
        t = result.frame_idx
        tracked_up_to = max(session.objects[1].directions)
        assert tracked_up_to == min(t + lag, T - 1)  # frame t comes once t + lag has been tracked
        for i, track in enumerate(session.objects.values()):
            out = track.cond.get(t) or track.tracked[t]  # the best pathway as it is now
            torch.testing.assert_close(result.masks[i : i + 1], _upsampled(out, video.shape[1:3]))
        seen.append(t)
    assert seen == list(range(T))


def test_fixed_lag_changes_nothing_for_one_hypothesis(model, video):
    def run(lag):
        predictor = VideoPredictor(model, VideoPredictorOptions(output_lag=lag), memory="motion")
        session = predictor.open_session(video[:T])
        for obj_id, pts in CLICKS.items():
            predictor.add_prompt(session, 0, obj_id, points=pts, labels=[1])
        return [r.masks for r in predictor.propagate(session, progress=False)]

    for a, b in zip(run(0), run(4)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_streaming_fixed_lag(model, video):
    lag = 4
    tracker = StreamingTracker(model, VideoPredictorOptions(output_lag=lag), memory="multipath")
    settled = []
    n = 30
    for i in range(n):
        live = tracker.add_frame(video[i])
        if i == 0:
            tracker.add_prompt(1, points=CLICKS[1], labels=[1])
        if tracker.settled is not None:
            assert tracker.settled.frame_idx == i - lag
            settled.append(tracker.settled)
        else:
            assert i < lag
        assert live.frame_idx == i
    rest = tracker.finish()
    assert [r.frame_idx for r in settled + rest] == list(range(n))
    track = tracker.session.objects[1]
    for r in rest:  # the end: along the final best pathway
        torch.testing.assert_close(r.masks, _upsampled(track.tracked[r.frame_idx], video.shape[1:3]))
    assert len(track.cond) == 1
    assert all(len(h.tracked) <= _per_hypothesis_bound(tracker._engine.memory, 1, lag) for h in track.hypotheses)
    with pytest.raises(ValueError, match="output_lag"):
        VideoPredictorOptions(output_lag=-1)


@pytest.mark.parametrize("name", ["motion", "distractor", "motion+distractor"])
def test_training_clip_forward_takes_single_hypothesis_strategies(model, video, name):
    """The clip forward keeps no notes: the strategies choose candidates, their banks see
    every frame as good (and no DRM); several pathways are refused there."""
    from samstream.prompts import to_model_coords
    from samstream.video.clip import ClipPrompts, run_clip

    predictor = VideoPredictor(model)
    session = predictor.open_session(video[:5])
    frames = torch.stack([session.frames.get(t) for t in range(5)])
    coords = to_model_coords(torch.tensor([CLICKS[1]]), video.shape[1:3], model.image_size, "pixels")
    prompts = {0: ClipPrompts(point_coords=coords, point_labels=torch.ones(1, 1, dtype=torch.int32))}
    with torch.no_grad():
        outputs = run_clip(model, frames, prompts, memory=name)
        assert len(outputs) == 5 and all(torch.isfinite(o.masks).all() for o in outputs)
        with pytest.raises(ValueError, match="one hypothesis per object"):
            run_clip(model, frames, prompts, memory="multipath")
