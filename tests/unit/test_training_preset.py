from importlib import resources

import torch

from samstream.build import build_model
from samstream.config import load_config
from samstream.training.model_yaml import reference_yaml_tree
from samstream.training.optim import describe_params

PRESET = resources.files("samstream") / "assets" / "samstream_synthetic.yaml"


def test_preset_loads_and_is_small():
    config, _ = load_config(PRESET)
    assert config.image_size == 256 and config.hidden_dim == 128 and config.mem_dim == 64
    model = build_model(config)
    params = sum(p.numel() for p in model.parameters())
    assert params * 4 <= 25e6  # fits the ~25 MB budget even as float32


def test_preset_encodes_a_256px_frame():
    model = build_model(PRESET).eval()
    with torch.no_grad():
        feats = model.encode_images(torch.randn(1, 3, 256, 256))
    assert tuple(feats.image_embed.shape) == (1, 128, 16, 16)
    assert [tuple(f.shape[-2:]) for f in feats.features] == [(64, 64), (32, 32), (16, 16)]
    assert all(torch.isfinite(f).all() for f in feats.features)


def test_preset_is_in_the_reference_format_with_official_flags():
    config, _ = load_config(PRESET)
    tree = reference_yaml_tree(config)["model"]
    assert tree["_target_"] == "sam2.modeling.sam2_base.SAM2Base"
    assert tree["image_encoder"]["trunk"]["_target_"] == "sam2.modeling.backbones.hieradet.Hiera"
    # the SAM 2.1 switches: object scores, pointers in memory attention, multimask tracking
    for flag in ("pred_obj_scores", "use_obj_ptrs_in_encoder", "multimask_output_for_tracking", "no_obj_embed_spatial"):
        assert tree[flag] is True


def test_layer_decay_sees_the_nine_trunk_blocks():
    model = build_model(PRESET)
    infos = {i.name: i for i in describe_params(model)}
    assert "image_encoder.trunk.blocks.8.attn.qkv.weight" in infos
    assert "image_encoder.trunk.blocks.9.attn.qkv.weight" not in infos
