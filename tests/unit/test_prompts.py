"""The one prompt validator (samstream.prompts) and the typed results (samstream.results)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samstream.prompts import (
    check_binary_mask,
    check_boxes,
    check_boxes_overlap_image,
    check_index,
    check_points,
    per_image_prompts,
    prompt_points,
    to_model_coords,
)
from samstream.results import FrameResult, PromptResult


def test_points_are_batched_and_labels_checked():
    pts, lab = check_points([[1, 2], [3, 4]], [1, 0])
    assert pts.shape == (1, 2, 2) and lab.tolist() == [[1, 0]] and lab.dtype == np.int32
    with pytest.raises(ValueError, match="labels must be 1 .* or 0"):
        check_points([[1, 2]], [2])
    assert check_points([[1, 2]], [2], encoder_labels=True)[1].tolist() == [[2]]
    with pytest.raises(ValueError, match="given together"):
        check_points([[1, 2]], None)
    with pytest.raises(ValueError, match="NaN"):
        check_points([[1, float("nan")]], [1])
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        check_points([1, 2, 3], [1])
    with pytest.raises(ValueError, match="must be numeric"):
        check_points([["a", "b"]], [1])


def test_boxes():
    assert check_boxes([1, 2, 3, 4]).shape == (1, 4)
    with pytest.raises(ValueError, match="x1 >= x0"):
        check_boxes([5, 0, 1, 1])
    with pytest.raises(ValueError, match="entirely outside"):
        check_boxes_overlap_image(check_boxes([200, 0, 300, 10]), 100, 50)
    check_boxes_overlap_image(check_boxes([-10, -10, 5, 5]), 100, 50)  # partly inside: fine


def test_masks_and_indices():
    assert check_binary_mask(np.eye(3, dtype=np.uint8)).dtype == bool
    with pytest.raises(ValueError, match="0 and 1"):
        check_binary_mask(np.full((2, 2), 255, np.uint8))
    with pytest.raises(ValueError, match="3x2 .* but the frame is 4x4"):
        check_binary_mask(np.zeros((2, 3), bool), shape=(4, 4))
    assert check_index(np.int64(3), "frame_idx") == 3
    with pytest.raises(TypeError, match="frame_idx must be an int"):
        check_index(True, "frame_idx")


def test_prompt_points_puts_box_corners_first_in_model_pixels():
    coords, labels = prompt_points([[50, 25]], [1], [0, 0, 100, 50], orig_hw=(50, 100), image_size=64, coords="pixels")
    torch.testing.assert_close(coords, torch.tensor([[[0.0, 0.0], [64.0, 64.0], [32.0, 32.0]]]))
    assert labels.tolist() == [[2, 3, 1]]
    norm, _ = prompt_points([[0.5, 0.5]], [1], None, orig_hw=(50, 100), image_size=64, coords="normalized")
    torch.testing.assert_close(norm, torch.tensor([[[32.0, 32.0]]]))
    assert prompt_points(None, None, None, orig_hw=(1, 1), image_size=8, coords="pixels") is None
    with pytest.raises(ValueError, match="coords must be 'pixels' or 'normalized'"):
        to_model_coords(torch.zeros(1, 2), (1, 1), 8, "px")


def test_frame_result_is_a_named_tuple():
    masks = torch.tensor([[[[1.0, -1.0]]]])
    result = FrameResult(3, [7], masks)
    frame_idx, obj_ids, got = result
    assert (frame_idx, obj_ids) == (3, [7]) and got is masks
    assert result.binary_masks().tolist() == [[[True, False]]]


def test_prompt_result_computes_masks_only_when_asked():
    calls = []

    def compute():
        calls.append(1)
        return torch.zeros(1, 1, 2, 2)

    result = PromptResult(0, [1], compute)
    assert calls == [] and "not computed" in repr(result)
    frame_idx, obj_ids, masks = result
    assert result[2] is masks and result.masks is masks and len(calls) == 1
    assert result.result() == FrameResult(0, [1], masks)


def test_per_image_prompts_splits_the_reference_batches_and_checks_their_lengths():
    boxes = [np.array([0, 0, 4, 4]), np.array([1, 1, 5, 5])]
    split = per_image_prompts(2, [[[1, 2]], [[3, 4]]], [[1], [0]], boxes, None)
    assert [s[0] for s in split] == [[[1, 2]], [[3, 4]]] and [s[1] for s in split] == [[1], [0]]
    assert split[1][2] is boxes[1] and split[0][3] is None and split[1][3] is None
    with pytest.raises(ValueError, match="box_batch has 2 entries for 3 images"):
        per_image_prompts(3, None, None, boxes, None)


def test_the_checks_import_without_torch():
    import subprocess
    import sys

    script = (
        "import sys; import samstream.prompt_checks, samstream.image.rgb; "
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
