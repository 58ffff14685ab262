"""Frame folders: the reference recipe exactly, natural ordering, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from samstream.video.sources import ArrayFrameSource, FolderFrameSource, FrameDecodeError, FrameSourceError
from synthetic_video import HEIGHT, IMAGE_SIZE, NUM_FRAMES, WIDTH, reference_recipe


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


def test_frames_above_the_pixel_limit_are_refused_before_decoding(tmp_path):
    from fake_images import fake_png

    from samstream.image.transforms import ImageTooLargeError
    from samstream.video.sources import open_frame_source

    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(3):
        fake_png(folder / f"{t:05d}.png", 300, 200)
    with pytest.raises(ImageTooLargeError, match=r"00000.png is 300x200 = 0.1 megapixels.*--max-pixels 50000"):
        open_frame_source(folder, 64, max_pixels=50_000)
    assert open_frame_source(folder, 64).num_frames == 3
