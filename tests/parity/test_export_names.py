"""A model exported by ``samstream weights export`` has the official checkpoint's names and config keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from samstream.checkpoint import save_safetensors
from samstream.modeling.sam2 import SAM2Model
from samstream.presets import preset_config

pytestmark = pytest.mark.parity
REPO = Path(__file__).resolve().parents[2]


def test_exported_preset_matches_the_official_names(manifests_dir, tmp_path):
    model = SAM2Model(preset_config("sam2.1_hiera_tiny"))
    save_safetensors(model, tmp_path / "w.safetensors")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "samstream", "weights", "export", "--model", "sam2.1_hiera_tiny",
         "--checkpoint", str(tmp_path / "w.safetensors"), "--out", str(out)],
        capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = json.loads((manifests_dir / "sam2.1_hiera_t.json").read_text())
    state = torch.load(out / "model.pt", weights_only=True)["model"]
    assert {k: list(v.shape) for k, v in state.items()} == {k: list(v) for k, v in manifest["state_dict"].items()}
    # the config keys are the reference's (the official sam2.1_hiera_t.yaml node names)
    tree = yaml.safe_load((out / "model.yaml").read_text())["model"]
    assert tree["_target_"] == "sam2.modeling.sam2_base.SAM2Base"
    for key in ("image_encoder", "memory_attention", "memory_encoder", "num_maskmem", "image_size",
                "use_obj_ptrs_in_encoder", "pred_obj_scores", "no_obj_embed_spatial"):  # fmt: skip
        assert key in tree, key
    assert tree["image_encoder"]["trunk"]["_target_"] == "sam2.modeling.backbones.hieradet.Hiera"
