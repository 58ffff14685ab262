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
