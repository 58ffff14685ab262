"""Reading configs in the reference YAML format, and the presets."""

from __future__ import annotations

import copy

import pytest
import torch
import yaml

from samstream.build import build_model
from samstream.config import ConfigError, SAM2Config, config_from_dict, load_config
from samstream.modeling.sam2 import SAM2Model
from samstream.presets import PRESET_NAMES, preset_config


def _tree(tiny_model_files):
    return yaml.safe_load(tiny_model_files.config.read_text())


def test_tiny_yaml_maps_onto_typed_config(tiny_model_files):
    from tiny import tiny_config

    config, _ = load_config(tiny_model_files.config)
    assert isinstance(config, SAM2Config)
    assert config == tiny_config()
    assert config.image_size == 128
    assert config.image_encoder.trunk.stages == (1, 1, 2, 1)
    assert config.memory_attention.layer.cross_attention.kv_in_dim == 16


def test_unknown_key_is_named(tiny_model_files):
    tree = _tree(tiny_model_files)
    tree["model"]["image_encoder"]["trunk"]["embed_dimm"] = 32
    with pytest.raises(ConfigError, match="embed_dimm"):
        config_from_dict(tree)
    tree = _tree(tiny_model_files)
    tree["model"]["not_a_flag"] = True
    with pytest.raises(ConfigError, match="not_a_flag"):
        config_from_dict(tree)


def test_unknown_target_and_missing_model(tiny_model_files):
    tree = _tree(tiny_model_files)
    tree["model"]["memory_encoder"]["_target_"] = "sam2.modeling.Nope"
    with pytest.raises(ConfigError, match="Nope"):
        config_from_dict(tree)
    with pytest.raises(ConfigError, match="model"):
        config_from_dict({"trainer": {}})


def test_exponent_without_dot_is_a_number_as_in_the_official_files(tiny_model_files, tmp_path):
    # the official configs write ``layer_scale_init_value: 1e-6``: a string to PyYAML, a float to Hydra
    text = open(tiny_model_files.config).read()
    assert "layer_scale_init_value: 1.0e-06" in text
    path = tmp_path / "official_style.yaml"
    path.write_text(text.replace("layer_scale_init_value: 1.0e-06", "layer_scale_init_value: 1e-6"))
    config, _ = load_config(path)
    assert config.memory_encoder.fuser.layer.layer_scale_init_value == pytest.approx(1e-6)
    assert config == load_config(tiny_model_files.config)[0]
    # integers and strings keep their types
    from samstream.config import load_yaml

    assert load_yaml("a: 12\nb: 1e3\nc: 1_0e-2\nd: e5\ne: .5\nf: '1e-6'") == {
        "a": 12, "b": 1000.0, "c": 0.1, "d": "e5", "e": 0.5, "f": "1e-6"
    }


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(bad)


def test_non_default_image_size_runs(tiny_model_files):
    """A config at image_size 512 (feature grids 32x32, rotary grid recomputed) builds and runs."""
    tree = _tree(tiny_model_files)
    tree["model"]["image_size"] = 512
    config, _ = config_from_dict(tree)
    model = SAM2Model(config).eval()
    with torch.inference_mode():
        feats = model.encode_images(torch.randn(1, 3, 512, 512))
        assert feats.image_embed.shape == (1, 32, 32, 32)  # d_model 32
        pix = model.condition_on_memory(
            feats.image_embed, feats.position[-1], [], [], is_init_cond_frame=True, pointer_window=16
        )
        heads = model.forward_sam_heads(pix, torch.tensor([[[100.0, 200.0]]]), torch.tensor([[1]]), None, feats.high_res, True)
    assert heads.high_res_masks.shape == (1, 1, 512, 512)
    assert torch.isfinite(heads.low_res_multimasks).all()


def test_yaml_with_sam20_flags_matches_preset(tiny_model_files, tmp_path):
    """Writing a preset's values back as reference YAML reads to the same config (SAM 2.0 tiny flags)."""
    preset = preset_config("sam2_hiera_tiny")
    tree = _tree(tiny_model_files)
    m = copy.deepcopy(tree["model"])
    m["image_size"] = 1024
    m["image_encoder"]["trunk"].update(
        embed_dim=96, stages=[1, 2, 7, 2], global_att_blocks=[5, 7, 9], window_pos_embed_bkg_spatial_size=[7, 7]
    )
    m["image_encoder"]["neck"].update(d_model=256, backbone_channel_list=[768, 384, 192, 96])
    m["image_encoder"]["neck"]["position_encoding"]["num_pos_feats"] = 256
    ma = m["memory_attention"]
    ma.update(d_model=256, num_layers=4)
    ma["layer"].update(d_model=256, dim_feedforward=2048)
    for key in ("self_attention", "cross_attention"):
        ma["layer"][key].update(embedding_dim=256, feat_sizes=[64, 64])
    ma["layer"]["cross_attention"]["kv_in_dim"] = 64
    me = m["memory_encoder"]
    me.update(out_dim=64, in_dim=256)
    me["position_encoding"]["num_pos_feats"] = 64
    me["mask_downsampler"]["embed_dim"] = 256
    me["fuser"]["layer"]["dim"] = 256
    me["fuser"]["num_layers"] = 2
    for flag in ("no_obj_embed_spatial", "proj_tpos_enc_in_obj_ptrs", "use_signed_tpos_enc_to_obj_ptrs"):
        m.pop(flag)
    m["add_tpos_enc_to_obj_ptrs"] = False
    m.pop("sam_mask_decoder_extra_args")
    m.pop("binarize_mask_from_pts_for_mem_enc")
    path = tmp_path / "sam2_t.yaml"
    path.write_text(yaml.safe_dump({"model": m}))
    config, _ = load_config(path)
    assert config == preset


@pytest.mark.parametrize("alias", ["sam2.1_hiera_t", "configs/sam2.1/sam2.1_hiera_t.yaml", "facebook/sam2.1-hiera-tiny"])
def test_preset_aliases(alias):
    assert preset_config(alias) == preset_config("sam2.1_hiera_tiny")


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ValueError, match="sam2.1_hiera_tiny"):
        preset_config("sam3_hiera_huge")


def test_build_model_from_yaml_name_is_eval(tiny_model_files):
    model = build_model(tiny_model_files.config, tiny_model_files.checkpoint)
    assert not model.training
    assert len(PRESET_NAMES) == 8


@pytest.mark.parametrize(
    "model_node, key",
    [
        ({"non_overlap_masks_for_mem_enc": True}, "model.non_overlap_masks_for_mem_enc"),
        ({"clear_non_cond_mem_for_multi_obj": True}, "model.clear_non_cond_mem_for_multi_obj"),
        ({"always_start_from_first_ann_frame": True}, "model.always_start_from_first_ann_frame"),
        (
            {"memory_attention": {"_target_": "sam2.modeling.memory_attention.MemoryAttention", "batch_first": False}},
            "model.memory_attention.batch_first",
        ),
    ],
)
def test_parsed_but_unimplemented_fields_are_refused_by_name(model_node, key):
    from samstream.config import ConfigError, config_from_dict

    tree = {"model": {"_target_": "sam2.modeling.sam2_base.SAM2Base", **model_node}}
    with pytest.raises(ConfigError, match=f"{key}: .* is not supported"):
        config_from_dict(tree)
    # the default values are accepted
    default = {k: (v if not isinstance(v, bool) else not v) for k, v in model_node.items() if k != "memory_attention"}
    config_from_dict({"model": {"_target_": "sam2.modeling.sam2_base.SAM2Base", **default}})


# ---------------------------------------------------------------- type and range of every YAML value


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("image_encoder", "trunk", "embed_dim"), "thirty-two", "model.image_encoder.trunk.embed_dim: expected an integer, got 'thirty-two' (str)"),
        (("image_encoder", "trunk", "embed_dim"), -32, "model.image_encoder.trunk.embed_dim: expected an integer > 0, got -32"),
        (("image_encoder", "trunk", "embed_dim"), True, "expected an integer, got True (bool)"),
        (("image_encoder", "trunk", "stages"), [1, "a"], "model.image_encoder.trunk.stages: expected a list of integers"),
        (("image_encoder", "trunk", "q_stride"), [2], "model.image_encoder.trunk.q_stride: expected a list of 2 integers"),
        (("image_encoder", "trunk", "drop_path_rate"), 1.5, "expected a probability in [0, 1], got 1.5"),
        (("image_encoder", "neck", "position_encoding", "temperature"), float("nan"), "expected a number"),
        (("memory_attention", "layer", "activation"), "swish", "expected 'relu' or 'gelu'"),
        (("memory_attention", "layer", "self_attention", "feat_sizes"), [0, 4], "non-empty list of integers > 0"),
        (("image_size",), "1024", "model.image_size: expected an integer, got '1024' (str)"),
        (("max_cond_frames_in_attn",), 0, "-1 (all) or an integer >= 1"),
        (("fill_hole_area",), -1, "model.fill_hole_area: expected a value >= 0"),
        (("multimask_output_in_sam",), "yes", "model.multimask_output_in_sam: expected true or false"),
    ],
)
def test_every_value_is_checked_for_type_and_range(path, value, message):
    tree: dict = {}
    node = tree
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    with pytest.raises(ConfigError) as info:
        config_from_dict({"model": tree})
    assert message in str(info.value)


def test_valid_values_of_every_kind_pass():
    config, options = config_from_dict(
        {"model": {"image_size": 512, "fill_hole_area": 8, "image_encoder": {"trunk": {"embed_dim": 96, "drop_path_rate": 0.1,
                                                                                        "q_stride": [2, 2]}},
                   "memory_attention": {"layer": {"dropout": 0, "self_attention": {"kv_in_dim": None}}}}}
    )
    assert config.image_encoder.trunk.q_stride == (2, 2) and options.fill_hole_area == 8
