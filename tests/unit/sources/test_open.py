"""open_frame_source picks the right kind of source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from samstream.video.sources import (
    ArrayFrameSource,
    FolderFrameSource,
    FrameSource,
    IterableFrameSource,
    VideoFileFrameSource,
    open_frame_source,
)
from synthetic_video import IMAGE_SIZE


def test_open_frame_source_dispatch(tmp_path: Path, video_path: Path, png_folder: Path, frames: np.ndarray) -> None:
    assert isinstance(open_frame_source(str(png_folder), IMAGE_SIZE), FolderFrameSource)
    assert isinstance(open_frame_source(video_path, IMAGE_SIZE), VideoFileFrameSource)
    assert isinstance(open_frame_source(frames, IMAGE_SIZE), ArrayFrameSource)
    assert isinstance(open_frame_source(list(frames[:2]), IMAGE_SIZE), ArrayFrameSource)
    assert isinstance(open_frame_source(iter(frames), IMAGE_SIZE), IterableFrameSource)
    existing = ArrayFrameSource(frames, IMAGE_SIZE)
    assert open_frame_source(existing, IMAGE_SIZE) is existing
    with pytest.raises(ValueError, match="image_size"):
        open_frame_source(existing, IMAGE_SIZE * 2)
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        open_frame_source(tmp_path / "does_not_exist.mp4", IMAGE_SIZE)
    with pytest.raises(TypeError):
        open_frame_source(42, IMAGE_SIZE)  # type: ignore[arg-type]
    assert isinstance(existing, FrameSource)
