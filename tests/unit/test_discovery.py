"""The discovery seam with known masks: which found objects are new, which tracked objects are
matched, stable ids, labels carried, dropping; on a stand-in tracker whose masks are known
exactly, then on the tiny model (offline and streaming) with a fake proposer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import moving_clip
from tiny_detectors import FakeProposer

from samstream.results import DetectedObject, FrameResult
from samstream.video.discovery import DiscoveryOptions, ObjectDiscovery, TextFinder, mask_iou_matrix, new_object_indices

H, W = 40, 60


def box_mask(x0, y0, x1, y1) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def found(x0, y0, x1, y1, label, score=0.9) -> DetectedObject:
    return DetectedObject(box_mask(x0, y0, x1, y1), np.array([x0, y0, x1, y1], float), label, score, score)


class ScriptedFinder:
    """Finds ``script[frame]`` (a list of DetectedObject) on each frame it is asked about."""

    name = "scripted"

    def __init__(self, script: dict[int, list[DetectedObject]]):
        self.script = script
        self.frames: list[int] = []
        self.current = 0

    def find(self, rgb, features=None):
        self.frames.append(self.current)
        return self.script.get(self.current, [])


class _Frames:
    def __init__(self, finder: ScriptedFinder):
        self.finder = finder

    def get_rgb(self, t):
        self.finder.current = t
        return np.zeros((H, W, 3), np.uint8)


class _Session:
    def __init__(self, finder):
        self.frames = _Frames(finder)
        self.objects: dict[int, np.ndarray] = {}


class _Added:
    def __init__(self, result):
        self._result = result

    def result(self):
        return self._result


class StillTracker:
    """A tracker stand-in: every object keeps the mask it was added with."""

    def __init__(self):
        self.removed: list[tuple[int, int]] = []

    def frame(self, session, t) -> FrameResult:
        ids = list(session.objects)
        masks = torch.stack([torch.as_tensor(session.objects[i]) for i in ids]).float()[:, None] * 20 - 10
        return FrameResult(t, ids, masks)

    def add_mask(self, session, t, obj_id, mask):
        assert obj_id not in session.objects
        session.objects[obj_id] = mask
        return _Added(self.frame(session, t))

    def remove_object(self, session, obj_id):
        self.removed.append((obj_id, self.t))
        del session.objects[obj_id]


def run(discovery: ObjectDiscovery, finder: ScriptedFinder, frames: int) -> tuple[StillTracker, list[FrameResult | None]]:
    tracker, session = StillTracker(), _Session(finder)
    out = []
    for t in range(frames):
        tracker.t = t
        current = tracker.frame(session, t) if session.objects else None
        if discovery.due(t):
            current = discovery.step(tracker, session, t, current)
        out.append(current)
    return tracker, out


A, B, C = (0, 0, 10, 10), (20, 0, 30, 10), (40, 20, 50, 30)


def test_new_objects_get_new_ids_and_keep_their_labels():
    finder = ScriptedFinder(
        {
            0: [found(*A, "cat"), found(*B, "dog", 0.8)],
            2: [found(0, 0, 10, 9, "cat"), found(*C, "cat", 0.7)],  # A again (IoU 0.9) and a new cat
            4: [found(*C, "dog"), found(*B, "dog")],  # both tracked already: nothing new, the labels stay
        }
    )
    discovery = ObjectDiscovery(finder, DiscoveryOptions(detect_every=2))
    _, results = run(discovery, finder, 6)
    assert finder.frames == [0, 2, 4]
    assert [r.obj_ids for r in results] == [[1, 2], [1, 2], [1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3]]
    assert discovery.labels == {1: "cat", 2: "dog", 3: "cat"}
    assert [(o.first_frame, o.score) for o in discovery.objects.values()] == [(0, 0.9), (0, 0.8), (2, 0.7)]
    np.testing.assert_array_equal(results[2].binary_masks()[2].numpy(), box_mask(*C))


def test_detection_frames_start_where_discovery_starts():
    discovery = ObjectDiscovery(ScriptedFinder({}), DiscoveryOptions(detect_every=3))
    assert discovery.due(5)  # the first frame it sees (a live stream joined late)
    discovery.step(StillTracker(), _Session(discovery.finder), 5, None)
    assert [t for t in range(5, 15) if discovery.due(t)] == [8, 11, 14]
    once = ObjectDiscovery(ScriptedFinder({}), DiscoveryOptions(detect_every=0))
    once.step(StillTracker(), _Session(once.finder), 0, None)
    assert not any(once.due(t) for t in range(1, 50))


@pytest.mark.parametrize("match_iou, dropped", [(0.8, False), (0.81, True)])
def test_match_threshold_decides_dropping(match_iou, dropped):
    # B is found on frame 0; afterwards only a box inside it with IoU exactly 0.8 is found
    b_inside = found(20, 0, 30, 8, "dog")
    finder = ScriptedFinder({0: [found(*A, "cat"), found(*B, "dog")], 2: [found(*A, "cat"), b_inside], 4: [found(*A, "cat"), b_inside]})
    assert mask_iou_matrix(box_mask(*B)[None], b_inside.mask[None])[0, 0] == pytest.approx(0.8)
    discovery = ObjectDiscovery(finder, DiscoveryOptions(detect_every=2, drop_after=4, new_object_iou=match_iou))
    tracker, results = run(discovery, finder, 6)
    if dropped:
        assert tracker.removed == [(2, 4)]
        assert discovery.objects[2].dropped_frame == 4 and discovery.objects[1].dropped_frame is None
        # once B is gone, nothing covers the inner box: it becomes a new object with its own id
        assert results[4].obj_ids == [1, 3] and results[5].obj_ids == [1, 3]
        assert discovery.objects[3].label == "dog" and discovery.objects[3].first_frame == 4
    else:
        # matched, so B stays; the inner box lies under B: never a new object
        assert tracker.removed == [] and results[5].obj_ids == [1, 2] and sorted(discovery.objects) == [1, 2]


def test_dropped_ids_are_never_reused_and_dropping_waits_drop_after_frames():
    finder = ScriptedFinder({0: [found(*A, "cat"), found(*B, "dog")], 2: [found(*A, "cat")], 4: [found(*A, "cat")], 6: [found(*A, "cat"), found(*B, "dog")]})
    discovery = ObjectDiscovery(finder, DiscoveryOptions(detect_every=2, drop_after=4))
    tracker, results = run(discovery, finder, 8)
    assert tracker.removed == [(2, 4)]  # unseen on frame 2 (2 frames: kept), on frame 4 (4 frames: dropped)
    assert results[6].obj_ids == [1, 3] and discovery.labels == {1: "cat", 2: "dog", 3: "dog"}  # B comes back as a new object
    assert discovery.objects[3].first_frame == 6


def test_max_objects_and_candidates_in_order():
    finder = ScriptedFinder({0: [found(*A, "a"), found(0, 0, 10, 9, "twin"), found(*B, "b"), found(*C, "c")]})
    discovery = ObjectDiscovery(finder, DiscoveryOptions(max_objects=2))
    _, results = run(discovery, finder, 1)
    assert results[0].obj_ids == [1, 2] and discovery.labels == {1: "a", 2: "b"}  # the twin overlaps a, c is over the limit
    assert new_object_indices([box_mask(*A), box_mask(*B)], np.zeros((0, H, W), bool), new_object_iou=0.5, max_covered=0.5) == [0, 1]


def test_options_are_checked():
    with pytest.raises(ValueError, match="drop_after"):
        DiscoveryOptions(drop_after=-1)
    with pytest.raises(ValueError, match="detect_every"):
        DiscoveryOptions(drop_after=5)
    with pytest.raises(TypeError, match="finder"):
        ObjectDiscovery(object())


# --------------------------------------------------------------------------- the tiny model


@pytest.fixture(scope="module")
def video_model(tiny_model_files):
    from samstream.build import build_model

    return build_model(tiny_model_files.config, tiny_model_files.checkpoint, for_video=True)


def _text_finder(model, proposer):
    from samstream.image.predictor import ImagePredictor
    from samstream.image.text import TextSegmenter

    return TextFinder(TextSegmenter(ImagePredictor(model), proposer), "Person. CAR.")


def test_text_tracking_offline_keeps_ids_and_labels(video_model):
    from samstream.video.everything import EverythingTracker
    from samstream.video.predictor import VideoPredictor

    clip = moving_clip(5)  # 5 frames, 136 x 320
    car = (200, 20, 300, 120, "car", 0.6)
    proposer = FakeProposer([[(10, 10, 80, 90, "person", 0.9)], [car]], with_masks=True)
    finder = _text_finder(video_model, proposer)
    predictor = VideoPredictor(video_model)
    options = DiscoveryOptions(detect_every=2, new_object_iou=0.5, max_covered=0.5)
    tracker = EverythingTracker(predictor, finder, options)
    session = predictor.open_session(clip)
    results = list(tracker.run(session, progress=False))
    assert proposer.calls == [("person", "car")] * 3  # frames 0, 2, 4; phrases normalised
    assert [r.frame_idx for r in results] == [0, 1, 2, 3, 4]
    assert results[0].obj_ids == [1] and tracker.discovery.labels[1] == "person"
    # the car joins on frame 2 unless the tracked person's mask there already covers it (the rule, on the real masks)
    car_mask = np.zeros((136, 320), bool)
    car_mask[20:120, 200:300] = True
    person_on_2 = results[2].binary_masks()[:1].numpy()
    joins = new_object_indices([car_mask], person_on_2, new_object_iou=0.5, max_covered=0.5) == [0]
    assert results[2].obj_ids == ([1, 2] if joins else [1])
    if joins:
        assert tracker.discovery.objects[2].label == "car" and tracker.discovery.objects[2].first_frame == 2
        # the found mask is the prompt (resampled to the model's 128 px and back: edges move)
        assert mask_iou_matrix(results[2].binary_masks()[1:2].numpy(), car_mask[None])[0, 0] >= 0.98
        # on frame 4 it is found again: a second car only where the tracked masks no longer cover it
        again = new_object_indices([car_mask], results[4].binary_masks()[:2].numpy(), new_object_iou=0.5, max_covered=0.5) == [0]
        assert results[4].obj_ids == ([1, 2, 3] if again else [1, 2])
        assert tracker.discovery.labels == ({1: "person", 2: "car", 3: "car"} if again else {1: "person", 2: "car"})
    ids = [r.obj_ids for r in results]
    assert all(after[: len(before)] == before for before, after in zip(ids, ids[1:]))  # ids stable
    assert all(r.masks.shape == (len(r.obj_ids), 1, 136, 320) for r in results)


def test_text_tracking_live_in_the_streaming_tracker(video_model):
    from samstream.video.streaming import StreamingTracker

    clip = moving_clip(4)
    proposer = FakeProposer([[(10, 10, 80, 90, "car", 0.9)], [], [(200, 20, 300, 120, "person", 0.5)], []], with_masks=True)
    discovery = ObjectDiscovery(_text_finder(video_model, proposer), DiscoveryOptions(detect_every=1, max_covered=1.0, new_object_iou=1.0))
    tracker = StreamingTracker(video_model, discovery=discovery)
    results = [tracker.add_frame(frame) for frame in clip]
    assert len(proposer.calls) == 4  # every frame
    person = np.zeros((136, 320), bool)
    person[20:120, 200:300] = True
    joins = new_object_indices([person], results[2].binary_masks()[:1].numpy(), new_object_iou=1.0, max_covered=1.0) == [0]
    assert [r.obj_ids for r in results] == ([[1], [1], [1, 2], [1, 2]] if joins else [[1]] * 4)
    assert tracker.labels == ({1: "car", 2: "person"} if joins else {1: "car"})
    with pytest.raises(TypeError, match="ObjectDiscovery"):
        StreamingTracker(video_model, discovery=proposer)


def test_detection_frames_reuse_the_tracked_frames_features(video_model, monkeypatch):
    """Boxes found on a frame are decoded from the features the tracker computed for it: one
    image encoding per frame, detection frames included."""
    from samstream.video.everything import EverythingTracker
    from samstream.video.predictor import VideoPredictor

    encoded: list[int] = []
    real = video_model.encode_images
    monkeypatch.setattr(video_model, "encode_images", lambda images: (encoded.append(len(images)), real(images))[1])
    proposer = FakeProposer([[(10, 10, 80, 90, "person", 0.9)], [(200, 20, 300, 120, "car", 0.6)]])  # SAM makes the masks
    predictor = VideoPredictor(video_model)
    tracker = EverythingTracker(predictor, _text_finder(video_model, proposer), DiscoveryOptions(detect_every=2))
    session = predictor.open_session(moving_clip(5))
    results = list(tracker.run(session, progress=False))
    assert len(results) == 5 and len(proposer.calls) == 3
    assert encoded == [1] * 5  # frames 0..4 once each; frames 0, 2 and 4 were also detection frames
