"""The motion strategy's rules (SAMURAI) and its quality-filtered bank, without a model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from samstream.video.memory import kalman
from samstream.video.memory.boxes import box_iou
from samstream.video.memory.filtering import Quality, nearest_eligible, retained_eligible, select_filtered_memories
from samstream.video.memory.motion import MotionConfig, MotionState, motion_memory_ok, motion_step
from samstream.video.memory.selection import MemoryPolicy, MemoryRef, PointerRef
from samstream.video.state import MemoryFrames

A = np.array([0.2, 0.2, 0.4, 0.6])  # the object's box
FAR = np.array([0.6, 0.5, 0.8, 0.9])  # a look-alike elsewhere
EMPTY = np.zeros(4)


def _stable_at(box, stable=15) -> MotionState:
    return MotionState(kalman.initiate(kalman.xyxy_to_xyah(box)), stable)


def test_box_iou_by_hand():
    np.testing.assert_allclose(box_iou([0, 0, 2, 2], [[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6], [0, 0, 0, 0]]), [1 / 7, 1, 0, 0])


def test_first_frame_starts_the_filter_on_the_best_candidate():
    step = motion_step(MotionState(), np.stack([FAR, A, A]), [0.4, 0.9, 0.2], MotionConfig())
    assert step.choice == 1 and step.motion_iou is None and step.state.stable == 1
    np.testing.assert_allclose(step.state.filter.mean[:4], kalman.xyxy_to_xyah(A))


def test_warm_up_updates_only_above_the_stable_iou():
    config = MotionConfig()
    state = _stable_at(A, stable=3)
    moved = A + 0.01
    good = motion_step(state, np.stack([moved, FAR]), [0.6, 0.5], config)
    assert good.choice == 0 and good.motion_iou is None and good.state.stable == 4
    want = kalman.update(kalman.predict(state.filter), kalman.xyxy_to_xyah(moved))
    np.testing.assert_allclose(good.state.filter.mean, want.mean)
    bad = motion_step(state, np.stack([moved, FAR]), [0.3, 0.1], config)  # 0.3 is not > 0.3
    assert bad.choice == 0 and bad.state.stable == 0
    # a reset filter starts again from the next best candidate, whatever its IoU
    again = motion_step(bad.state, np.stack([FAR, A]), [0.25, 0.1], config)
    assert again.state.stable == 1
    np.testing.assert_allclose(again.state.filter.mean[:4], kalman.xyxy_to_xyah(FAR))


def test_stable_filter_weighs_motion_against_predicted_iou():
    state = _stable_at(A)
    predicted_box = kalman.predict(state.filter).box()  # = A (no velocity yet)
    np.testing.assert_allclose(predicted_box, A)
    ious = [0.80, 0.85]
    # candidate 0 on the track: 0.15 * 1 + 0.85 * 0.80 = 0.83 > candidate 1 far away: 0.85 * 0.85 = 0.7225
    step = motion_step(state, np.stack([A, FAR]), ious, MotionConfig())
    assert step.choice == 0 and step.motion_iou == pytest.approx(1.0) and step.state.stable == 16
    # without the motion term the look-alike wins
    assert motion_step(state, np.stack([A, FAR]), ious, MotionConfig(motion_weight=0.0)).choice == 1
    # w = 0.5: 0.5 + 0.5 * 0.2 = 0.6 for the track vs 0.5 * 0.95 = 0.475
    assert motion_step(state, np.stack([A, FAR]), [0.2, 0.95], MotionConfig(motion_weight=0.5)).choice == 0


def test_stable_filter_resets_below_the_stable_iou():
    step = motion_step(_stable_at(A), np.stack([A, FAR]), [0.29, 0.1], MotionConfig())
    assert step.choice == 0 and step.state.stable == 0


def test_absent_object_lets_the_filter_coast():
    start = _stable_at(A).filter
    moving = kalman.KalmanState(np.concatenate([kalman.xyxy_to_xyah(A), [0.01, 0, 0, 0]]), start.covariance)
    step = motion_step(MotionState(moving, 15), np.stack([EMPTY, EMPTY, EMPTY]), [0.9, 0.5, 0.1], MotionConfig())
    assert step.state.stable == 15 and step.motion_iou == 0.0
    np.testing.assert_allclose(step.state.filter.mean, kalman.predict(moving).mean)
    assert motion_step(MotionState(), np.stack([EMPTY]), [0.9], MotionConfig()).state.filter is None


@pytest.mark.parametrize(
    "quality, ok",
    [
        (None, True),  # a prompted output
        (Quality(0.9, 1.0, None), True),  # filter not stable: no motion test
        (Quality(0.9, 1.0, 0.4), True),
        (Quality(0.5, 1.0, 0.4), False),  # IoU must be > 0.5
        (Quality(0.9, 0.0, 0.4), False),  # object score must be > 0
        (Quality(0.9, 1.0, 0.0), False),  # motion IoU must be > 0
    ],
)
def test_memory_admission_rule(quality, ok):
    assert motion_memory_ok(quality, MotionConfig()) is ok


# ----------------------------------------------------------------------- the filtered bank


def _frames(notes: dict[int, object]) -> MemoryFrames:
    return MemoryFrames({t: SimpleNamespace(in_memory=True, note=n, box=torch.tensor([[0.1, 0.1, 0.2, 0.2]])) for t, n in notes.items()})


GOOD, BAD = Quality(0.9, 1.0, 0.5), Quality(0.2, 1.0, 0.5)


def test_nearest_eligible_keeps_the_adjacent_frame_first():
    got = nearest_eligible(10, iter([9, 8, 7, 6, 5, 4]), lambda t: t % 2 == 0, count=3, reverse=False, has_memory=lambda t: t < 10)
    assert got == [9, 8, 6]
    got = nearest_eligible(10, iter([11, 12, 13, 14]), lambda t: t != 12, count=3, reverse=True, has_memory=lambda t: t > 10)
    assert got == [11, 13, 14]


def test_filtered_selection_skips_bad_frames():
    policy = MemoryPolicy(num_maskmem=4, max_obj_ptrs=4)
    notes = {t: (GOOD if t in (2, 3, 7) else BAD) for t in range(1, 10)}
    frames = _frames(notes)
    sel = select_filtered_memories(
        10, cond_frames=[0], memory_frames=frames, eligible=lambda t: motion_memory_ok(frames.get(t).note, MotionConfig()),
        reverse=False, num_frames=20, policy=policy, eligible_pointers=False,
    )
    # conditioning frame 0, then the adjacent frame 9 (bad but always), then good 7, 3 (slots by rank)
    assert sel.memories == (MemoryRef(0, 0), MemoryRef(3, 1), MemoryRef(7, 2), MemoryRef(9, 3))
    # pointers: the reference's window (every frame in memory within 3 frames back)
    assert [p.frame_idx for p in sel.pointers] == [0, 9, 8, 7]
    sel2 = select_filtered_memories(
        10, cond_frames=[0], memory_frames=frames, eligible=lambda t: motion_memory_ok(frames.get(t).note, MotionConfig()),
        reverse=False, num_frames=20, policy=policy, eligible_pointers=True,
    )
    assert sel2.pointers == (PointerRef(0, 10, True), PointerRef(9, 1, False), PointerRef(7, 2, False), PointerRef(3, 3, False))
    kept = retained_eligible(9, memory_frames=frames, eligible=lambda t: frames.get(t).note is GOOD, reverse=False, count=2)
    assert kept == {7, 3}


def test_filtered_selection_equals_the_reference_when_every_frame_is_good():
    from samstream.video.memory.selection import select_memories

    policy = MemoryPolicy()
    frames = _frames({t: GOOD for t in range(1, 30)})
    for t in (3, 12, 30):
        got = select_filtered_memories(
            t, cond_frames=[0], memory_frames=frames, eligible=lambda _: True, reverse=False, num_frames=None,
            policy=policy, eligible_pointers=False,
        )
        want = select_memories(t, cond_frames=[0], non_cond_frames=frames, reverse=False, num_frames=None, policy=policy)
        assert got == want


def test_memory_frames_walk_back_in_time():
    """Dense (a whole video) and sparse (a stream's few old frames) banks walk alike."""
    rng = np.random.default_rng(0)
    for trial in range(20):
        dense = trial % 2 == 0
        keys = sorted(set(rng.integers(0, 60 if dense else 2000, size=40).tolist()))
        outs = {t: SimpleNamespace(in_memory=bool(rng.uniform() < 0.8), note=None) for t in keys}
        frames = MemoryFrames(outs)
        for reverse in (False, True):
            for step in (1, 5):
                at = int(rng.integers(0, 2000))
                want = [t for t in sorted(keys, key=lambda t: abs(t - at)) if outs[t].in_memory
                        and (t > at if reverse else t < at) and (t - at) % step == 0]
                assert list(frames.before(at, reverse, step)) == want


def test_a_jump_in_tracking_restarts_the_filter():
    from samstream.video.memory import Candidates, MemoryPolicy, MotionMemory

    strategy = MotionMemory(MemoryPolicy())
    state = strategy.new_object_state(1)
    masks = torch.full((3, 16, 16), -1.0)
    masks[:, 4:12, 2:6] = 1.0
    cand = Candidates(masks, torch.tensor([0.9, 0.5, 0.4]), torch.zeros(3, 2), torch.tensor(3.0))
    for t in (1, 2, 3):
        strategy.decide(t, [cand], state)
    assert state.stable == 3
    strategy.decide(4, [cand], state)
    assert state.stable == 4
    strategy.decide(2, [cand], state)  # tracking again from frame 2 (another pass): a new filter
    assert state.stable == 1 and state.last_frame == 2
    strategy.on_prompt(5, state)
    assert state.filter is None and state.stable == 0
