"""FrameSource behaviour every kind shares: ordering, caches, index checks, closing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from samstream.video.sources import FolderFrameSource, FrameIndexError, natural_sort_key
from synthetic_video import IMAGE_SIZE, NUM_FRAMES


def test_natural_sort_order() -> None:
    names = ["frame10.jpg", "frame2.jpg", "Frame1.jpg", "frame0002b.jpg", "10.jpg", "9.jpg", "00000.jpg", "a.png"]
    ordered = sorted(names, key=natural_sort_key)
    assert ordered == ["00000.jpg", "9.jpg", "10.jpg", "a.png", "Frame1.jpg", "frame2.jpg", "frame0002b.jpg", "frame10.jpg"]
    numeric = [f"{i:05d}.jpg" for i in (3, 11, 0, 100)]
    assert sorted(numeric, key=natural_sort_key) == sorted(numeric, key=lambda p: int(os.path.splitext(p)[0]))


def test_lru_cache_is_bounded(png_folder: Path) -> None:
    source = FolderFrameSource(png_folder, IMAGE_SIZE, cache_size=3)
    for index in range(10):
        source.get(index)
    assert source.cached_indices() == (7, 8, 9)
    assert source.rgb_cache_stats.size == 3
    before = source.cache_stats
    first = source.get(8)
    assert source.cache_stats.hits == before.hits + 1
    first.zero_()  # callers get a copy: the cache is unharmed
    assert not torch.equal(source.get(8), first)
    assert source.cached_indices()[-1] == 8
    with pytest.raises(ValueError):
        source.get_rgb(8)[0, 0, 0] = 1  # read-only view


def test_out_of_range_and_bad_index(png_folder: Path) -> None:
    source = FolderFrameSource(png_folder, IMAGE_SIZE)
    with pytest.raises(FrameIndexError, match=r"frame index 20 .*0\.\.19"):
        source.get(NUM_FRAMES)
    with pytest.raises(IndexError, match="-1"):
        source.get_rgb(-1)
    with pytest.raises(TypeError):
        source.get(1.5)  # type: ignore[arg-type]
    assert source.get(np.int64(3)).shape == (3, IMAGE_SIZE, IMAGE_SIZE)
    assert source.has_frame(19) and not source.has_frame(20)
    assert len(source) == NUM_FRAMES
    source.close()
    with pytest.raises(RuntimeError, match="closed"):
        source.get(0)
