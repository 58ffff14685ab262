"""The synthetic generator as a dataset: item i is the clip of seed ``seed_offset + i``."""

from __future__ import annotations

import numpy as np

from samstream.training.data.sample import ClipSample, keep_first_frame_objects
from samstream.training.synthetic import SyntheticVideoConfig, make_image, make_video

__all__ = ["SyntheticDataset"]


class SyntheticDataset:
    """Synthetic clips (or 1-frame images with ``images=True``), deterministic per index.

    Objects not visible on the first frame are dropped (they cannot be prompted); the
    generator always shows at least one object on frame 0 unless it left at once.
    """

    def __init__(
        self,
        config: SyntheticVideoConfig = SyntheticVideoConfig(),
        *,
        length: int = 100_000,
        seed_offset: int = 0,
        images: bool = False,
        max_objects: int = 3,
        name: str | None = None,
    ) -> None:
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        self.config, self.length, self.seed_offset = config, length, seed_offset
        self.images, self.max_objects = images, max_objects
        self.name = name or ("synthetic-images" if images else "synthetic")

    def __len__(self) -> int:
        return self.length

    def load(self, index: int, rng: np.random.Generator) -> ClipSample:
        seed = self.seed_offset + index
        clip = make_image(seed, self.config) if self.images else make_video(seed, self.config)
        masks, obj_ids = keep_first_frame_objects(
            clip.masks, clip.obj_ids, self.max_objects, rng, f"{self.name} seed {seed}"
        )
        return ClipSample(clip.frames, masks, obj_ids, f"{self.name}:{seed}")
