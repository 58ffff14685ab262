"""Every official preset builds, and its state dict matches the official checkpoint's names and shapes."""

from __future__ import annotations

import json

import pytest
from samstream.modeling.sam2 import SAM2Model
from samstream.presets import PRESET_NAMES, preset_config

pytestmark = pytest.mark.parity

MANIFEST_FILES = {
    "sam2_hiera_tiny": "sam2_hiera_t.json",
    "sam2_hiera_small": "sam2_hiera_s.json",
    "sam2_hiera_base_plus": "sam2_hiera_b+.json",
    "sam2_hiera_large": "sam2_hiera_l.json",
    "sam2.1_hiera_tiny": "sam2.1_hiera_t.json",
    "sam2.1_hiera_small": "sam2.1_hiera_s.json",
    "sam2.1_hiera_base_plus": "sam2.1_hiera_b+.json",
    "sam2.1_hiera_large": "sam2.1_hiera_l.json",
}


def test_all_eight_presets_named():
    assert sorted(PRESET_NAMES) == sorted(MANIFEST_FILES)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_state_dict_matches_manifest(name, manifests_dir):
    manifest = json.loads((manifests_dir / MANIFEST_FILES[name]).read_text())
    model = SAM2Model(preset_config(name))  # a real build on CPU: every preset must construct
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    want = {k: list(v) for k, v in manifest["state_dict"].items()}
    missing = sorted(set(want) - set(got))
    unexpected = sorted(set(got) - set(want))
    assert not missing, f"missing: {missing[:10]}"
    assert not unexpected, f"unexpected: {unexpected[:10]}"
    wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert not wrong, f"wrong shapes: {list(wrong.items())[:10]}"
    assert sum(v.numel() for v in model.state_dict().values()) == manifest["num_params"]
