"""The parity fixture's own files, written by the reference tooling: its YAML reads onto the typed
config, its weights (reference parameter names) load strictly, and our YAML writer covers every key
the reference writes. (Moved here from tests/unit: they can only run on the fixture.)"""

from __future__ import annotations

import torch
import yaml

from samstream.checkpoint import load_weights
from samstream.config import SAM2Config, load_config
from samstream.modeling.sam2 import SAM2Model
from samstream.training.model_yaml import reference_yaml_tree


def test_fixture_yaml_maps_onto_typed_config(parity_dir):
    config, video = load_config(parity_dir / "model.yaml")
    assert isinstance(config, SAM2Config)
    assert config.image_size == 256
    assert config.image_encoder.trunk.embed_dim == 32
    assert config.image_encoder.trunk.stages == (1, 2, 3, 2)
    assert config.memory_attention.layer.cross_attention.kv_in_dim == 32
    assert config.sam_mask_decoder_extra_args.dynamic_multimask_via_stability is True
    assert config.binarize_mask_from_pts_for_mem_enc is True
    assert video.fill_hole_area == 0


def test_official_format_loads_strictly(parity_dir):
    config, _ = load_config(parity_dir / "model.yaml")
    model = SAM2Model(config)
    load_weights(model, parity_dir / "model.pt")
    ref = torch.load(parity_dir / "model.pt", weights_only=True)["model"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, ref[key], rtol=0, atol=0)


def test_reference_yaml_keys_cover_the_official_file(parity_dir):
    # the parity fixture's YAML was written by the reference tooling: every key it has, we write too
    official = yaml.safe_load((parity_dir / "model.yaml").read_text())
    config, _ = load_config(parity_dir / "model.yaml")
    ours = reference_yaml_tree(config)

    def check(a, b, where):
        if isinstance(a, dict):
            for key, value in a.items():
                assert key in b, f"{where}.{key} missing"
                check(value, b[key], f"{where}.{key}")
        else:
            assert a == b, where  # _target_ strings included

    check(official, ours, "")
