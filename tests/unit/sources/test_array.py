"""In-memory frames: arrays, tensors and lists."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from PIL import Image

from samstream.video.sources import ArrayFrameSource, FrameSourceError
from synthetic_video import HEIGHT, IMAGE_SIZE, NUM_FRAMES, WIDTH


def test_array_sources(frames: np.ndarray) -> None:
    hwc = ArrayFrameSource(frames, IMAGE_SIZE)
    chw = ArrayFrameSource(torch.from_numpy(frames).permute(0, 3, 1, 2), IMAGE_SIZE)
    as_list = ArrayFrameSource([Image.fromarray(f) for f in frames[:5]], IMAGE_SIZE)
    for source in (hwc, chw, as_list):
        assert (source.video_height, source.video_width) == (HEIGHT, WIDTH)
        assert np.array_equal(source.get_rgb(3), frames[3])
        assert torch.equal(source.get(3), hwc.get(3))
    assert chw.num_frames == NUM_FRAMES and as_list.num_frames == 5

    with pytest.raises(FrameSourceError, match="uint8"):
        ArrayFrameSource(frames.astype(np.float32), IMAGE_SIZE)
    with pytest.raises(FrameSourceError, match="shape"):
        ArrayFrameSource(frames[..., :2], IMAGE_SIZE)
    with pytest.raises(FrameSourceError, match="frame 1"):
        ArrayFrameSource([frames[0], frames[1, :10]], IMAGE_SIZE)
    with pytest.raises(FrameSourceError, match="empty"):
        ArrayFrameSource([], IMAGE_SIZE)
    with pytest.raises(ValueError, match="image_size"):
        ArrayFrameSource(frames, -3)
