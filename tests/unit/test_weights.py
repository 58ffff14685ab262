"""Tests for samstream.weights: the table of official checkpoints and model-name aliases."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from samstream import weights

MODEL = "sam2.1_hiera_tiny"
OFFICIAL_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt"


def test_preset_exists_for_every_checkpoint():
    from samstream.presets import preset_config

    for name in weights.WEIGHTS:
        assert preset_config(name).image_encoder.trunk.embed_dim > 0


# --------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------


def test_table_has_the_eight_official_models():
    assert set(weights.WEIGHTS) == {
        f"{v}_hiera_{s}" for v in ("sam2", "sam2.1") for s in ("tiny", "small", "base_plus", "large")
    }
    assert weights.available_models() == list(weights.WEIGHTS)
    for name, src in weights.WEIGHTS.items():
        assert src.name == name
        assert src.filename == f"{name}.pt"
        assert src.sha256 is None and src.size_bytes is None
        version, size = name.split("_hiera_")
        short = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}[size]
        assert src.config == f"configs/{version}/{version}_hiera_{short}.yaml"
        assert weights.canonical_model_name(src.config) == name  # the config path maps back
    assert weights.WEIGHTS["sam2_hiera_tiny"].url == (
        "https://dl.fbaipublicfiles.com/segment_anything_2/072824/sam2_hiera_tiny.pt"
    )
    assert weights.WEIGHTS["sam2.1_hiera_tiny"].url == OFFICIAL_URL
    assert weights.WEIGHTS["sam2_hiera_base_plus"].hf_repo_id == "facebook/sam2-hiera-base-plus"
    assert weights.WEIGHTS["sam2.1_hiera_large"].hf_repo_id == "facebook/sam2.1-hiera-large"
    with pytest.raises(dataclasses.FrozenInstanceError):
        weights.WEIGHTS[MODEL].url = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    "alias, expected",
    [
        ("sam2.1_hiera_tiny", "sam2.1_hiera_tiny"),
        ("sam2.1_hiera_t", "sam2.1_hiera_tiny"),
        ("sam2.1_hiera_s", "sam2.1_hiera_small"),
        ("sam2.1_hiera_b+", "sam2.1_hiera_base_plus"),
        ("sam2.1_hiera_l", "sam2.1_hiera_large"),
        ("sam2_hiera_t", "sam2_hiera_tiny"),
        ("sam2_hiera_b+", "sam2_hiera_base_plus"),
        ("sam2.1-hiera-tiny", "sam2.1_hiera_tiny"),
        ("sam2.1-hiera-base-plus", "sam2.1_hiera_base_plus"),
        ("facebook/sam2.1-hiera-tiny", "sam2.1_hiera_tiny"),
        ("facebook/sam2-hiera-base-plus", "sam2_hiera_base_plus"),
        ("facebook/sam2-hiera-large", "sam2_hiera_large"),
        ("configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny"),
        ("configs/sam2/sam2_hiera_b+.yaml", "sam2_hiera_base_plus"),
        ("sam2.1_hiera_small.pt", "sam2.1_hiera_small"),
        ("/some/dir/sam2_hiera_large.pt", "sam2_hiera_large"),
        ("  SAM2.1_Hiera_Large  ", "sam2.1_hiera_large"),
        (Path("configs/sam2.1/sam2.1_hiera_l.yaml"), "sam2.1_hiera_large"),
    ],
)
def test_canonical_model_name_aliases(alias, expected):
    assert weights.canonical_model_name(alias) == expected
    assert weights.weights_source(alias) is weights.WEIGHTS[expected]


@pytest.mark.parametrize(
    "bad", ["", "sam3_hiera_tiny", "sam2.1_hiera_huge", "sam2.2_hiera_t", "tiny", "facebook/sam-vit-h"]
)
def test_unknown_model_name_lists_valid_names(bad):
    with pytest.raises(ValueError) as info:
        weights.canonical_model_name(bad)
    message = str(info.value)
    for name in weights.WEIGHTS:
        assert name in message


