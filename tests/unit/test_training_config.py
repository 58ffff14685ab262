import json

import pytest

from samstream.training.config import (
    DatasetSpec,
    TrainConfig,
    TrainConfigError,
    apply_overrides,
    config_to_dict,
    load_train_config,
    save_train_config,
)


def test_overrides_are_parsed_into_typed_fields():
    config = apply_overrides(
        TrainConfig(),
        ["optimizer.lr=1e-4", "steps=250", "precision=bf16", "data.augment.scale_range=[0.3, 1.0]",
         "model.init=null", "logging.tensorboard=true", "data.datasets.0.weight=2"],
    )
    assert config.optimizer.lr == 1e-4 and isinstance(config.optimizer.lr, float)
    assert config.steps == 250
    assert config.precision == "bf16"
    assert config.data.augment.scale_range == (0.3, 1.0)
    assert config.model.init is None and config.logging.tensorboard is True
    assert config.data.datasets[0].weight == 2.0


@pytest.mark.parametrize(
    "override, key",
    [
        ("optimizer.lrr=1", "optimizer.lrr"),
        ("steps=abc", "steps"),
        ("precision=fp8", "precision"),
        ("data.datasets.3.weight=1", "data.datasets.3.weight"),
        ("steps=0", "steps"),
        ("optimizer.layer_decay=2", "layer_decay"),
        ("no_equals_sign", "no_equals_sign"),
        ("steps.x=1", "steps.x"),
    ],
)
def test_bad_overrides_name_the_key(override, key):
    with pytest.raises(TrainConfigError, match=key.replace(".", r"\.")):
        apply_overrides(TrainConfig(), [override])


def test_yaml_and_json_round_trip(tmp_path):
    config = TrainConfig(
        steps=42,
        data=TrainConfig().data.__class__(
            datasets=(DatasetSpec(kind="synthetic", weight=3.0), DatasetSpec(kind="davis", path="/data/davis")),
        ),
    )
    for name in ("run.yaml", "run.json"):
        save_train_config(tmp_path / name, config)
        assert load_train_config(tmp_path / name) == config
    assert json.loads((tmp_path / "run.json").read_text())["data"]["datasets"][1]["kind"] == "davis"


def test_file_errors_name_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optimizer:\n  lr: fast\n")
    with pytest.raises(TrainConfigError, match=r"bad\.yaml.*optimizer\.lr"):
        load_train_config(path)
    path.write_text("data:\n  datasets:\n    - kind: davis\n")
    with pytest.raises(TrainConfigError, match="path is required"):
        load_train_config(path)


def test_to_dict_is_plain():
    tree = config_to_dict(TrainConfig())
    assert isinstance(tree["data"]["datasets"], list) and isinstance(tree["optimizer"]["betas"], list)


def test_the_bundled_model_recipe_parses():
    from pathlib import Path

    from samstream.training.config import load_train_config

    recipes = Path(__file__).resolve().parents[2] / "configs" / "train"
    first = load_train_config(recipes / "samstream_synthetic_stage1.yaml", [])
    second = load_train_config(recipes / "samstream_synthetic_stage2.yaml", [])
    third = load_train_config(recipes / "samstream_synthetic_stage3.yaml", [])
    fourth = load_train_config(recipes / "samstream_synthetic_stage4.yaml", [])
    fifth = load_train_config(recipes / "samstream_synthetic_stage5.yaml", [])
    sixth = load_train_config(recipes / "samstream_synthetic_stage6.yaml", [])
    seventh = load_train_config(recipes / "samstream_synthetic_stage7.yaml", [])
    eighth = load_train_config(recipes / "samstream_synthetic_stage8.yaml", [])
    ninth = load_train_config(recipes / "samstream_synthetic_stage9.yaml", [])
    assert first.model.config == "samstream-synthetic" and first.model.init is None  # from scratch
    assert first.model.freeze_image_encoder and not second.model.freeze_image_encoder
    assert second.model.init == f"{first.output_dir}/final/model.pt"  # stage 2 starts where stage 1 ends
    assert third.model.init == f"{second.output_dir}/final/model.pt"  # and stage 3 where stage 2 ends
    assert fourth.model.init == f"{third.output_dir}/final/model.pt"  # stage 4 where stage 3 ends
    assert fifth.model.init == f"{fourth.output_dir}/final/model.pt"  # stage 5 where stage 4 ends
    assert sixth.model.init == f"{fifth.output_dir}/final/model.pt"  # stage 6 where stage 5 ends
    assert seventh.model.init == f"{sixth.output_dir}/final/model.pt"  # stage 7 where stage 6 ends
    assert eighth.model.init == f"{seventh.output_dir}/final/model.pt"  # stage 8 where stage 7 ends
    assert ninth.model.init == f"{eighth.output_dir}/final/model.pt"  # stage 9 where stage 8 ends
    assert min(s.data.num_frames for s in (third, fourth, fifth, sixth, seventh, eighth, ninth)) >= 5  # objects leave and come back
    assert any(d.synthetic_shapes and "ring" in d.synthetic_shapes for d in fourth.data.datasets)  # thin ones
    stages = [d for stage in (first, second, third, fourth, fifth, sixth, seventh, eighth, ninth) for d in stage.data.datasets]
    assert {d.kind for d in stages} == {"synthetic"}
    # the benchmarks' held-out seeds start at 10^7: every clip a stage draws stays below 5 x 10^6
    recipe = (first, second, third, fourth, fifth, sixth, seventh, eighth, ninth)
    assert max(d.seed_offset + stage.steps for stage in recipe for d in stage.data.datasets) < 5_000_000
    # from stage 3 on, every stage draws new clips (stage 2 repeats stage 1's, on the unfrozen encoder)
    drawn = [range(d.seed_offset, d.seed_offset + stage.steps) for stage in recipe[2:] for d in stage.data.datasets]
    overlaps = [(a, b) for i, a in enumerate(drawn) for b in drawn[i + 1 :] if a.start < b.stop and b.start < a.stop]
    assert not overlaps, overlaps
