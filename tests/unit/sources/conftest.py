"""Fixtures shared by the frame-source tests: one synthetic clip as an array, a video file and folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic_video import synthetic_frames, write_video


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return synthetic_frames()


@pytest.fixture(scope="module")
def video_path(tmp_path_factory: pytest.TempPathFactory, frames: np.ndarray) -> Path:
    path = tmp_path_factory.mktemp("video") / "square.mp4"
    write_video(path, frames)
    return path


@pytest.fixture(scope="module")
def jpeg_folder(tmp_path_factory: pytest.TempPathFactory, frames: np.ndarray) -> Path:
    folder = tmp_path_factory.mktemp("jpegs")
    for t, array in enumerate(frames):
        Image.fromarray(array).save(folder / f"{t:05d}.jpg", quality=90)
    return folder


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory: pytest.TempPathFactory, frames: np.ndarray) -> Path:
    folder = tmp_path_factory.mktemp("pngs")
    for t, array in enumerate(frames):
        Image.fromarray(array).save(folder / f"frame{t}.PNG")
    return folder
