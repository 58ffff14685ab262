"""The memory-strategy seam: registry, hypotheses, memory admission, per-object state, outputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from tiny import tiny_config

from samstream.build import build_model
from samstream.video.memory import (
    DefaultMemory,
    Keep,
    MemoryPolicy,
    MemoryStrategy,
    DistractorConfig,
    MotionConfig,
    MotionDistractorMemory,
    MultipathMemory,
    check_strategy,
    make_strategy,
    parse_strategy,
    register_strategy,
    strategy_names,
    strategy_options,
)
from samstream.video.predictor import VideoPredictor, mask_boxes
from samstream.video.streaming import StreamingTracker

T = 5


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    net = build_model(tiny_config(), for_video=True)
    _objects_present(net)
    return net


@pytest.fixture(scope="module")
def video() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(T, 9, 12, 3)).astype(np.uint8)
    return np.kron(base, np.ones((1, 8, 8, 1), dtype=np.uint8))  # [T, 72, 96, 3]


def _objects_present(model) -> None:
    """Random weights judge objects absent about half the time; make them present so the
    masks (not the -1024 of absent objects) are what gets compared."""
    head = model.sam_mask_decoder.pred_obj_score_head
    last = head.layers[-1] if hasattr(head, "layers") else head
    with torch.no_grad():
        last.bias.add_(20.0)


def _run(predictor, video, clicks=((1, [[20.0, 30.0]]), (2, [[70.0, 50.0]]))):
    session = predictor.open_session(video)
    for obj_id, pts in clicks:
        predictor.add_prompt(session, 0, obj_id, points=pts, labels=[1])
    return session, {r.frame_idx: r.masks.clone() for r in predictor.propagate(session, progress=False)}


class TwoPaths(DefaultMemory):
    """Keeps the two best candidates of the first tracked frame as two hypotheses, then follows
    each with its best candidate; the output is the hypothesis with the higher summed IoU."""

    name = "two-paths-test"

    def decide(self, frame_idx, proposals, state):
        if len(proposals) == 1:
            order = torch.argsort(proposals[0].ious, descending=True).tolist()
            return [Keep(0, c, score=float(proposals[0].ious[c])) for c in order[:2]]
        keeps = []
        for h, cand in enumerate(proposals):
            c = int(cand.ious.argmax())
            keeps.append(Keep(h, c, score=cand.prior_score + float(cand.ious[c])))
        return sorted(keeps, key=lambda k: -k.score)


class NothingRemembered(DefaultMemory):
    name = "nothing-remembered-test"

    def decide(self, frame_idx, proposals, state):
        return [Keep(0, int(proposals[0].ious.argmax()), in_memory=False)]


@dataclass
class Counter:
    obj_id: int
    calls: int = 0


class Counting(DefaultMemory):
    name = "counting-test"

    def new_object_state(self, obj_id):
        return Counter(obj_id)

    def decide(self, frame_idx, proposals, state):
        state.calls += 1
        return super().decide(frame_idx, proposals, state)


def test_registry(model):
    assert "default" in strategy_names()
    assert isinstance(make_strategy("default", model.config), DefaultMemory)
    custom = Counting(MemoryPolicy.from_config(model.config))
    assert make_strategy(custom, model.config) is custom
    with pytest.raises(ValueError, match="unknown memory strategy 'nope'; available: .*default"):
        make_strategy("nope", model.config)
    with pytest.raises(ValueError, match="already registered"):
        register_strategy("default", lambda c: DefaultMemory(MemoryPolicy.from_config(c)))
    with pytest.raises(TypeError, match="memory must be"):
        VideoPredictor(model, memory=3)


def test_strategy_options_in_the_name(model):
    assert parse_strategy("multipath") == ("multipath", {})
    assert parse_strategy("multipath:pathways=2, memory_iou=0.4") == ("multipath", {"pathways": "2", "memory_iou": "0.4"})
    multipath = make_strategy("multipath:pathways=2,memory_iou=0.4", model.config)
    assert isinstance(multipath, MultipathMemory)
    assert (multipath.config.pathways, multipath.config.memory_iou) == (2, 0.4)
    assert make_strategy("multipath", model.config).config.pathways == 3
    both = make_strategy("motion+distractor:motion_weight=0.3,drm_size=2", model.config)
    assert isinstance(both, MotionDistractorMemory)
    assert both.motion == MotionConfig(motion_weight=0.3) and both.config == DistractorConfig(drm_size=2)
    options = strategy_options("motion+distractor")
    assert options["motion_weight"] == 0.15 and options["drm_size"] == 3
    assert "noise" not in options and "area_ratio" not in options  # not scalars: Python API only
    assert strategy_options("default") == {}
    check_strategy("motion:stable_frames=10")


@pytest.mark.parametrize(
    "text, message",
    [
        ("multipath:", "no options after ':'"),
        ("multipath:pathways", "'pathways' is not of the form key=value"),
        ("multipath:pathways=2,pathways=3", "option pathways given twice"),
        ("multipath:paths=2", "strategy 'multipath' has no option paths \\(its options: pathways, certainty"),
        ("default:pathways=2", "strategy 'default' has no option pathways \\(its options: none\\)"),
        ("multipath:pathways=2.5", "option pathways='2.5': expected an integer"),
        ("motion:motion_weight=high", "option motion_weight='high': expected a number"),
        ("motion:motion_weight=1.5", "motion_weight must be in \\[0, 1\\], got 1.5"),
        ("sam2long:k=3", "unknown memory strategy 'sam2long'"),
    ],
)
def test_strategy_options_errors(model, text, message):
    with pytest.raises(ValueError, match=message):
        check_strategy(text)
    with pytest.raises(ValueError, match=message):
        make_strategy(text, model.config)


def test_a_registered_strategy_takes_no_options(model, monkeypatch):
    from samstream.video.memory import registry

    monkeypatch.setitem(registry._FACTORIES, "counting", lambda c: Counting(MemoryPolicy.from_config(c)))
    assert "counting" in strategy_names()
    assert isinstance(make_strategy("counting", model.config), Counting)
    with pytest.raises(ValueError, match="strategy 'counting' takes no options"):
        check_strategy("counting:calls=1")


def test_frame_outputs_keep_what_strategies_need(model, video):
    predictor = VideoPredictor(model)
    session, _ = _run(predictor, video)
    for track in session.objects.values():
        for t in range(1, T):
            out = track.tracked[t]
            assert out.ious.shape == (1, 3) and out.object_score_logits.shape == (1, 1)
            torch.testing.assert_close(out.box, mask_boxes(out.pred_masks))
            assert out.in_memory and out.maskmem_features is not None


def test_mask_boxes_by_hand():
    logits = torch.full((3, 1, 10, 20), -1.0)
    logits[0, 0, 2:5, 3:9] = 1.0  # rows 2..4, cols 3..8
    logits[1, 0, 9, 19] = 1.0  # one pixel in the corner
    boxes = mask_boxes(logits)
    torch.testing.assert_close(boxes[0], torch.tensor([3 / 20, 2 / 10, 9 / 20, 5 / 10]))
    torch.testing.assert_close(boxes[1], torch.tensor([19 / 20, 9 / 10, 1.0, 1.0]))
    torch.testing.assert_close(boxes[2], torch.zeros(4))  # empty mask


def test_several_hypotheses_per_object(model, video, monkeypatch):
    strategy = TwoPaths(MemoryPolicy.from_config(model.config))
    batch_sizes = []
    original = VideoPredictor._propose

    def spy(self, session, feats, items, selection):
        batch_sizes.append(len(items))
        return original(self, session, feats, items, selection)

    monkeypatch.setattr(VideoPredictor, "_propose", spy)
    predictor = VideoPredictor(model, memory=strategy)
    session, masks = _run(predictor, video)
    # frame 1: one hypothesis per object (2 items); later: two per object, same selection (4 items)
    assert batch_sizes == [2] + [4] * (T - 2)
    for i, track in enumerate(session.objects.values()):
        assert len(track.hypotheses) == 2
        first, second = track.hypotheses
        assert first.score >= second.score
        assert first.tracked is not second.tracked
        assert not torch.equal(first.tracked[1].pred_masks, second.tracked[1].pred_masks)
        for t in range(1, T):  # the returned masks are the best hypothesis' masks
            want = torch.nn.functional.interpolate(first.tracked[t].pred_masks, size=video.shape[1:3], mode="bilinear")
            torch.testing.assert_close(masks[t][i : i + 1], want)
    # the hypotheses really are two pathways: at least one differs from the default (argmax) path
    default_session, _ = _run(VideoPredictor(model), video)
    for obj_id, track in session.objects.items():
        default = default_session.objects[obj_id].tracked
        differs = [
            any(not torch.allclose(hyp.tracked[t].pred_masks, default[t].pred_masks) for t in range(1, T))
            for hyp in track.hypotheses
        ]
        assert any(differs), f"object {obj_id}: both hypotheses equal the default path"


def test_outputs_kept_out_of_memory(model, video):
    predictor = VideoPredictor(model, memory=NothingRemembered(MemoryPolicy.from_config(model.config)))
    session, _ = _run(predictor, video)
    track = session.objects[1]
    for t in range(1, T):
        assert not track.tracked[t].in_memory and track.tracked[t].maskmem_features is None
    sel = predictor._selection(session, track, track.hypotheses[0], T, reverse=False)
    assert [m.frame_idx for m in sel.memories] == [0]
    assert [p.frame_idx for p in sel.pointers] == [0]


def test_per_object_state_lives_with_the_track(model, video):
    strategy = Counting(MemoryPolicy.from_config(model.config))
    predictor = VideoPredictor(model, memory=strategy)
    s1, _ = _run(predictor, video)
    s2, _ = _run(predictor, video, clicks=((5, [[40.0, 40.0]]),))
    states = [tr.memory_state for tr in s1.objects.values()] + [s2.objects[5].memory_state]
    assert [st.obj_id for st in states] == [1, 2, 5]
    assert [st.calls for st in states] == [T - 1] * 3
    assert len({id(st) for st in states}) == 3
    assert not hasattr(model, "memory_state")


def test_streaming_tracker_takes_a_strategy_and_its_horizon(model, video):
    class Short(DefaultMemory):
        name = "short-test"

        def horizon(self):
            return 2

    tracker = StreamingTracker(model, memory=Short(MemoryPolicy.from_config(model.config)))
    counts = []
    for i in range(12):
        tracker.add_frame(video[i % T])
        if i == 0:
            tracker.add_prompt(1, points=[[20.0, 30.0]], labels=[1])
        counts.append(tracker.stored_frames())
    assert max(counts) <= 1 + 2 + 1  # the prompted frame, the horizon, the current frame


def test_a_strategy_without_a_policy_says_what_it_lacks():
    """The default memory choice and horizon read ``policy``: a strategy that sets none and
    overrides neither is told so, by name."""
    from samstream.video.memory.base import Keep, MemoryStrategy

    class NoPolicy(MemoryStrategy):
        name = "no-policy"

        def decide(self, frame_idx, proposals, state):
            return (Keep(parent=0, candidate=0),)

    strategy = NoPolicy()
    with pytest.raises(TypeError, match="NoPolicy sets no policy"):
        strategy.horizon()
    with pytest.raises(TypeError, match="NoPolicy sets no policy"):
        strategy.select_memories(3, cond_frames=[0], memory_frames=[1, 2], reverse=False, num_frames=5, state=None)
