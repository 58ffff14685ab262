"""The memory-bank selection policy (samstream.video.memory.selection), without a model.

Expected values are worked out by hand from the reference's
``SAM2Base._prepare_memory_conditioned_features`` and ``select_closest_cond_frames``
(sam2 1.1.0):

* slot ``s`` (1..num_maskmem-1) holds the frame ``r = num_maskmem - s`` steps back; r = 1 is
  the adjacent frame, r >= 2 is ``((f - 2) // stride) * stride - (r - 2) * stride`` forward
  and ``ceil((f + 2) / stride) * stride + (r - 2) * stride`` in reverse;
* selected conditioning frames go to slot 0; unselected ones act as non-conditioning memories;
* object pointers: selected conditioning frames (only those in the past with
  ``only_obj_ptrs_in_the_past``), then frames 1..window-1 steps back, window =
  min(num_frames, max_obj_ptrs), stopping at the video's start / end.

Memories and pointers are compared as sorted lists: their order does not change attention.
"""

from __future__ import annotations

import pytest

from samstream.video.memory import MemoryPolicy, MemorySelection, select_conditioning_frames, select_memories


def _select(frame_idx, cond, non_cond, *, reverse=False, num_frames=100, **policy):
    return select_memories(
        frame_idx,
        cond_frames=list(cond),
        non_cond_frames=set(non_cond),
        reverse=reverse,
        num_frames=num_frames,
        policy=MemoryPolicy(**policy),
    )


def _mems(sel: MemorySelection) -> list[tuple[int, int]]:
    return sorted(sel.memories)


def _ptrs(sel: MemorySelection) -> list[tuple[int, int, bool]]:
    return sorted(sel.pointers)


# --------------------------------------------------------------------------- stride 1


def test_forward_stride1_previous_frames_and_slots():
    sel = _select(10, cond=[0], non_cond=range(1, 10), num_frames=24)
    # slot 6 = frame 9 (adjacent) ... slot 1 = frame 4 (6 back); cond frame 0 in slot 0
    assert _mems(sel) == [(0, 0), (4, 1), (5, 2), (6, 3), (7, 4), (8, 5), (9, 6)]
    # cond pointer at |10 - 0| = 10, then frames 9..1 at 1..9 back (frame 0 is a cond frame:
    # not again as a non-cond pointer); frames before 0 do not exist
    want = [(0, 10, True)] + [(10 - dt, dt, False) for dt in range(1, 10)]
    assert _ptrs(sel) == sorted(want)
    assert sel.pointer_window == 16


def test_reverse_stride1_next_frames_and_slots():
    sel = _select(10, cond=[20], non_cond=range(11, 20), reverse=True, num_frames=24)
    # in reverse, "previous" frames are the following ones: slot 6 = 11, slot 1 = 16
    assert _mems(sel) == [(11, 6), (12, 5), (13, 4), (14, 3), (15, 2), (16, 1), (20, 0)]
    # cond 20 is "in the past" when tracking backwards; unsigned offset 10
    want = [(20, 10, True)] + [(10 + dt, dt, False) for dt in range(1, 10)]
    assert _ptrs(sel) == sorted(want)


def test_missing_memories_are_skipped_not_padded():
    sel = _select(20, cond=[0], non_cond=[19, 15])
    assert _mems(sel) == [(0, 0), (15, 2), (19, 6)]
    assert _ptrs(sel) == sorted([(0, 20, True), (19, 1, False), (15, 5, False)])


def test_first_frames_after_the_prompt():
    # frame 1 right after a prompt on frame 0: only the cond frame (slot 0, no non-cond slot)
    sel = _select(1, cond=[0], non_cond=[], num_frames=24)
    assert _mems(sel) == [(0, 0)]
    assert _ptrs(sel) == [(0, 1, True)]
    # frame 2: frame 1 in slot 6, frame 0 only as the cond frame
    sel = _select(2, cond=[0], non_cond=[1], num_frames=24)
    assert _mems(sel) == [(0, 0), (1, 6)]
    assert _ptrs(sel) == [(0, 2, True), (1, 1, False)]


def test_other_num_maskmem():
    # num_maskmem=3: slots 1 (two back) and 2 (adjacent)
    sel = _select(10, cond=[0], non_cond=range(1, 10), num_maskmem=3)
    assert _mems(sel) == [(0, 0), (8, 1), (9, 2)]
    sel = _select(10, cond=[30], non_cond=range(11, 30), num_maskmem=3, reverse=True)
    assert _mems(sel) == [(11, 2), (12, 1), (30, 0)]


# --------------------------------------------------------------------------- temporal stride


@pytest.mark.parametrize(
    "frame_idx, want",
    [
        # ((f-2)//3)*3 = 18 -> 18, 15, 12, 9, 6 for slots 5..1; adjacent 19 in slot 6
        (20, [(6, 1), (9, 2), (12, 3), (15, 4), (18, 5), (19, 6)]),
        # ((21-2)//3)*3 = 18 as well; adjacent 20
        (21, [(6, 1), (9, 2), (12, 3), (15, 4), (18, 5), (20, 6)]),
        # ((23-2)//3)*3 = 21
        (23, [(9, 1), (12, 2), (15, 3), (18, 4), (21, 5), (22, 6)]),
    ],
)
def test_forward_temporal_stride(frame_idx, want):
    sel = _select(frame_idx, cond=[0], non_cond=range(1, frame_idx), memory_temporal_stride=3)
    assert _mems(sel) == sorted([(0, 0)] + want)
    # pointers ignore the stride: every frame 1..15 back
    non_cond_ptrs = sorted(p for p in sel.pointers if not p[2])
    assert non_cond_ptrs == sorted((frame_idx - dt, dt, False) for dt in range(1, 16) if frame_idx - dt > 0)


@pytest.mark.parametrize(
    "frame_idx, want",
    [
        # ceil((4+2)/3)*3 = 6 -> 6, 9, 12, 15, 18 for slots 5..1; adjacent 5
        (4, [(5, 6), (6, 5), (9, 4), (12, 3), (15, 2), (18, 1)]),
        # ceil(7/3)*3 = 9 -> 9, 12, 15, 18, 21; adjacent 6
        (5, [(6, 6), (9, 5), (12, 4), (15, 3), (18, 2), (21, 1)]),
    ],
)
def test_reverse_temporal_stride(frame_idx, want):
    sel = _select(
        frame_idx, cond=[40], non_cond=range(frame_idx + 1, 40), reverse=True, memory_temporal_stride=3, num_frames=41
    )
    assert _mems(sel) == sorted([(40, 0)] + want)


def test_stride_with_sparse_memories():
    # only every-3rd frames and the adjacent frame are looked up, other tracked frames are not
    sel = _select(20, cond=[0], non_cond=[19, 17, 16, 15], memory_temporal_stride=3)
    assert _mems(sel) == [(0, 0), (15, 4), (19, 6)]


# --------------------------------------------------------------------------- conditioning frames


def test_all_cond_frames_when_unlimited_or_within_limit():
    assert select_conditioning_frames(15, [0, 10, 20, 30], -1) == ([0, 10, 20, 30], [])
    selected, unselected = select_conditioning_frames(15, [0, 10, 20], 3)
    assert sorted(selected) == [0, 10, 20] and unselected == []


@pytest.mark.parametrize(
    "frame_idx, cond, limit, want_selected, want_unselected",
    [
        # closest before (10), closest at/after (20)
        (15, [0, 10, 20, 30], 2, [10, 20], [0, 30]),
        # then the temporally closest other one: 28 (13 away) beats 0 (15 away)
        (15, [0, 10, 20, 28], 3, [10, 20, 28], [0]),
        # a cond frame on the frame itself counts as "at or after"
        (20, [0, 10, 20, 30], 2, [10, 20], [0, 30]),
        # nothing before: the first after, then the closest others
        (5, [10, 20, 30], 2, [10, 20], [30]),
        # nothing after: the last before, then the closest others
        (40, [0, 10, 20, 30], 2, [20, 30], [0, 10]),
        # insertion order does not matter
        (15, [30, 0, 20, 10], 2, [10, 20], [30, 0]),
    ],
)
def test_cond_frame_selection(frame_idx, cond, limit, want_selected, want_unselected):
    selected, unselected = select_conditioning_frames(frame_idx, cond, limit)
    assert sorted(selected) == sorted(want_selected)
    assert unselected == want_unselected  # in the order of cond_frames
    assert len(selected) == limit


def test_cond_frame_limit_below_two_is_rejected():
    with pytest.raises(ValueError, match="2"):
        select_conditioning_frames(5, [0, 3, 9], 1)


def test_unselected_cond_frames_are_used_as_non_cond_memories():
    # cond frames 17, 18, 19, 25 with at most 2 in attention: 19 (closest before) and 25
    # (closest after) are selected; 17 and 18 become ordinary memories (slots 4 and 5).
    # The selected cond frame 19 is not repeated in the adjacent slot 6.
    sel = _select(20, cond=[17, 18, 19, 25], non_cond=range(10, 17), max_cond_frames_in_attn=2, num_frames=30)
    assert _mems(sel) == [(14, 1), (15, 2), (16, 3), (17, 4), (18, 5), (19, 0), (25, 0)]
    # pointers: 19 as a cond pointer (25 is in the future), 18 and 17 as non-cond ones, then
    # tracked frames 16..10; frames 9..5 (up to 15 back) have nothing
    want = [(19, 1, True), (18, 2, False), (17, 3, False)] + [(20 - dt, dt, False) for dt in range(4, 11)]
    assert _ptrs(sel) == sorted(want)


def test_unselected_cond_frames_out_of_reach_are_dropped():
    sel = _select(50, cond=[0, 10, 49], non_cond=range(40, 49), max_cond_frames_in_attn=2)
    # selected: 49 (before) and 10 (closest other); frame 0 is neither selected nor in reach
    assert sorted(t for t, s in sel.memories if s == 0) == [10, 49]
    assert all(t != 0 for t, _ in sel.memories)
    assert all(t != 0 for t, _, _ in sel.pointers)


# --------------------------------------------------------------------------- object pointers


def test_only_past_cond_pointers():
    # a future cond frame (15) gives memory (slot 0) but no pointer when only_obj_ptrs_in_the_past
    sel = _select(10, cond=[0, 15], non_cond=range(1, 10))
    assert sorted(t for t, s in sel.memories if s == 0) == [0, 15]
    assert [p for p in sel.pointers if p[2]] == [(0, 10, True)]
    sel = _select(10, cond=[0, 15], non_cond=range(1, 10), only_obj_ptrs_in_the_past=False)
    assert sorted(p for p in sel.pointers if p[2]) == [(0, 10, True), (15, 5, True)]
    # reverse: the "past" is after the frame
    sel = _select(10, cond=[5, 20], non_cond=range(11, 20), reverse=True)
    assert [p for p in sel.pointers if p[2]] == [(20, 10, True)]


def test_signed_vs_unsigned_offsets():
    common = dict(cond=[0, 15], non_cond=range(1, 10), only_obj_ptrs_in_the_past=False)
    unsigned = _select(10, **common, signed_ptr_offsets=False)
    signed = _select(10, **common, signed_ptr_offsets=True)
    assert sorted(p for p in unsigned.pointers if p[2]) == [(0, 10, True), (15, 5, True)]
    assert sorted(p for p in signed.pointers if p[2]) == [(0, 10, True), (15, -5, True)]
    # reverse: sign flipped, (frame - t) * -1
    common = dict(cond=[5, 20], non_cond=range(11, 20), only_obj_ptrs_in_the_past=False, reverse=True)
    unsigned = _select(10, **common, signed_ptr_offsets=False)
    signed = _select(10, **common, signed_ptr_offsets=True)
    assert sorted(p for p in unsigned.pointers if p[2]) == [(5, 5, True), (20, 10, True)]
    assert sorted(p for p in signed.pointers if p[2]) == [(5, -5, True), (20, 10, True)]
    # non-cond pointers always count steps back, positive, in both modes
    assert all(off > 0 for _, off, c in signed.pointers if not c)


def test_pointer_window_is_min_of_num_frames_and_max_obj_ptrs():
    # long video: 15 frames back (window 16), frame 34 is not reached
    sel = _select(50, cond=[0], non_cond=range(1, 50), num_frames=100)
    assert sorted(t for t, _, c in sel.pointers if not c) == list(range(35, 50))
    assert sel.pointer_window == 16
    # max_obj_ptrs=4: 3 back
    sel = _select(50, cond=[0], non_cond=range(1, 50), num_frames=100, max_obj_ptrs=4)
    assert sorted(p for p in sel.pointers if not p[2]) == [(47, 3, False), (48, 2, False), (49, 1, False)]
    assert sel.pointer_window == 4
    # short video of 5 frames: window 5, so at most 4 back
    sel = _select(4, cond=[0], non_cond=[1, 2, 3], num_frames=5)
    assert sel.pointer_window == 5
    assert _ptrs(sel) == sorted([(0, 4, True), (3, 1, False), (2, 2, False), (1, 3, False)])
    # 9-frame video, frame 8: window 9 reaches 8 back
    sel = _select(8, cond=[0], non_cond=range(1, 8), num_frames=9, max_obj_ptrs=16)
    assert sel.pointer_window == 9
    assert sorted(t for t, _, c in sel.pointers if not c) == list(range(1, 8))


def test_pointers_stop_at_video_start_and_end():
    # forward: nothing before frame 0 even if (bogus) memories claim otherwise
    sel = _select(3, cond=[2], non_cond=[1, 0, -1, -2], num_frames=24)
    assert sorted(t for t, _, c in sel.pointers if not c) == [0, 1]
    # reverse: nothing at or beyond num_frames
    sel = _select(8, cond=[11], non_cond=[9, 10, 12, 13], reverse=True, num_frames=12)
    assert _ptrs(sel) == sorted([(11, 3, True), (9, 1, False), (10, 2, False)])


def test_live_stream_uses_max_obj_ptrs():
    sel = _select(50, cond=[0], non_cond=range(1, 50), num_frames=None)
    assert sel.pointer_window == 16
    assert sorted(t for t, _, c in sel.pointers if not c) == list(range(35, 50))
    sel = _select(50, cond=[0], non_cond=range(1, 50), num_frames=None, max_obj_ptrs=20)
    assert sel.pointer_window == 20
    assert sorted(t for t, _, c in sel.pointers if not c) == list(range(31, 50))
    # reverse with no known end: no upper bound other than the window
    sel = _select(5, cond=[100], non_cond=range(6, 100), reverse=True, num_frames=None)
    assert sorted(t for t, _, c in sel.pointers if not c) == list(range(6, 21))


def test_no_pointers_when_disabled():
    sel = _select(10, cond=[0], non_cond=range(1, 10), use_obj_ptrs=False)
    assert sel.pointers == ()
    assert _mems(sel) == [(0, 0), (4, 1), (5, 2), (6, 3), (7, 4), (8, 5), (9, 6)]


def test_policy_from_config_of_the_tiny_model(tiny_model_files):
    from samstream.config import load_config

    config, _ = load_config(tiny_model_files.config)
    policy = MemoryPolicy.from_config(config)
    assert policy.num_maskmem == 7
    assert policy.signed_ptr_offsets is True
    assert policy.only_obj_ptrs_in_the_past is True
    assert policy.max_obj_ptrs == 16
    assert policy.memory_temporal_stride == 1
    assert policy.max_cond_frames_in_attn == -1


# --------------------------------------------------------------------------- horizon


@pytest.mark.parametrize(
    "policy",
    [
        {},
        {"memory_temporal_stride": 2},
        {"memory_temporal_stride": 3},
        {"max_obj_ptrs": 4},
        {"max_obj_ptrs": 40},
        {"use_obj_ptrs": False},
        {"num_maskmem": 3, "memory_temporal_stride": 5, "max_obj_ptrs": 2},
    ],
)
@pytest.mark.parametrize("reverse", [False, True])
def test_horizon_bounds_every_reach(policy, reverse):
    """Nothing farther than horizon() is ever selected, so a live stream may drop it."""
    pol = MemoryPolicy(**policy)
    horizon = pol.horizon()
    end = 120
    # the largest reach by hand: the oldest memory slot is at most (num_maskmem-2)*stride + 1
    # frames back (2 + rounding of at most stride-1, then (num_maskmem-3) strides); pointers
    # reach window-1 back
    stride = pol.memory_temporal_stride
    mem_reach = 1 if pol.num_maskmem <= 2 else (pol.num_maskmem - 2) * stride + 1
    ptr_reach = pol.max_obj_ptrs - 1 if pol.use_obj_ptrs else 0
    assert horizon >= max(mem_reach, ptr_reach)
    for f in range(1, end):
        frame = end - f if reverse else f
        cond = [end] if reverse else [0]
        done = range(frame + 1, end) if reverse else range(1, frame)
        full = select_memories(frame, cond_frames=cond, non_cond_frames=set(done), reverse=reverse, num_frames=None, policy=pol)
        within = {t for t in done if abs(t - frame) <= horizon}
        pruned = select_memories(frame, cond_frames=cond, non_cond_frames=within, reverse=reverse, num_frames=None, policy=pol)
        assert full == pruned, f"frame {frame}: a memory beyond horizon {horizon} was used"
        for t, slot in full.memories:
            if slot:
                assert abs(frame - t) <= horizon
        for t, _, from_cond in full.pointers:
            if not from_cond:
                assert abs(frame - t) <= horizon


def test_horizon_values():
    assert MemoryPolicy().horizon() >= 15  # 15 pointers back
    assert MemoryPolicy(use_obj_ptrs=False).horizon() >= 6  # 6 memories back
    assert MemoryPolicy(use_obj_ptrs=False, memory_temporal_stride=4).horizon() >= 5 * 4 + 1
