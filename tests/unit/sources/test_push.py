"""PushFrameSource: frames pushed by the caller, a bounded window, clear errors."""

from __future__ import annotations

import pytest
import torch
from synthetic_video import IMAGE_SIZE

from samstream.image.transforms import preprocess_frame
from samstream.video.sources import FrameDroppedError, FrameIndexError, FrameSourceError, PushFrameSource


def test_push_keeps_a_window_and_numbers_frames(frames) -> None:
    source = PushFrameSource(IMAGE_SIZE, window=3)
    assert source.num_frames is None
    indices = [source.push(frame) for frame in frames[:5]]
    assert indices == [0, 1, 2, 3, 4] and source.frames_pushed == 5
    assert (source.video_height, source.video_width) == frames.shape[1:3]
    assert torch.equal(source.get(4), preprocess_frame(frames[4], IMAGE_SIZE))
    assert (source.get_rgb(2) == frames[2]).all()
    with pytest.raises(FrameDroppedError, match="frame 1"):
        source.get(1)
    with pytest.raises(FrameIndexError, match="frame 5"):
        source.get(5)


def test_push_rejects_bad_frames_and_window(frames) -> None:
    with pytest.raises(ValueError, match="window"):
        PushFrameSource(IMAGE_SIZE, window=0)
    source = PushFrameSource(IMAGE_SIZE)
    source.push(frames[0])
    with pytest.raises(FrameSourceError, match="frame 1"):
        source.push(frames[1, :10])
    with pytest.raises(FrameSourceError, match="uint8"):
        source.push(frames[1].astype("float32"))
