"""Small synthetic videos for the frame-source tests: frames in memory, as files, as a video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

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
    """Encode ``frames`` (T, H, W, 3) uint8 as a video file with a keyframe every ``gop`` frames."""
    import av

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
    mean = torch.tensor((0.485, 0.456, 0.406), dtype=torch.float32)[:, None, None]  # written out on purpose:
    std = torch.tensor((0.229, 0.224, 0.225), dtype=torch.float32)[:, None, None]  # an independent statement
    out -= mean
    out /= std
    return out
