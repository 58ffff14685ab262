"""Finding and tracking every object: the rule that decides which found masks are new,
and the discovery loop on a short clip made in the test."""

from __future__ import annotations

import numpy as np
import pytest
from tiny import moving_clip, write_jpeg_folder

from samstream.build import build_model
from samstream.image.automatic import AutomaticMaskConfig, AutomaticMaskGenerator
from samstream.video.everything import DiscoveryOptions, EverythingTracker, new_object_masks
from samstream.video.predictor import VideoPredictor


def _box(y0, y1, x0, x1, shape=(20, 20)):
    m = np.zeros(shape, dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def test_new_object_rule():
    tracked = np.stack([_box(0, 10, 0, 10)])
    same = _box(0, 10, 0, 9)  # IoU 0.9 with the tracked object
    inside = _box(2, 5, 2, 5)  # small and fully covered
    elsewhere = _box(12, 18, 12, 18)
    twin = _box(12, 18, 12, 17)  # overlaps the new one just accepted
    kept = new_object_masks([same, inside, elsewhere, twin, np.zeros((20, 20), bool)], tracked, new_object_iou=0.5, max_covered=0.5)
    assert len(kept) == 1 and np.array_equal(kept[0], elsewhere)
    # with nothing tracked, every distinct candidate is new
    kept = new_object_masks([same, elsewhere], np.zeros((0, 20, 20), bool), new_object_iou=0.5, max_covered=0.5)
    assert len(kept) == 2


@pytest.mark.parametrize("kwargs", [dict(detect_every=-1), dict(new_object_iou=1.5), dict(max_covered=-0.1), dict(max_objects=0)])
def test_bad_discovery_options(kwargs):
    with pytest.raises(ValueError):
        DiscoveryOptions(**kwargs)


def test_discovery_keeps_stable_ids(tmp_path, tiny_model_files):
    folder = write_jpeg_folder(tmp_path / "clip", moving_clip(6))  # 6 frames, 320 x 136
    model = build_model(tiny_model_files.config, tiny_model_files.checkpoint, for_video=True)
    generator = AutomaticMaskGenerator(model, AutomaticMaskConfig(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0))
    predictor = VideoPredictor(model)
    tracker = EverythingTracker(predictor, generator, DiscoveryOptions(detect_every=3, new_object_iou=0.0, max_covered=1.0, max_objects=3))
    session = predictor.open_session(folder)
    results = list(tracker.run(session, progress=False))
    assert [r[0] for r in results] == list(range(6))
    ids_per_frame = [r[1] for r in results]
    # ids only ever grow by appending: an object keeps its id once found
    for before, after in zip(ids_per_frame, ids_per_frame[1:]):
        assert after[: len(before)] == before
    assert 1 <= len(ids_per_frame[-1]) <= 3
    for frame_idx, obj_ids, logits in results:
        assert logits.shape == (len(obj_ids), 1, 136, 320)
