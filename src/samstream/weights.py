"""The registry of official SAM 2 / SAM 2.1 checkpoints: names, aliases, files, URLs, configs.

Pure data and name resolution: no network, no cache, no environment.  Getting the files
onto disk is :mod:`samstream.download`'s job.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

__all__ = [
    "OFFICIAL_BASE_URL",
    "WeightsSource",
    "WEIGHTS",
    "available_models",
    "canonical_model_name",
    "weights_source",
]

OFFICIAL_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2"


@dataclass(frozen=True)
class WeightsSource:
    """Where one official checkpoint lives.

    ``url`` is the official download address (:func:`samstream.download.download_url`
    applies the ``SAMSTREAM_DOWNLOAD_BASE_URL`` override).  ``config`` is the
    reference config file the checkpoint goes with; samstream builds the same
    model from its preset of the same ``name`` (:func:`samstream.presets.preset_config`).
    ``sha256`` and ``size_bytes`` are checked after a download when they are set.
    """

    name: str
    filename: str
    url: str
    hf_repo_id: str
    config: str
    sha256: str | None = None
    size_bytes: int | None = None


# (version prefix, release folder on the download server, HF repo prefix)
_RELEASES = (
    ("sam2", "072824", "facebook/sam2-hiera-"),
    ("sam2.1", "092824", "facebook/sam2.1-hiera-"),
)
# (canonical size, HF repo suffix, config file suffix)
_SIZES = (
    ("tiny", "tiny", "t"),
    ("small", "small", "s"),
    ("base_plus", "base-plus", "b+"),
    ("large", "large", "l"),
)


def _build_table() -> dict[str, WeightsSource]:
    table: dict[str, WeightsSource] = {}
    for version, folder, hf_prefix in _RELEASES:
        for size, hf_size, config_size in _SIZES:
            name = f"{version}_hiera_{size}"
            filename = f"{name}.pt"
            table[name] = WeightsSource(
                name=name,
                filename=filename,
                url=f"{OFFICIAL_BASE_URL}/{folder}/{filename}",
                hf_repo_id=f"{hf_prefix}{hf_size}",
                config=f"configs/{version}/{version}_hiera_{config_size}.yaml",
            )
    return table


WEIGHTS: dict[str, WeightsSource] = _build_table()

_SIZE_ALIASES = {
    "t": "tiny",
    "tiny": "tiny",
    "s": "small",
    "small": "small",
    "b+": "base_plus",
    "base+": "base_plus",
    "bp": "base_plus",
    "b_plus": "base_plus",
    "base_plus": "base_plus",
    "baseplus": "base_plus",
    "l": "large",
    "large": "large",
}
_KNOWN_EXTENSIONS = (".yaml", ".yml", ".pt", ".pth", ".ckpt", ".safetensors")
_NAME_RE = re.compile(
    r"sam_?2(?P<minor>[._]?1)?_(?:hiera_)?(?P<size>[a-z_+]+)"
)


def available_models() -> list[str]:
    """Canonical names of the official checkpoints."""
    return list(WEIGHTS)


def canonical_model_name(name: str | os.PathLike[str]) -> str:
    """Map a model name or alias to its canonical key in :data:`WEIGHTS`.

    Accepts canonical names (``sam2.1_hiera_tiny``), config-style short
    names (``sam2.1_hiera_t``, ``sam2.1_hiera_b+``), Hugging Face ids with
    or without the owner (``facebook/sam2.1-hiera-tiny``), config paths
    (``configs/sam2.1/sam2.1_hiera_t.yaml``) and checkpoint file names
    (``sam2.1_hiera_tiny.pt``).  Case and ``-``/``_`` are not significant.
    Raises ``ValueError`` listing the valid names for anything else.
    """
    raw = os.fspath(name) if isinstance(name, os.PathLike) else name
    if not isinstance(raw, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    key = raw.strip().replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()
    for ext in _KNOWN_EXTENSIONS:
        if key.endswith(ext):
            key = key[: -len(ext)]
            break
    key = re.sub(r"[-\s]+", "_", key)
    if key in WEIGHTS:
        return key
    match = _NAME_RE.fullmatch(key)
    if match:
        size = _SIZE_ALIASES.get(match.group("size"))
        version = "sam2.1" if match.group("minor") else "sam2"
        if size is not None:
            return f"{version}_hiera_{size}"
    valid = ", ".join(WEIGHTS)
    raise ValueError(
        f"Unknown model name {raw!r}. Valid names: {valid} "
        "(short forms such as 'sam2.1_hiera_t' / 'sam2.1_hiera_b+', Hugging Face "
        "ids such as 'facebook/sam2.1-hiera-tiny' and config paths such as "
        "'configs/sam2.1/sam2.1_hiera_t.yaml' are accepted too)."
    )


def weights_source(name: str | os.PathLike[str]) -> WeightsSource:
    """The :class:`WeightsSource` for a model name or alias."""
    return WEIGHTS[canonical_model_name(name)]
