"""Mixing datasets into batches, skipping bad samples, and collating clips.

Sampling: :class:`MixBatchSampler` draws each batch from one dataset, chosen with
probability proportional to its weight (as the reference does, so the clips of a
batch have the same number of frames: image datasets give 1-frame batches, video
datasets T-frame ones), with items drawn uniformly at random. Batch ``b`` depends
only on ``(seed, b, rank)``, so a resumed run continues the same sequence by
passing ``start_batch``.

Bad samples (rule): when a reader raises
:class:`~samstream.training.data.sample.BadSampleError` (unreadable or corrupt
file, annotation whose size does not match its image, no object visible on the
clip's first frame, too few annotated frames), :class:`MixedClipDataset` logs a
warning naming the file and the reason on the ``samstream.training.data`` logger,
records it in ``skipped``, and takes the next item of the same dataset instead
(index + 1, wrapping). After ``max_consecutive_skips`` bad items in a row it
raises ``RuntimeError``: a dataset that broken is a configuration error, better
found in the first minute than hours into a run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from samstream.training.config import DataConfig, DatasetSpec
from samstream.training.data.sample import BadSampleError, ClipDataset, ClipSample

__all__ = [
    "SampleKey",
    "SkipRecord",
    "MixBatchSampler",
    "MixedClipDataset",
    "ClipBatch",
    "collate_clips",
    "build_dataset",
    "make_train_loader",
]

LOGGER = logging.getLogger("samstream.training.data")
_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@dataclass(frozen=True)
class SampleKey:
    """Which item to load, and the seed of its random choices (frames, objects, augmentation)."""

    dataset: int
    index: int
    seed: int


@dataclass(frozen=True)
class SkipRecord:
    dataset: str
    path: str
    reason: str


class MixBatchSampler(Sampler[list[SampleKey]]):
    """Batches of :class:`SampleKey`, each from one dataset drawn by weight (see the module docstring).

    Args:
        sizes: number of items of each dataset.
        weights: relative sampling weight of each dataset.
        batch_size: clips per batch.
        seed: base seed.
        num_batches: length (None: endless).
        start_batch: first batch index (to resume).
        rank / world_size: distributed workers draw different batches.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        weights: Sequence[float],
        batch_size: int,
        seed: int,
        *,
        num_batches: int | None = None,
        start_batch: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(sizes) != len(weights) or not sizes:
            raise ValueError(f"sizes and weights must have the same non-zero length, got {len(sizes)} and {len(weights)}")
        if any(s < 1 for s in sizes):
            raise ValueError(f"every dataset must hold at least one item, got sizes {list(sizes)}")
        if any(w <= 0 for w in weights):
            raise ValueError(f"weights must be > 0, got {list(weights)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got {rank} of {world_size}")
        total = float(sum(weights))
        self.sizes, self.probs = list(sizes), np.array([w / total for w in weights])
        self.batch_size, self.seed = batch_size, seed
        self.num_batches, self.start_batch = num_batches, start_batch
        self.rank, self.world_size = rank, world_size

    def batch(self, b: int) -> list[SampleKey]:
        rng = np.random.default_rng([self.seed, b, self.rank])
        dataset = int(rng.choice(len(self.sizes), p=self.probs))
        indices = rng.integers(self.sizes[dataset], size=self.batch_size)
        seeds = rng.integers(2**62, size=self.batch_size)
        return [SampleKey(dataset, int(i), int(s)) for i, s in zip(indices, seeds)]

    def __iter__(self) -> Iterator[list[SampleKey]]:
        b = self.start_batch
        while self.num_batches is None or b < self.num_batches:
            yield self.batch(b)
            b += 1

    def __len__(self) -> int:
        if self.num_batches is None:
            raise TypeError("an endless MixBatchSampler has no length")
        return max(self.num_batches - self.start_batch, 0)


class MixedClipDataset(Dataset):
    """Loads :class:`SampleKey` items from several readers, augments them, skips bad ones.

    Args:
        datasets: the readers.
        augment: called as ``augment(sample, rng)`` (e.g. :class:`~samstream.training.augment.VideoAugment`); None: as read.
        max_consecutive_skips: bad items in a row before giving up.
    """

    def __init__(self, datasets: Sequence[ClipDataset], *, augment=None, max_consecutive_skips: int = 20) -> None:
        if not datasets:
            raise ValueError("datasets must not be empty")
        self.datasets, self.augment = list(datasets), augment
        self.max_consecutive_skips = max_consecutive_skips
        self.skipped: list[SkipRecord] = []

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, key: SampleKey) -> ClipSample:
        dataset = self.datasets[key.dataset]
        rng = np.random.default_rng(key.seed)
        index = key.index
        for _ in range(self.max_consecutive_skips + 1):
            try:
                sample = dataset.load(index, rng)
                return self.augment(sample, rng) if self.augment is not None else sample
            except BadSampleError as exc:
                record = SkipRecord(dataset.name, exc.path, exc.reason)
                self.skipped.append(record)
                LOGGER.warning("skipping bad sample of %s: %s: %s", dataset.name, exc.path, exc.reason)
                index = (index + 1) % len(dataset)
        raise RuntimeError(
            f"{dataset.name}: {self.max_consecutive_skips + 1} bad samples in a row from item {key.index} "
            f"(last: {self.skipped[-1].path}: {self.skipped[-1].reason})"
        )


@dataclass(frozen=True)
class ClipBatch:
    """A collated batch.

    frames: [B, T, 3, S, S] float, ImageNet-normalised (what the model takes).
    masks: [B, T, N, S, S] bool, objects padded to the largest N of the batch.
    object_valid: [B, N] bool, False for padding.
    obj_ids: per clip, its object ids.
    sources: per clip, where it came from.
    """

    frames: torch.Tensor
    masks: torch.Tensor
    object_valid: torch.Tensor
    obj_ids: tuple[tuple[int, ...], ...]
    sources: tuple[str, ...]


def collate_clips(samples: Sequence[ClipSample]) -> ClipBatch:
    """Stack clips of equal length and size, padding objects with empty masks."""
    if not samples:
        raise ValueError("cannot collate an empty batch")
    shape = samples[0].frames.shape
    for sample in samples[1:]:
        if sample.frames.shape != shape:
            raise ValueError(
                f"clips of a batch must share [T, H, W]: {samples[0].source} is {shape[:3]}, "
                f"{sample.source} is {sample.frames.shape[:3]}"
            )
    t, h, w = shape[:3]
    n_max = max(s.masks.shape[1] for s in samples)
    frames = torch.from_numpy(np.stack([s.frames for s in samples])).permute(0, 1, 4, 2, 3)  # [B, T, 3, H, W]
    frames = (frames.float() / 255.0 - _MEAN) / _STD
    masks = torch.zeros((len(samples), t, n_max, h, w), dtype=torch.bool)
    valid = torch.zeros((len(samples), n_max), dtype=torch.bool)
    for b, sample in enumerate(samples):
        n = sample.masks.shape[1]
        masks[b, :, :n] = torch.from_numpy(sample.masks)
        valid[b, :n] = True
    return ClipBatch(frames, masks, valid, tuple(s.obj_ids for s in samples), tuple(s.source for s in samples))


def build_dataset(spec: DatasetSpec, data: DataConfig, synthetic_config=None) -> ClipDataset:
    """The reader a :class:`DatasetSpec` names."""
    from samstream.training.data.images import InstanceFolderDataset, SA1BDataset
    from samstream.training.data.synthetic import SyntheticDataset
    from samstream.training.data.videos import DavisDataset, SAVDataset
    from samstream.training.synthetic import SyntheticVideoConfig

    if spec.kind == "synthetic":
        config = synthetic_config or SyntheticVideoConfig(
            num_frames=data.num_frames,
            background=spec.synthetic_background,
            num_objects=spec.synthetic_num_objects,
            num_distractors=spec.synthetic_num_distractors,
            distractors_annotated=spec.synthetic_distractors_annotated,
            object_size=spec.synthetic_object_size,
            **({"shapes": tuple(spec.synthetic_shapes)} if spec.synthetic_shapes else {}),
        )
        return SyntheticDataset(config, length=spec.length, seed_offset=spec.seed_offset,
                                images=spec.synthetic_images, max_objects=data.max_objects, name=spec.name)
    if spec.kind == "sa1b":
        return SA1BDataset(spec.path, max_objects=data.max_objects, name=spec.name)
    if spec.kind == "folder":
        return InstanceFolderDataset(spec.path, max_objects=data.max_objects, name=spec.name)
    if spec.kind == "davis":
        return DavisDataset(spec.path, num_frames=data.num_frames, max_objects=data.max_objects, name=spec.name)
    if spec.kind == "sav":
        return SAVDataset(spec.path, spec.annotations_path, num_frames=data.num_frames,
                          max_objects=data.max_objects, name=spec.name)
    raise ValueError(f"unknown dataset kind {spec.kind!r}")  # pragma: no cover - Literal-checked


def make_train_loader(
    data: DataConfig,
    image_size: int,
    batch_size: int,
    seed: int,
    *,
    start_batch: int = 0,
    num_batches: int | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """A DataLoader of :class:`ClipBatch` over the configured mix, augmented to ``image_size``."""
    from samstream.training.augment import VideoAugment

    datasets = [build_dataset(spec, data) for spec in data.datasets]
    sampler = MixBatchSampler(
        [len(d) for d in datasets], [s.weight for s in data.datasets], batch_size, seed,
        num_batches=num_batches, start_batch=start_batch, rank=rank, world_size=world_size,
    )
    mixed = MixedClipDataset(datasets, augment=VideoAugment(data.augment, image_size, max_objects=data.max_objects))
    return DataLoader(mixed, batch_sampler=sampler, collate_fn=collate_clips, num_workers=data.num_workers)
