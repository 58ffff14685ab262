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
    import re
    from pathlib import Path

    from samstream.training.config import load_train_config

    # the recipe is what `make train-synthetic` runs, in its order
    root = Path(__file__).resolve().parents[2]
    makefile = (root / "Makefile").read_text()
    target = makefile.split("\ntrain-synthetic:", 1)[1].split("\n\n", 1)[0]
    files = re.findall(r"samstream train --config (\S+)", target)
    assert files and files[0].endswith("samstream_synthetic_stage1.yaml"), files
    recipe = [load_train_config(root / f, []) for f in files]
    first, second = recipe[0], recipe[1]
    assert first.model.config == "samstream-synthetic" and first.model.init is None  # from scratch
    assert first.model.freeze_image_encoder and not second.model.freeze_image_encoder
    for before, stage in zip(recipe, recipe[1:]):  # each stage starts where the one before it ends
        assert stage.model.config == "samstream-synthetic"
        assert stage.model.init == f"{before.output_dir}/final/model.pt", stage.output_dir
    assert min(s.data.num_frames for s in recipe[2:]) >= 5  # objects leave and come back
    assert any(d.synthetic_shapes and "ring" in d.synthetic_shapes for d in recipe[3].data.datasets)  # thin ones
    assert {d.kind for stage in recipe for d in stage.data.datasets} == {"synthetic"}
    # a synthetic dataset's item i is the clip of seed seed_offset + i, for i < length.
    # The benchmarks' held-out seeds start at 10^7: every seed a stage can draw stays below 5 x 10^6
    assert max(d.seed_offset + d.length for stage in recipe for d in stage.data.datasets) < 5_000_000
    # from stage 3 on, every dataset starts at a seed of its own (stage 2 repeats stage 1's, on the
    # unfrozen encoder). From stage 6 on the offsets are 10^4 apart within ranges of 10^5 seeds, of
    # which a stage draws a few thousand at random: a few clips may come again in a later stage.
    offsets = [d.seed_offset for stage in recipe[2:] for d in stage.data.datasets]
    assert len(set(offsets)) == len(offsets), offsets


def test_every_committed_training_config_parses():
    from pathlib import Path

    from samstream.training.config import load_train_config

    root = Path(__file__).resolve().parents[2]
    files = sorted((root / "configs" / "train").rglob("*.yaml"))
    assert any(f.parent.name == "experiments" for f in files)
    for f in files:
        config = load_train_config(f, [])
        assert config.output_dir.startswith("runs/"), f
        # no seed a run can draw is one of the benchmarks' held-out seeds (from 10^7 on)
        assert max(d.seed_offset + d.length for d in config.data.datasets) <= 10_000_000, f
