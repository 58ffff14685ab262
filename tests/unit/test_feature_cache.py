"""The frozen-encoder feature cache: same features and losses as the encoder, from disk on a hit."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_config

from samstream.build import build_model
from samstream.training.config import load_train_config
from samstream.training.feature_cache import FeatureCache
from samstream.training.model_yaml import write_reference_yaml
from samstream.training.trainer import Trainer, freeze_image_encoder


@pytest.fixture()
def frozen_model():
    model = build_model(tiny_config(), accel=None, apply_postprocessing=False).train()
    freeze_image_encoder(model)
    return model


def test_a_hit_gives_the_encoder_features_without_running_it(frozen_model, tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path / "cache", frozen_model)
    frames = torch.randn(2, 3, frozen_model.image_size, frozen_model.image_size)
    first = cache.features(frozen_model, frames)
    assert (cache.hits, cache.misses) == (0, 1) and len(list((tmp_path / "cache").iterdir())) == 1
    want = frozen_model.encode_images(frames)

    def no_encoder(*args, **kwargs):
        raise AssertionError("the encoder ran on a cache hit")

    monkeypatch.setattr(frozen_model, "encode_images", no_encoder)
    again = cache.features(frozen_model, frames)
    assert (cache.hits, cache.misses) == (1, 1)
    for got, first_level, expected in zip(again.features, first.features, want.features):
        assert torch.equal(got, first_level) and torch.allclose(got, expected)
    assert cache.path_for(frames + 1) != cache.path_for(frames)  # other frames, other key


def test_other_encoder_weights_do_not_share_entries(frozen_model, tmp_path):
    frames = torch.randn(1, 3, frozen_model.image_size, frozen_model.image_size)
    before = FeatureCache(tmp_path, frozen_model).path_for(frames)
    with torch.no_grad():
        next(frozen_model.image_encoder.parameters()).add_(1.0)
    assert FeatureCache(tmp_path, frozen_model).path_for(frames) != before


def test_a_trainable_encoder_is_refused(tmp_path):
    model = build_model(tiny_config(), accel=None, apply_postprocessing=False)
    with pytest.raises(ValueError, match="freeze_image_encoder"):
        FeatureCache(tmp_path, model)


@pytest.mark.parametrize("length, batch_size", [(1, 1), (2, 2)])  # (2, 2): images run together, cached one by one
def test_training_with_the_cache_equals_training_without(tmp_path, length, batch_size):
    yaml_path = tmp_path / "tiny.yaml"
    write_reference_yaml(yaml_path, tiny_config())
    common = [
        f"model.config={yaml_path}", "model.freeze_image_encoder=true", "steps=3", "schedule.total_steps=3",
        "schedule.warmup_steps=0", "data.num_frames=1", "data.max_objects=1", "logging.progress_bar=false",
        f'data.datasets=[{{"kind": "synthetic", "length": {length}, "synthetic_images": true}}]', f"batch_size={batch_size}",
        "data.augment.hflip_prob=0", "data.augment.scale_range=[1.0, 1.0]", "data.augment.brightness=0",
        "data.augment.contrast=0", "data.augment.saturation=0", "seed=3",
    ]
    plain = Trainer(load_train_config(None, common + [f"output_dir={tmp_path / 'a'}"])).run()
    cached_trainer = Trainer(load_train_config(
        None, common + [f"output_dir={tmp_path / 'b'}", f"data.feature_cache={tmp_path / 'cache'}"]
    ))
    cached = cached_trainer.run()
    cache = cached_trainer.feature_cache
    # each distinct image is encoded once; every later sight of it is a hit (3 steps of batch_size images)
    assert cache.misses <= length and cache.misses + cache.hits == 3 * batch_size and cache.hits >= 3 * batch_size - length
    for a, b in zip(plain.history, cached.history):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-6)


def test_the_cache_needs_a_frozen_encoder_in_the_config(tmp_path):
    config = load_train_config(None, [f"output_dir={tmp_path}", f"data.feature_cache={tmp_path / 'c'}", "steps=1"])
    with pytest.raises(ValueError, match="freeze_image_encoder"):
        Trainer(config).run()


def test_train_only_without_the_encoder_may_use_the_cache(tmp_path):
    yaml_path = tmp_path / "tiny.yaml"
    write_reference_yaml(yaml_path, tiny_config())
    trainer = Trainer(load_train_config(None, [
        f"output_dir={tmp_path / 'run'}", f"model.config={yaml_path}", "model.train_only=[sam_mask_decoder]",
        f"data.feature_cache={tmp_path / 'cache'}", "steps=1", "schedule.total_steps=1", "schedule.warmup_steps=0",
        "data.num_frames=1", "data.max_objects=1", "logging.progress_bar=false",
        'data.datasets=[{"kind": "synthetic", "length": 1, "synthetic_images": true}]',
    ]))
    trainer.run()
    assert trainer.feature_cache.misses == 1
