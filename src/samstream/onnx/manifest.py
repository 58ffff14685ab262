"""``manifest.json`` of an ONNX export: the graphs, their inputs and outputs, the model config.

Written by :mod:`samstream.export.onnx` (last, so its presence means the export is complete),
read by the runtime. Plain JSON, no torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
FORMAT = "samstream-onnx"
FORMAT_VERSION = 1
CONSTANTS_NAME = "constants.npz"

#: the graphs of an export, by role (``mask_downsample`` only for models with object pointers)
GRAPH_NAMES = ("image_encoder", "decoder_single", "decoder_multi", "mask_downsample", "memory_attention", "memory_encoder")
REQUIRED_GRAPHS = ("image_encoder", "decoder_single", "decoder_multi", "memory_attention", "memory_encoder")


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: shape entries are ints or the names of dynamic axes."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX file and its signature."""

    file: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class Manifest:
    """What an export folder holds. ``config`` is the model's :class:`~samstream.config.SAM2Config`
    as a dict; ``quantization`` is None (float32) or ``"int8"`` (dynamic, weights only)."""

    opset: int
    config: dict[str, Any]
    graphs: dict[str, GraphSpec]
    constants: dict[str, tuple[int, ...]] = field(default_factory=dict)
    quantization: str | None = None
    samstream_version: str = ""
    exporter: str = ""

    @property
    def image_size(self) -> int:
        return int(self.config["image_size"])

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "constants_file": CONSTANTS_NAME, **out}


def _tensor(entry: dict, where: str) -> TensorSpec:
    try:
        return TensorSpec(name=str(entry["name"]), shape=tuple(entry["shape"]), dtype=str(entry["dtype"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{where}: a tensor entry lacks {exc}") from None


def read_manifest(export_dir: str | Path) -> Manifest:
    """Read and check ``export_dir/manifest.json`` (ValueError / FileNotFoundError naming the problem)."""
    folder = Path(export_dir)
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"export_dir {folder}: no {MANIFEST_NAME} (not a finished samstream ONNX export)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: format is {data.get('format')!r}, expected {FORMAT!r}")
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {data.get('format_version')!r}; this samstream reads {FORMAT_VERSION}")
    graphs = {}
    for role, g in data.get("graphs", {}).items():
        graphs[role] = GraphSpec(
            file=str(g["file"]),
            inputs=tuple(_tensor(t, f"{path} {role}") for t in g["inputs"]),
            outputs=tuple(_tensor(t, f"{path} {role}") for t in g["outputs"]),
        )
    missing = [r for r in REQUIRED_GRAPHS if r not in graphs]
    if missing:
        raise ValueError(f"{path}: graphs missing: {', '.join(missing)}")
    for role, g in graphs.items():
        if not (folder / g.file).is_file():
            raise FileNotFoundError(f"{path}: graph {role} names {g.file}, which is not in {folder}")
    return Manifest(
        opset=int(data["opset"]),
        config=dict(data["config"]),
        graphs=graphs,
        constants={k: tuple(v) for k, v in data.get("constants", {}).items()},
        quantization=data.get("quantization"),
        samstream_version=str(data.get("samstream_version", "")),
        exporter=str(data.get("exporter", "")),
    )
