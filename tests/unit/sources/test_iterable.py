"""Live iterables: the sliding window and its errors."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from PIL import Image

from samstream.video.sources import (
    ArrayFrameSource,
    FrameDroppedError,
    FrameIndexError,
    FrameSourceError,
    IterableFrameSource,
)
from synthetic_video import IMAGE_SIZE


def test_iterable_source_window(frames: np.ndarray) -> None:
    pulled: list[int] = []

    def camera():
        for t, array in enumerate(frames[:12]):
            pulled.append(t)
            yield array if t % 2 else Image.fromarray(array)

    source = IterableFrameSource(camera(), IMAGE_SIZE, max_cached=4)
    assert source.num_frames is None and pulled == [0]
    assert np.array_equal(source.get_rgb(0), frames[0])
    assert torch.equal(source.get(5), ArrayFrameSource(frames, IMAGE_SIZE).get(5))
    assert pulled == list(range(6))  # pulled lazily, only up to the asked frame
    assert source.oldest_available == 2
    with pytest.raises(FrameDroppedError, match="frame 0 .*dropped"):
        source.get(0)
    with pytest.raises(TypeError, match="unknown number"):
        len(source)
    assert source.has_frame(11) and source.num_frames is None
    assert not source.has_frame(12)
    assert source.num_frames == 12
    with pytest.raises(FrameIndexError, match="ended after 12 frames"):
        source.get(12)

    with pytest.raises(FrameSourceError, match="no frames"):
        IterableFrameSource(iter([]), IMAGE_SIZE)
    bad = IterableFrameSource(iter([frames[0], frames[1, :10]]), IMAGE_SIZE)
    with pytest.raises(FrameSourceError, match="frame 1"):
        bad.get(1)
