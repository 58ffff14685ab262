"""The distractor strategy's rules (DAM4SAM): DRM admission and the recent-appearance frames."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from samstream.video.memory import Candidates, DistractorConfig, DistractorMemory, MemoryPolicy
from samstream.video.memory.distractor import alternatives_disagree, area_ratio, passes_drm_gate, recent_appearance_frames
from samstream.video.memory.selection import MemoryRef, PointerRef
from samstream.video.state import MemoryFrames

CONFIG = DistractorConfig()


def test_area_ratio_uses_the_median():
    assert area_ratio(100, [80, 100, 120, 1000, 100]) == pytest.approx(1.0)
    assert area_ratio(150, [100, 100, 150]) == pytest.approx(1.5)
    assert area_ratio(0, [100]) is None


GATE = dict(frame_idx=20, chosen_iou=0.9, present=True, ratio=1.0, last_added=10, config=CONFIG)


@pytest.mark.parametrize(
    "change, ok",
    [
        ({}, True),
        ({"chosen_iou": 0.8}, False),  # must be > 0.8
        ({"present": False}, False),
        ({"ratio": None}, False),
        ({"ratio": 0.79}, False),
        ({"ratio": 0.8}, True),
        ({"ratio": 1.2}, True),
        ({"ratio": 1.21}, False),
        ({"last_added": 15}, False),  # 5 frames since the last addition: not more than 5
        ({"last_added": 14}, True),
        ({"last_added": None}, True),
    ],
)
def test_drm_gate(change, ok):
    assert passes_drm_gate(**{**GATE, **change}) is ok


def _square(y0, x0, size, shape=(64, 64)):
    m = np.zeros(shape, dtype=bool)
    m[y0 : y0 + size, x0 : x0 + size] = True
    return m


def test_alternatives_disagree_when_they_reach_something_else():
    chosen = _square(10, 10, 20)  # box 20x20
    lookalike = chosen | _square(10, 44, 16)  # plus an object to the right: joined box 50x20, IoU 0.4
    assert alternatives_disagree(chosen, [lookalike], 0.7)
    sliver = chosen | _square(10, 30, 2)  # 2 more columns: joined box 22x20, IoU 20/22 > 0.7
    assert not alternatives_disagree(chosen, [sliver], 0.7)
    assert not alternatives_disagree(chosen, [chosen.copy(), _square(12, 12, 5)], 0.7)  # nothing outside
    # only the largest part outside the chosen mask counts: a big nearby part, a tiny far speck
    two_parts = chosen | _square(10, 30, 3) | _square(60, 60, 1)
    assert not alternatives_disagree(chosen, [two_parts], 0.7)
    assert alternatives_disagree(chosen, [two_parts], 0.9)  # 20x23 box: IoU 0.87


def _frames(visible: dict[int, bool]) -> MemoryFrames:
    def out(v):
        box = torch.tensor([[0.1, 0.1, 0.3, 0.3]]) if v else torch.zeros(1, 4)
        return SimpleNamespace(in_memory=True, note=None, box=box)

    return MemoryFrames({t: out(v) for t, v in visible.items()})


def test_recent_appearance_frames_by_hand():
    vis = {t: True for t in range(1, 30)}
    for t in (29, 28, 20, 19, 14):
        vis[t] = False
    frames = _frames(vis)
    seen = lambda t: not frames.get(t).box.eq(0).all()  # noqa: E731
    # nearest visible before 30 is 27; below it multiples of 5: 25, then 20 is hidden -> 15, 10, 5
    got = recent_appearance_frames(30, frames, seen, count=6, stride=5, reverse=False)
    assert got == [27, 25, 15, 10, 5]
    assert recent_appearance_frames(30, frames, seen, count=3, stride=5, reverse=False) == [27, 25, 15]
    assert recent_appearance_frames(30, frames, seen, count=3, stride=5, reverse=False, exclude={27, 25}) == [26, 15, 10]
    # reverse: from frame 12 towards higher frames: 13 is visible, then multiples after it: 15, (20 hidden) 25
    assert recent_appearance_frames(12, frames, seen, count=3, stride=5, reverse=True) == [13, 15, 25]


def _cand(masks, ious, logit=5.0):
    m = torch.stack([torch.as_tensor(x) for x in masks]).float() * 2 - 1  # logits: 1 inside, -1 outside
    return Candidates(low_res_masks=m, ious=torch.tensor(ious), obj_ptrs=torch.zeros(len(masks), 2), object_score_logit=torch.tensor(logit))


def test_decide_admits_frames_into_the_drm():
    strategy = DistractorMemory(MemoryPolicy(), CONFIG)
    state = strategy.new_object_state(1)
    obj = _square(10, 10, 20)
    other = obj | _square(10, 44, 16)
    additions = []
    for t in range(1, 30):
        ious = [0.95, 0.5, 0.4] if t != 14 else [0.7, 0.5, 0.4]  # frame 14: not confident
        keep = strategy.decide(t, [_cand([obj, other, obj], ious)], state)[0]
        assert keep.candidate == 0 and keep.note.iou == pytest.approx(ious[0])
        if state.last_added == t:
            additions.append(t)
    # frame 1 has no area history; then a frame once more than 5 frames have passed, 14 is
    # skipped (so 15); the DRM holds the last 3
    assert additions == [2, 8, 15, 21, 27]
    assert state.drm == [15, 21, 27]
    # an object whose area jumps is not admitted
    state2 = strategy.new_object_state(2)
    strategy.decide(1, [_cand([obj, other, obj], [0.95, 0.5, 0.4])], state2)
    strategy.decide(2, [_cand([_square(0, 0, 40), other, obj], [0.95, 0.5, 0.4])], state2)
    assert state2.drm == []


def test_selection_attends_to_drm_frames_like_conditioning_frames():
    policy = MemoryPolicy(num_maskmem=7, max_obj_ptrs=4)
    strategy = DistractorMemory(policy, CONFIG)
    state = strategy.new_object_state(1)
    state.drm[:] = [3, 8]
    frames = _frames({t: t != 11 for t in range(1, 12)})
    sel = strategy.select_memories(12, cond_frames=[0], memory_frames=frames, reverse=False, num_frames=50, state=state)
    # cond 0 and DRM 3, 8 at slot 0; RAM: 6 - 2 = 4 frames: 10 (11 hidden), then multiples of 5: 5, (0 is no tracked frame)
    assert sel.memories == (MemoryRef(0, 0), MemoryRef(3, 0), MemoryRef(8, 0), MemoryRef(5, 5), MemoryRef(10, 6))
    # pointers: cond, DRM as conditioning, then the window (3 back) without the hidden frame 11
    assert sel.pointers == (PointerRef(0, 12, True), PointerRef(3, 9, True), PointerRef(8, 4, True), PointerRef(10, 2, False), PointerRef(9, 3, False))
    assert strategy.retained_frames(11, memory_frames=frames, reverse=False, state=state) == {3, 8, 10, 5}
