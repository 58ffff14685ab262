"""The evaluator's conventions on tiny mask folders written in the test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from samstream.eval.evaluate import evaluate_dataset
from samstream.eval.layouts import (
    DAVIS_PALETTE,
    LayoutError,
    labels_from_masks,
    open_mask_folder,
    read_id_png,
    write_binary_png,
    write_palette_png,
)
from samstream.eval.report import csv_rows, format_table, write_csv
from samstream.eval.synthetic import make_synthetic_dataset

S = 32


def ids_with(*boxes) -> np.ndarray:
    """(H, W) ids; each box is (id, top, left, side)."""
    out = np.zeros((S, S), dtype=np.uint8)
    for value, top, left, side in boxes:
        out[top : top + side, left : left + side] = value
    return out


def write_video(folder, frames):
    for t, ids in enumerate(frames):
        write_palette_png(folder / f"{t:05d}.png", ids)


def test_palette_png_round_trip_keeps_ids_and_davis_colours(tmp_path):
    ids = ids_with((1, 2, 2, 5), (7, 10, 10, 4), (255, 20, 20, 3))
    write_palette_png(tmp_path / "a.png", ids)
    np.testing.assert_array_equal(read_id_png(tmp_path / "a.png"), ids)
    from PIL import Image

    with Image.open(tmp_path / "a.png") as img:
        assert img.mode == "P"
        assert bytes(img.getpalette()[:9]) == bytes([0, 0, 0, 128, 0, 0, 0, 128, 0]) == DAVIS_PALETTE[:9]


def test_labels_from_masks_smaller_id_wins():
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[0, :2] = True  # id 5
    masks[1, 1:3] = True  # id 3, overlapping row 1
    ids = labels_from_masks(masks, [5, 3])
    assert ids[0, 0] == 5 and ids[1, 0] == 3 and ids[2, 0] == 3 and ids[3, 0] == 0


def test_first_and_last_frames_are_left_out_and_void_is_background(tmp_path):
    gt, pred = tmp_path / "gt" / "v", tmp_path / "pred" / "v"
    square = (1, 4, 4, 10)
    # frame 0 and 3 wrong on purpose: they must not count; void (255) around the object in
    # the ground truth counts as background, so an exact prediction still scores 1
    write_video(gt, [ids_with(square), ids_with((255, 2, 2, 14), square), ids_with(square), ids_with(square)])
    write_video(pred, [ids_with(), ids_with(square), ids_with(square), ids_with()])
    report = evaluate_dataset(tmp_path / "gt", tmp_path / "pred", "davis")
    (obj,) = report.objects
    assert obj.frames == 2
    assert obj.j.mean == pytest.approx(1.0) and obj.f.mean == pytest.approx(1.0)
    assert report.jf == pytest.approx(1.0)


def test_void_pixels_predicted_as_object_count_against_it(tmp_path):
    gt, pred = tmp_path / "gt" / "v", tmp_path / "pred" / "v"
    frame = ids_with((255, 0, 0, 4), (1, 10, 10, 10))
    write_video(gt, [frame, frame, frame])
    guess = ids_with((1, 0, 0, 4), (1, 10, 10, 10))  # also claims the 16 void pixels
    write_video(pred, [guess, guess, guess])
    (obj,) = evaluate_dataset(tmp_path / "gt", tmp_path / "pred").objects
    assert obj.j.mean == pytest.approx(100 / 116)


def test_missing_prediction_frames_score_empty_and_are_counted(tmp_path):
    gt, pred = tmp_path / "gt" / "v", tmp_path / "pred" / "v"
    frame = ids_with((1, 4, 4, 8), (2, 18, 18, 8))
    write_video(gt, [frame] * 4)
    write_palette_png(pred / "00001.png", frame)  # frame 2 has no file
    report = evaluate_dataset(tmp_path / "gt", tmp_path / "pred")
    assert report.missing_frames == 1
    assert [o.j.mean for o in report.objects] == pytest.approx([0.5, 0.5])
    assert "1 ground-truth frame(s) had no prediction" in format_table(report)


def test_unexpected_ids_are_reported_and_ignored(tmp_path):
    gt, pred = tmp_path / "gt" / "v", tmp_path / "pred" / "v"
    write_video(gt, [ids_with((1, 4, 4, 8))] * 3)
    write_video(pred, [ids_with((1, 4, 4, 8), (9, 20, 20, 5))] * 3)
    report = evaluate_dataset(tmp_path / "gt", tmp_path / "pred")
    assert report.videos[0].unexpected_ids == (9,)
    assert report.jf == pytest.approx(1.0)
    assert "predicted ids [9]" in format_table(report)


def test_masks_of_another_size_fail_that_video_only(tmp_path):
    for name in ("good", "bad"):
        write_video(tmp_path / "gt" / name, [ids_with((1, 4, 4, 8))] * 3)
    write_video(tmp_path / "pred" / "good", [ids_with((1, 4, 4, 8))] * 3)
    write_video(tmp_path / "pred" / "bad", [np.zeros((S, S + 1), np.uint8)] * 3)
    report = evaluate_dataset(tmp_path / "gt", tmp_path / "pred")
    assert [v.video for v in report.failed] == ["bad"]
    assert "33x32" in report.failed[0].error
    assert report.jf == pytest.approx(1.0)  # the good video is still scored
    assert "bad: not scored" in format_table(report)


def test_empty_dataset_and_missing_folders_are_clear_errors(tmp_path):
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    with pytest.raises(LayoutError, match="empty dataset"):
        evaluate_dataset(tmp_path / "gt", tmp_path / "pred")
    with pytest.raises(LayoutError, match="--pred"):
        evaluate_dataset(tmp_path / "gt", tmp_path / "nope")


def test_sav_scores_annotated_frames_from_first_appearance(tmp_path):
    gt, pred = tmp_path / "gt" / "v", tmp_path / "pred" / "v"
    obj = np.zeros((6, S, S), dtype=bool)
    obj[3:, 5:15, 5:15] = True  # appears on frame 3
    for t in range(6):
        write_binary_png(gt / "001" / f"{t:05d}.png", obj[t])
        write_binary_png(pred / "001" / f"{t:05d}.png", obj[t])
    # a prediction on a frame that is not annotated must be ignored
    write_binary_png(pred / "001" / "00099.png", np.ones((S, S), bool))
    (score,) = evaluate_dataset(tmp_path / "gt", tmp_path / "pred", "sav").objects
    # annotated frames 0..5, minus first and last -> 1..4; first appearance on 3 -> frames 3, 4
    assert score.frames == 2
    assert score.jf == pytest.approx(1.0)
    assert open_mask_folder(pred).per_object


def test_sav_counts_a_false_appearance_in_the_prediction(tmp_path):
    gt, pred = tmp_path / "gt" / "v", tmp_path / "pred" / "v"
    obj = np.zeros((5, S, S), dtype=bool)
    obj[3:, 5:15, 5:15] = True
    early = obj.copy()
    early[1, 0:4, 0:4] = True  # the prediction shows it on frame 1 already
    for t in range(5):
        write_binary_png(gt / "001" / f"{t:05d}.png", obj[t])
        write_binary_png(pred / "001" / f"{t:05d}.png", early[t])
    (score,) = evaluate_dataset(tmp_path / "gt", tmp_path / "pred", "sav").objects
    assert score.frames == 3  # frames 1, 2, 3: from the prediction's first appearance
    assert score.j.mean == pytest.approx((0 + 1 + 1) / 3)


def test_ytvos_objects_from_their_first_frame_and_g_over_seen_unseen(tmp_path):
    gt, pred = tmp_path / "gt" / "v", tmp_path / "pred" / "v"
    a, b = (1, 2, 2, 8), (2, 20, 20, 8)
    write_video(gt, [ids_with(a), ids_with(a), ids_with(a, b), ids_with(a, b), ids_with(a, b), ids_with(a, b)])
    # object 2 perfect from its appearance; object 1 wrong on frame 4 (half its frames 1..4)
    write_video(pred, [ids_with(a), ids_with(a), ids_with(a, b), ids_with(a, b), ids_with(b), ids_with(b)])
    meta = {"videos": {"v": {"objects": {"1": {"category": "cat"}, "2": {"category": "zebra"}}}}, "unseen_categories": ["zebra"]}
    (tmp_path / "gt" / "meta.json").write_text(json.dumps(meta))
    report = evaluate_dataset(tmp_path / "gt", tmp_path / "pred", "ytvos")
    one, two = report.objects
    assert (one.frames, two.frames) == (4, 2)  # 1: frames 1..4; 2: frames 3..4 (last frame 5 left out)
    assert one.j.mean == pytest.approx(3 / 4) and two.j.mean == pytest.approx(1.0)
    g = report.seen_unseen()
    assert g["J_seen"] == pytest.approx(3 / 4) and g["J_unseen"] == pytest.approx(1.0)
    assert g["G"] == pytest.approx((g["J_seen"] + g["F_seen"] + g["J_unseen"] + g["F_unseen"]) / 4)


def test_overall_averages_over_video_object_pairs_and_csv(tmp_path):
    write_video(tmp_path / "gt" / "a", [ids_with((1, 2, 2, 8), (2, 16, 16, 8))] * 3)
    write_video(tmp_path / "pred" / "a", [ids_with((1, 2, 2, 8))] * 3)  # object 2 missed: 0
    write_video(tmp_path / "gt" / "b", [ids_with((1, 2, 2, 8))] * 3)
    write_video(tmp_path / "pred" / "b", [ids_with((1, 2, 2, 8))] * 3)  # 1
    report = evaluate_dataset(tmp_path / "gt", tmp_path / "pred")
    assert report.j == pytest.approx(2 / 3)  # (1 + 0 + 1) / 3 pairs, not the mean of videos (0.75)
    write_csv(report, tmp_path / "s.csv")
    text = (tmp_path / "s.csv").read_text().splitlines()
    assert text[0].startswith("video,object,frames,J&F")
    assert text[-1].startswith("overall,3,")
    assert len(csv_rows(report)) == 3 + 2 + 1


def test_ground_truth_against_itself_scores_one_in_every_layout(tmp_path):
    for layout in ("davis", "sav", "ytvos"):
        root = tmp_path / layout
        make_synthetic_dataset(root, layout, videos=2, frames=5, height=48, width=40)
        ann = "Annotations_6fps" if layout == "sav" else "Annotations"
        report = evaluate_dataset(root, root / ann, layout, workers=2 if layout == "davis" else 1)
        assert len(report.objects) == 4 and not report.failed
        assert report.jf == pytest.approx(1.0)


def test_objects_without_a_frame_to_score_are_listed_not_averaged(tmp_path):
    for t in range(2):  # two annotated frames: both are first or last
        write_binary_png(tmp_path / "gt" / "v" / "001" / f"{t:05d}.png", np.ones((S, S), bool))
    (tmp_path / "pred" / "v").mkdir(parents=True)
    report = evaluate_dataset(tmp_path / "gt", tmp_path / "pred", "sav")
    assert report.objects == [] and report.videos[0].unscored_objects == (1,)
    assert "objects [1] have no frame to score" in format_table(report)
