"""Labels in the outputs: drawn on overlays, in RLE records, in the MP4, in objects.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from samstream.io.labels import ObjectLabel, read_object_labels, write_object_labels
from samstream.io.overlay import PromptMarks, draw_labels, draw_mask_labels, draw_prompts, object_color
from samstream.io.writers import CocoRleWriter, make_writer, read_coco_rle


def test_label_tags_are_drawn_above_boxes_in_the_object_color():
    rgb = np.zeros((100, 160, 3), np.uint8)
    drawn = draw_labels(rgb, np.array([[40.0, 50.0, 120.0, 90.0]]), ["cat 0.71"], [3])
    assert not rgb.any()  # the input is not modified
    tag = drawn[:50, 40:120]  # the tag sits on the box's top edge, above it
    assert (tag == object_color(3)).all(axis=-1).sum() > 50  # its background
    assert (tag.min(axis=-1) > 180).sum() > 5  # white (antialiased) text
    assert not drawn[51:].any()  # nothing below the top edge
    # a box at the top of the image: the tag moves inside it
    top = draw_labels(rgb, np.array([[0.0, 0.0, 50.0, 50.0]]), ["dog"], [1])
    assert (top[:20, :50] == object_color(1)).all(axis=-1).any()
    with pytest.raises(ValueError, match="one label and one obj_id per box"):
        draw_labels(rgb, np.zeros((2, 4)), ["a"], [1, 2])


def test_prompt_marks_carry_box_labels():
    a = PromptMarks(np.zeros((0, 2)), np.zeros((0,), int), np.array([[10.0, 30.0, 60.0, 80.0]]), (), (1,), ("cat",))
    b = PromptMarks(np.zeros((0, 2)), np.zeros((0,), int), np.array([[70.0, 30.0, 90.0, 80.0]]), (), (2,))
    merged = a.merged(b)
    assert merged.box_labels == ("cat", "")
    rgb = np.zeros((100, 100, 3), np.uint8)
    with_labels, without = draw_prompts(rgb, merged), draw_prompts(rgb, merged._replace(box_labels=()))
    changed = np.nonzero((with_labels != without).any(axis=-1))
    assert changed[0].max() <= 30 and changed[1].min() >= 10 and changed[1].max() < 70  # only cat's tag, above its box


def test_mask_labels_at_each_mask():
    rgb = np.zeros((60, 80, 3), np.uint8)
    masks = np.zeros((2, 60, 80), bool)
    masks[0, 30:50, 10:40] = True
    masks[1, 5:10, 60:70] = True
    drawn = draw_mask_labels(rgb, masks, [4, 9], {4: "person"})
    changed = np.nonzero((drawn != rgb).any(axis=-1))
    assert changed[0].max() < 31 and changed[1].min() >= 10  # above the top-left corner of object 4
    assert draw_mask_labels(rgb, masks, [4, 9], {}) is rgb  # nothing to write


def test_rle_records_carry_labels_added_while_writing(tmp_path: Path):
    labels: dict[int, str] = {1: "cat"}
    masks = np.zeros((2, 8, 8), bool)
    masks[0, :2] = masks[1, 4:] = True
    with CocoRleWriter(tmp_path / "m.jsonl", 8, 8, labels=labels) as writer:
        writer.write(0, [1, 2], masks)
        labels[2] = "dog"
        writer.write(1, [1, 2], masks)
    records = read_coco_rle(tmp_path / "m.jsonl")
    assert [(r["frame_idx"], r["obj_id"], r.get("label")) for r in records] == [(0, 1, "cat"), (0, 2, None), (1, 1, "cat"), (1, 2, "dog")]


def test_mp4_frames_show_the_labels(tmp_path: Path):
    import av

    frames = np.full((4, 64, 96, 3), 40, np.uint8)
    masks = np.zeros((1, 64, 96), bool)
    masks[0, 30:60, 20:80] = True
    decoded = {}
    for name, labels in (("plain", None), ("labelled", {1: "person"})):
        with make_writer("mp4", tmp_path / f"{name}.mp4", fps=4, frames=lambda t: frames[t], labels=labels) as writer:
            for t in range(4):
                writer.write(t, [1], masks)
        with av.open(str(tmp_path / f"{name}.mp4")) as container:
            decoded[name] = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(int)
    diff = np.abs(decoded["labelled"] - decoded["plain"]).mean(axis=(0, 3))  # [H, W]
    assert diff[:30, 20:80].mean() > 20  # the tag, above the mask's top-left corner, on every frame
    assert diff[40:, :].mean() < 2  # the rest is the same video


def test_objects_file_round_trip(tmp_path: Path):
    objects = {2: ObjectLabel(2, "dog", 0.5, 4), 1: ObjectLabel(1, "cat", 0.9, 0, 8)}
    write_object_labels(tmp_path / "objects.json", objects, detector="tiny", phrases=("cat", "dog"))
    assert read_object_labels(tmp_path / "objects.json") == objects
    import json

    document = json.loads((tmp_path / "objects.json").read_text())
    assert document["phrases"] == ["cat", "dog"] and [o["obj_id"] for o in document["objects"]] == [1, 2]
