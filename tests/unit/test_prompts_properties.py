"""Property tests of the prompt validators (samstream.prompts) and the CLI's prompt parsers.

Whatever is given (any string, any float including NaN, inf, huge and negative values), a
validator either returns a well-formed, finite array or raises ValueError / TypeError with a
message naming the argument; a CLI parser either returns prompts or raises CliError. Nothing
else may escape.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from samstream.cli.common import CliError, parse_floats
from samstream.cli.segment import _parse_prompt
from samstream.cli.track import parse_mask_flag, parse_prompts
from samstream.prompts import (
    check_boxes,
    check_boxes_in_image,
    check_points,
    check_points_in_image,
)

any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)
# strings made of the characters prompt flags use, plus anything at all
prompt_text = st.one_of(st.text(alphabet="0123456789.,:-+eEinfa ", max_size=30), st.text(max_size=30))

SETTINGS = settings(max_examples=300, deadline=None)


@SETTINGS
@given(st.lists(st.tuples(any_float, any_float), min_size=1, max_size=5), st.lists(st.integers(-3, 4), min_size=1, max_size=5))
def test_check_points_accepts_only_finite_clicks_with_click_labels(points, labels):
    try:
        coords, labs = check_points(points, labels)
    except ValueError as exc:
        assert "points" in str(exc) or "labels" in str(exc)
        return
    assert coords.shape == (1, len(points), 2) and np.isfinite(coords).all()
    assert labs.shape == (1, len(points)) and set(labs.ravel().tolist()) <= {0, 1}


@SETTINGS
@given(st.lists(any_float, min_size=0, max_size=6))
def test_check_boxes_returns_ordered_finite_boxes_or_refuses(values):
    try:
        boxes = check_boxes(values)
    except ValueError as exc:
        assert "box" in str(exc)
        return
    assert boxes.shape == (1, 4) and np.isfinite(boxes).all()
    assert boxes[0, 2] >= boxes[0, 0] and boxes[0, 3] >= boxes[0, 1]


@SETTINGS
@given(st.tuples(finite, finite, finite, finite), st.integers(1, 5000), st.integers(1, 5000))
def test_boxes_kept_in_image_overlap_it_and_stay_near_it(box, width, height):
    x0, y0, x1, y1 = box
    arr = np.array([[min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]])
    try:
        check_boxes_in_image(arr, width, height, name="--box")
    except ValueError as exc:
        assert str(exc).startswith("--box ")
        return
    bx0, by0, bx1, by1 = arr[0]
    assert bx1 >= 0 and by1 >= 0 and bx0 <= width and by0 <= height  # overlaps the image
    assert -width <= bx0 and bx1 <= 2 * width and -height <= by0 and by1 <= 2 * height


@SETTINGS
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=4), st.integers(1, 5000), st.integers(1, 5000))
def test_points_kept_in_image_are_inside_it(points, width, height):
    arr = np.array(points)
    try:
        check_points_in_image(arr, width, height, name="--point")
    except ValueError as exc:
        assert str(exc).startswith("--point ") and "outside" in str(exc)
        return
    assert ((arr[:, 0] >= 0) & (arr[:, 0] < width) & (arr[:, 1] >= 0) & (arr[:, 1] < height)).all()


@SETTINGS
@given(prompt_text)
def test_parse_floats_gives_finite_numbers_or_a_cli_error(text):
    try:
        values = parse_floats(text, (2, 3), "--point")
    except CliError as exc:
        assert str(exc).startswith("--point ")
        return
    assert len(values) in (2, 3) and all(math.isfinite(v) for v in values)


@SETTINGS
@given(st.lists(prompt_text, max_size=3), st.one_of(st.none(), prompt_text))
def test_segment_prompt_parser_never_raises_anything_but_cli_error(points, box):
    args = argparse.Namespace(point=points, box=box)
    try:
        coords, labels, parsed_box = _parse_prompt(args)
    except CliError:
        return
    assert coords is not None or parsed_box is not None
    if coords is not None:
        assert coords.shape == (len(points), 2) and np.isfinite(coords).all()
        assert set(labels.tolist()) <= {0, 1}
    if parsed_box is not None:
        assert parsed_box.shape == (4,) and np.isfinite(parsed_box).all()


@SETTINGS
@given(st.lists(prompt_text, max_size=3), st.lists(prompt_text, max_size=2), st.lists(prompt_text, max_size=2))
def test_track_prompt_parser_never_raises_anything_but_cli_error(points, boxes, masks):
    args = argparse.Namespace(point=points, box=boxes, mask=masks)
    try:
        prompts = parse_prompts(args)
    except CliError:
        return
    assert prompts
    for (frame, obj), prompt in prompts.items():
        assert frame >= 0 and obj >= 0
        assert all(math.isfinite(v) for xy in prompt.points for v in xy)
        assert set(prompt.labels) <= {0, 1}
        if prompt.box is not None:
            assert prompt.box[2] >= prompt.box[0] and prompt.box[3] >= prompt.box[1]


@SETTINGS
@given(st.integers(0, 10**6), st.text(min_size=1, max_size=20).filter(lambda s: not s.rsplit(":", 1)[-1].isdigit()),
       st.one_of(st.none(), st.integers(0, 10**6)))
def test_mask_flag_round_trips_any_path(frame, path, obj):
    text = f"{frame}:{path}" + ("" if obj is None else f":{obj}")
    parsed_frame, parsed_path, parsed_obj = parse_mask_flag(text)
    assert parsed_frame == frame
    assert str(parsed_path) == str(__import__("pathlib").Path(path))
    assert parsed_obj == (1 if obj is None else obj)
