import json
import logging

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from samstream.training.augment import VideoAugment, apply_params, AugmentParams
from samstream.training.config import AugmentConfig, DataConfig, DatasetSpec
from samstream.training.data.images import InstanceFolderDataset, SA1BDataset
from samstream.training.data.mix import (
    MixBatchSampler,
    MixedClipDataset,
    SampleKey,
    collate_clips,
    make_train_loader,
)
from samstream.training.data.sample import BadSampleError, ClipSample
from samstream.training.data.synthetic import SyntheticDataset
from samstream.training.data.videos import DavisDataset, SAVDataset
from samstream.training.synthetic import SyntheticVideoConfig, make_video
from samstream.training.synthetic_export import write_davis_dataset


def _rng(seed=0):
    return np.random.default_rng(seed)


def _rle(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode()}


def _square(h, w, top, left, side):
    mask = np.zeros((h, w), dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


def _write_sa1b(root, stem, image_hw=(40, 60), mask_hw=None, masks=None):
    h, w = image_hw
    Image.fromarray(np.full((h, w, 3), 100, np.uint8)).save(root / f"{stem}.jpg")
    mh, mw = mask_hw or image_hw
    masks = masks if masks is not None else [_square(mh, mw, 5, 5, 10), _square(mh, mw, 20, 30, 8)]
    annotations = [{"segmentation": _rle(m), "area": int(m.sum())} for m in masks]
    (root / f"{stem}.json").write_text(json.dumps({"image": {"height": h, "width": w}, "annotations": annotations}))


def test_sa1b_reads_rle_masks_as_one_frame_clip(tmp_path):
    _write_sa1b(tmp_path, "sa_1")
    sample = SA1BDataset(tmp_path, max_objects=5).load(0, _rng())
    assert sample.frames.shape == (1, 40, 60, 3) and sample.masks.shape == (1, 2, 40, 60)
    np.testing.assert_array_equal(sample.masks[0, 0], _square(40, 60, 5, 5, 10))
    assert sample.obj_ids == (1, 2)
    assert SA1BDataset(tmp_path, max_objects=1).load(0, _rng()).masks.shape[1] == 1


def test_sa1b_bad_inputs_name_the_file(tmp_path):
    _write_sa1b(tmp_path, "sa_1", mask_hw=(30, 60))  # annotation does not match its image
    _write_sa1b(tmp_path, "sa_2", masks=[])  # no masks
    _write_sa1b(tmp_path, "sa_3")
    (tmp_path / "sa_3.jpg").write_bytes(b"\xff\xd8\xff garbage")  # corrupt image
    dataset = SA1BDataset(tmp_path)
    with pytest.raises(BadSampleError, match=r"sa_1\.json.*does not match"):
        dataset.load(0, _rng())
    with pytest.raises(BadSampleError, match=r"sa_2\.json"):
        dataset.load(1, _rng())
    with pytest.raises(BadSampleError, match=r"sa_3\.jpg.*cannot read image"):
        dataset.load(2, _rng())


def test_instance_folder_id_map_and_per_instance_pngs(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks" / "b").mkdir(parents=True)
    for stem in ("a", "b"):
        Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "images" / f"{stem}.png")
    ids = np.zeros((20, 30), np.uint8)
    ids[2:6, 2:6] = 3
    ids[10:15, 10:20] = 7
    Image.fromarray(ids, mode="L").save(tmp_path / "masks" / "a.png")
    Image.fromarray(_square(20, 30, 1, 1, 5).astype(np.uint8) * 255).save(tmp_path / "masks" / "b" / "4.png")
    dataset = InstanceFolderDataset(tmp_path, max_objects=5)
    first = dataset.load(0, _rng())
    assert first.obj_ids == (3, 7) and first.masks[0, 1].sum() == 50
    second = dataset.load(1, _rng())
    assert second.obj_ids == (4,) and second.masks[0, 0].sum() == 25


def test_sav_masklets_with_absent_objects(tmp_path):
    frames_root, video = tmp_path / "JPEGImages_24fps", "sav_000001"
    (frames_root / video).mkdir(parents=True)
    h, w = 24, 32
    for t in range(0, 12):
        Image.fromarray(np.full((h, w, 3), 10 * t, np.uint8)).save(frames_root / video / f"{t:05d}.jpg")
    masklet = []
    for i in range(3):  # annotated every 4th frame
        obj0 = _rle(_square(h, w, 2, 2 + i, 6))
        obj1 = None if i == 1 else _rle(_square(h, w, 12, 12, 5))
        masklet.append([obj0, obj1])
    (tmp_path / f"{video}_manual.json").write_text(json.dumps({"masklet": masklet, "video_frame_count": 12}))
    dataset = SAVDataset(frames_root, tmp_path, num_frames=3, max_objects=3)
    sample = dataset.load(0, _rng())
    assert sample.frames.shape == (3, h, w, 3) and sample.masks.shape == (3, 2, h, w)
    assert sample.masks[1, 1].sum() == 0 and sample.masks[2, 1].sum() == 25
    assert abs(int(sample.frames[1].mean()) - 40) <= 2  # annotated frame 1 is video frame 4
    with pytest.raises(BadSampleError, match="annotated frames"):
        SAVDataset(frames_root, tmp_path, num_frames=4).load(0, _rng())


def test_davis_reader_reads_the_synthetic_export(tmp_path):
    config = SyntheticVideoConfig(num_frames=5, height=48, width=64, num_objects=(2, 2))
    write_davis_dataset(tmp_path, [3], config)
    sample = DavisDataset(tmp_path, num_frames=5, max_objects=5).load(0, _rng())
    clip = make_video(3, config)
    visible_first = [i for i in range(2) if clip.masks[0, i].any()]
    assert sample.obj_ids == tuple(clip.obj_ids[i] for i in visible_first)
    np.testing.assert_array_equal(sample.masks, clip.masks[:, visible_first])


def test_sparse_annotations_use_only_annotated_frames(tmp_path):
    # YouTube-VOS annotates every 5th frame: frames without a PNG are left out
    config = SyntheticVideoConfig(num_frames=6, height=32, width=32)
    write_davis_dataset(tmp_path, [2], config)
    for t in (1, 2, 4, 5):
        (tmp_path / "Annotations" / "synth_00002" / f"{t:05d}.png").unlink()
    sample = DavisDataset(tmp_path, num_frames=2, max_objects=5).load(0, _rng())
    assert sample.source.endswith("@00000") and sample.frames.shape[0] == 2
    clip = make_video(2, config)
    np.testing.assert_array_equal(sample.masks[1], clip.masks[3][[i - 1 for i in sample.obj_ids]])


def test_davis_mismatched_annotation_is_reported(tmp_path):
    write_davis_dataset(tmp_path, [1], SyntheticVideoConfig(num_frames=2, height=32, width=32))
    png = tmp_path / "Annotations" / "synth_00001" / "00001.png"
    Image.fromarray(np.zeros((16, 16), np.uint8), mode="L").save(png)
    with pytest.raises(BadSampleError, match=r"00001\.png.*does not match"):
        DavisDataset(tmp_path, num_frames=2).load(0, _rng())


class _Flaky:
    """A reader whose even items are bad."""

    name = "flaky"

    def __init__(self, bad_all=False):
        self.bad_all = bad_all

    def __len__(self):
        return 4

    def load(self, index, rng):
        if self.bad_all or index % 2 == 0:
            raise BadSampleError(f"/data/item{index}.jpg", "cannot read image")
        frames = np.full((1, 8, 8, 3), index, np.uint8)
        return ClipSample(frames, np.ones((1, 1, 8, 8), bool), (1,), f"flaky:{index}")


def test_bad_samples_are_logged_and_skipped(caplog):
    mixed = MixedClipDataset([_Flaky()])
    with caplog.at_level(logging.WARNING, logger="samstream.training.data"):
        sample = mixed[SampleKey(0, 2, seed=0)]
    assert sample.source == "flaky:3"
    assert "/data/item2.jpg" in caplog.text
    assert mixed.skipped[0].path == "/data/item2.jpg"
    with pytest.raises(RuntimeError, match="bad samples in a row"):
        MixedClipDataset([_Flaky(bad_all=True)], max_consecutive_skips=3)[SampleKey(0, 0, 0)]


def test_sampler_weights_determinism_and_resume():
    sampler = MixBatchSampler([10, 1000], [1.0, 3.0], batch_size=2, seed=5, num_batches=4000)
    batches = list(sampler)
    share = np.mean([b[0].dataset == 1 for b in batches])
    assert 0.72 < share < 0.78
    assert all(len({k.dataset for k in b}) == 1 for b in batches)  # one dataset per batch
    resumed = list(MixBatchSampler([10, 1000], [1.0, 3.0], 2, 5, num_batches=4000, start_batch=1234))
    assert resumed == batches[1234:]
    other_rank = MixBatchSampler([10, 1000], [1.0, 3.0], 2, 5, rank=1, world_size=2).batch(0)
    assert other_rank != batches[0]


def test_collate_pads_objects_and_normalises():
    a = ClipSample(np.zeros((2, 8, 8, 3), np.uint8), np.ones((2, 1, 8, 8), bool), (1,), "a")
    b = ClipSample(np.full((2, 8, 8, 3), 255, np.uint8), np.ones((2, 3, 8, 8), bool), (1, 2, 3), "b")
    batch = collate_clips([a, b])
    assert batch.frames.shape == (2, 2, 3, 8, 8) and batch.masks.shape == (2, 2, 3, 8, 8)
    assert batch.object_valid.tolist() == [[True, False, False], [True, True, True]]
    assert not batch.masks[0, :, 1:].any()
    assert float(batch.frames[0, 0, 0, 0, 0]) == pytest.approx(-0.485 / 0.229, rel=1e-5)
    with pytest.raises(ValueError, match="share"):
        collate_clips([a, ClipSample(np.zeros((1, 8, 8, 3), np.uint8), np.ones((1, 1, 8, 8), bool), (1,), "c")])


def test_augmentation_is_the_same_for_every_frame():
    frame = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    mask = _square(40, 50, 10, 5, 20)
    sample = ClipSample(np.stack([frame] * 4), np.stack([mask[None]] * 4), (1,), "x")
    augment = VideoAugment(AugmentConfig(hue=0.05), size=32)
    out = augment(sample, _rng(3))
    assert out.frames.shape == (4, 32, 32, 3) and out.masks.shape == (4, 1, 32, 32)
    for t in range(1, 4):
        np.testing.assert_array_equal(out.frames[t], out.frames[0])
        np.testing.assert_array_equal(out.masks[t], out.masks[0])


def test_augmentation_moves_masks_with_pixels():
    frame = np.zeros((40, 40, 3), np.uint8)
    mask = _square(40, 40, 8, 4, 12)
    frame[mask] = 255
    sample = ClipSample(frame[None], mask[None, None], (1,), "x")
    params = AugmentParams(flip=True, crop=(4, 0, 30, 30), brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0)
    out = apply_params(sample, params, 60)
    bright = out.frames[0, ..., 0] > 127
    assert (bright == out.masks[0, 0]).mean() > 0.98
    # columns 4..15 of the 30 px crop -> 8..31 at 2x -> 28..51 after the flip
    cols = np.flatnonzero(out.masks[0, 0].any(axis=0))
    assert abs(cols.min() - 28) <= 1 and abs(cols.max() - 51) <= 1


def test_crop_that_hides_every_object_is_redrawn():
    mask = _square(100, 100, 0, 0, 3)  # a tiny object in a corner
    sample = ClipSample(np.zeros((1, 100, 100, 3), np.uint8), mask[None, None], (1,), "x")
    augment = VideoAugment(AugmentConfig(scale_range=(0.1, 0.1)), size=50, max_crop_tries=2)
    for seed in range(5):
        assert augment(sample, _rng(seed)).masks[0].any()


def test_loader_over_synthetic_mix():
    data = DataConfig(
        datasets=(DatasetSpec(kind="synthetic", weight=1.0),
                  DatasetSpec(kind="synthetic", weight=1.0, synthetic_images=True, seed_offset=10**6)),
        num_frames=3,
    )
    loader = make_train_loader(data, image_size=64, batch_size=2, seed=0, num_batches=4)
    batches = list(loader)
    assert len(batches) == 4
    lengths = {b.frames.shape[1] for b in batches}
    assert lengths <= {1, 3}
    for batch in batches:
        assert batch.frames.shape[-2:] == (64, 64) and batch.masks.shape[-2:] == (64, 64)
        assert batch.masks[:, 0][batch.object_valid].flatten(1).any(dim=1).all()  # prompted objects are visible


def test_synthetic_dataset_is_deterministic():
    dataset = SyntheticDataset(SyntheticVideoConfig(num_frames=2, height=32, width=32), length=5)
    a, b = dataset.load(2, _rng(1)), dataset.load(2, _rng(1))
    np.testing.assert_array_equal(a.frames, b.frames)
    assert a.source == "synthetic:2"
