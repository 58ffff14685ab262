"""image.transforms: the two resize recipes share one normalization and validate their input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samstream.image.transforms import IMAGENET_MEAN, IMAGENET_STD, preprocess, preprocess_frame


def test_preprocess_frame_validates_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        preprocess_frame(np.zeros((4, 4, 3), dtype=np.float32), 8)
    with pytest.raises(ValueError, match="image_size"):
        preprocess_frame(np.zeros((4, 4, 3), dtype=np.uint8), 0)


@pytest.mark.parametrize("recipe", [preprocess, preprocess_frame])
def test_flat_colour_normalizes_with_imagenet_statistics(recipe) -> None:
    # any resize of a flat image is flat, so both recipes must give (c / 255 - mean) / std
    colour = np.array([200, 30, 117], dtype=np.uint8)
    rgb = np.broadcast_to(colour, (20, 30, 3)).copy()
    out = recipe(rgb, 16)
    assert out.shape == (3, 16, 16) and out.dtype == torch.float32
    expected = (torch.tensor(colour / 255.0) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(out, expected.float()[:, None, None].expand(3, 16, 16), atol=1e-5, rtol=0)


# ---------------------------------------------------------------- the pixel limit (issue 8)


def test_images_above_the_pixel_limit_are_refused_from_the_header(tmp_path):
    from fake_images import fake_png

    from samstream.image.transforms import ImageTooLargeError, load_image, read_image_size

    bomb = fake_png(tmp_path / "bomb.png", 20000, 20000)  # PIL alone would raise DecompressionBombError
    with pytest.raises(ImageTooLargeError) as info:
        load_image(bomb)
    message = str(info.value)
    assert "20000x20000 = 400.0 megapixels" in message and "--max-pixels 64000000" in message
    assert "tiles" in message and "Downscale" in message
    assert read_image_size(fake_png(tmp_path / "ok.png", 8000, 8000)) == (8000, 8000)  # 64 MP: at the limit
    with pytest.raises(ImageTooLargeError, match="above the limit of 0.0 megapixels"):
        read_image_size(tmp_path / "ok.png", max_pixels=100)
    assert read_image_size(bomb, max_pixels=400_000_000) == (20000, 20000)  # raised on purpose: allowed


def test_pil_guard_is_restored_after_reading(tmp_path):
    from fake_images import fake_png
    from PIL import Image

    from samstream.image.transforms import read_image_size

    before = Image.MAX_IMAGE_PIXELS
    read_image_size(fake_png(tmp_path / "a.png", 10, 10))
    assert Image.MAX_IMAGE_PIXELS == before
