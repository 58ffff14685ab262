"""Models that ship inside the package: trained here, usable offline by name.

``samstream-synthetic`` is a small SAM 2.1-style model (256 px input) trained from scratch
on samstream's synthetic videos (see the README's "Training" section for the recipe and
its accuracy). Its config (reference YAML format) and weights (safetensors) are package
data under ``samstream/assets``; no download, no cache.

    build_model("samstream-synthetic")          # config and weights found by name
    samstream segment photo.jpg --model samstream-synthetic --point 120,80
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BundledModel", "BUNDLED", "bundled_model", "bundled_weights"]

_ASSETS = Path(__file__).resolve().parent / "assets"


@dataclass(frozen=True)
class BundledModel:
    """A model shipped with the package: its name, config file and weights file, and a note on
    what it is good for (shown where a user picks it, e.g. the web page)."""

    name: str
    config_path: Path
    weights_path: Path
    description: str
    note: str = ""


BUNDLED: dict[str, BundledModel] = {
    "samstream-synthetic": BundledModel(
        name="samstream-synthetic",
        config_path=_ASSETS / "samstream_synthetic.yaml",
        weights_path=_ASSETS / "models" / "samstream_synthetic.safetensors",
        description="256 px SAM 2.1-style model trained from scratch on samstream's synthetic videos",
        note=(
            "trained here on synthetic clips only (shapes over photographs): it segments and tracks such "
            "clips, but real objects poorly; for real video use an official checkpoint "
            "(samstream weights download sam2.1_hiera_tiny, then --model sam2.1_hiera_tiny)"
        ),
    ),
}


def _key(name: str | os.PathLike[str]) -> str:
    return os.fspath(name).strip().lower().replace("_", "-")


def bundled_model(name: str | os.PathLike[str]) -> BundledModel | None:
    """The bundled model called ``name`` (case and ``-``/``_`` not significant), else None."""
    return BUNDLED.get(_key(name))


def bundled_weights(model: BundledModel) -> Path:
    """The weights file of a bundled model; FileNotFoundError naming it when the install lacks it."""
    if not model.weights_path.is_file():
        raise FileNotFoundError(
            f"the weights of the bundled model {model.name!r} are missing from this install "
            f"(expected {model.weights_path}); reinstall samstream"
        )
    return model.weights_path
