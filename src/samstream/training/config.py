"""Typed configuration of a training run, read from YAML / JSON and overridden with ``--set key=value``.

A run config is a tree of frozen dataclasses (:class:`TrainConfig` at the root).
Files hold the same tree as nested mappings; unknown keys and wrong types are
errors that name the dotted key. Overrides address fields by dotted path, with
tuple elements by index (``data.datasets.0.weight=2``); values are parsed as YAML
scalars / lists and then checked against the field's type::

    config = load_train_config("run.yaml", ["optimizer.lr=1e-4", "steps=200", "precision=bf16"])
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import yaml

from samstream.config import load_yaml
from samstream.io.atomic import atomic_write_bytes
from samstream.training.losses import LossWeights
from samstream.training.optim import OptimizerConfig, ScheduleConfig
from samstream.training.prompts import PromptSamplingConfig

__all__ = [
    "TrainConfigError",
    "DatasetSpec",
    "DataConfig",
    "AugmentConfig",
    "ModelSpec",
    "CheckpointConfig",
    "LoggingConfig",
    "TrainConfig",
    "config_from_mapping",
    "config_to_dict",
    "apply_overrides",
    "load_train_config",
    "save_train_config",
]

DatasetKind = Literal["sa1b", "sav", "davis", "folder", "synthetic"]


class TrainConfigError(ValueError):
    """A run config that cannot be used; the message names the key."""


@dataclass(frozen=True)
class DatasetSpec:
    """One source of training clips and its share of the mix."""

    kind: DatasetKind = "synthetic"
    path: str | None = None  # folder of the dataset (not used by "synthetic"); SA-V: the frames folder
    annotations_path: str | None = None  # SA-V: folder of the masklet JSON files (default: path)
    weight: float = 1.0  # relative sampling weight in the mix
    name: str | None = None  # shown in logs (default: kind + folder name)
    seed_offset: int = 0  # synthetic: clip i uses seed seed_offset + i
    length: int = 100_000  # synthetic: number of distinct clips
    synthetic_images: bool = False  # synthetic: 1-frame images instead of videos
    # synthetic: backgrounds ("procedural" also paints objects with procedural textures only: an easy start)
    synthetic_background: Literal["auto", "photo", "procedural", "video"] = "auto"
    synthetic_num_objects: tuple[int, int] = (1, 3)  # synthetic: annotated objects per clip (low, high)
    synthetic_num_distractors: tuple[int, int] = (0, 1)  # synthetic: look-alikes (same shape and texture)
    # synthetic: look-alikes annotated as objects of their own: only the prompt tells them apart
    synthetic_distractors_annotated: bool = False
    # synthetic: shape kinds of the objects (default: the generator's solid shapes; "ring", "curve",
    # "branches" are thin structures)
    synthetic_shapes: tuple[str, ...] | None = None
    # synthetic: object extent on the first frame as a fraction of the frame side (low, high)
    synthetic_object_size: tuple[float, float] = (0.18, 0.4)

    def __post_init__(self) -> None:
        if self.weight <= 0:
            raise TrainConfigError(f"weight must be > 0, got {self.weight}")
        if self.kind != "synthetic" and not self.path:
            raise TrainConfigError(f"path is required for a {self.kind!r} dataset")
        if self.synthetic_shapes is not None:
            from samstream.training.synthetic import SHAPE_KINDS

            unknown = sorted(set(self.synthetic_shapes) - set(SHAPE_KINDS))
            if unknown or not self.synthetic_shapes:
                raise TrainConfigError(f"synthetic_shapes: unknown or no kinds {unknown}; known: {list(SHAPE_KINDS)}")


@dataclass(frozen=True)
class AugmentConfig:
    """Video-consistent augmentation (the same parameters for every frame of a clip)."""

    hflip_prob: float = 0.5
    scale_range: tuple[float, float] = (0.5, 1.0)  # crop area as a fraction of the frame
    aspect_range: tuple[float, float] = (0.75, 1.333)
    brightness: float = 0.1
    contrast: float = 0.03
    saturation: float = 0.03
    hue: float = 0.0


@dataclass(frozen=True)
class DataConfig:
    datasets: tuple[DatasetSpec, ...] = (DatasetSpec(),)
    num_frames: int = 8  # frames per video clip
    max_objects: int = 3  # objects per clip (more are subsampled)
    num_workers: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # low-memory fine-tuning: a folder where a frozen encoder's features are cached per clip
    # (needs model.freeze_image_encoder; see samstream.training.feature_cache)
    feature_cache: str | None = None

    def __post_init__(self) -> None:
        if not self.datasets:
            raise TrainConfigError("datasets must name at least one dataset")
        if self.num_frames < 1 or self.max_objects < 1:
            raise TrainConfigError("num_frames and max_objects must be >= 1")


@dataclass(frozen=True)
class ModelSpec:
    """The model to train."""

    config: str = "samstream-synthetic"  # a model name or a YAML file in the reference format
    init: str | None = None  # checkpoint (name or path) to start from; None: random init
    freeze_image_encoder: bool = False  # freeze trunk, neck and position embeddings
    # Train only the parameters whose names start with one of these prefixes (e.g.
    # [sam_mask_decoder] or [sam_mask_decoder.iou_prediction_head]); all others are frozen.
    train_only: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.train_only is not None and (not self.train_only or not all(self.train_only)):
            raise TrainConfigError(f"model.train_only: give one or more parameter-name prefixes, got {list(self.train_only)}")


@dataclass(frozen=True)
class CheckpointConfig:
    every_steps: int = 500  # resume checkpoint cadence
    keep_official_every: int = 0  # also write an official checkpoint every N steps (0: only at the end)


@dataclass(frozen=True)
class LoggingConfig:
    every_steps: int = 10
    csv: bool = True
    tensorboard: bool = False
    progress_bar: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run."""

    output_dir: str = "runs/train"
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataConfig = field(default_factory=DataConfig)
    prompts: PromptSamplingConfig = field(default_factory=PromptSamplingConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    steps: int = 1000  # optimiser steps
    batch_size: int = 1  # clips per forward
    grad_accumulation: int = 1  # forwards per optimiser step
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast
    device: str = "cpu"
    seed: int = 123
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accumulation"):
            if getattr(self, name) < 1:
                raise TrainConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


# ------------------------------------------------------------------------------------ parsing


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check / convert a parsed value to the annotated type ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except TrainConfigError as exc:
                errors.append(str(exc))
        raise TrainConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {tp}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise TrainConfigError(f"{where}: must be one of {list(allowed)}, got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise TrainConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}.{i}") for i, v in enumerate(value))
        if len(value) != len(args):
            raise TrainConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, t, f"{where}.{i}") for i, (v, t) in enumerate(zip(value, args)))
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value) and isinstance(value, tp):
            return value
        return config_from_mapping(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise TrainConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TrainConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TrainConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise TrainConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is Any:
        return value
    raise TrainConfigError(f"{where}: unsupported field type {_type_name(tp)}")  # pragma: no cover


def config_from_mapping(cls: type, mapping: Any, where: str = "config") -> Any:
    """Build dataclass ``cls`` from a nested mapping, rejecting unknown keys and wrong types."""
    if not isinstance(mapping, Mapping):
        raise TrainConfigError(f"{where}: expected a mapping, got {mapping!r}")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in mapping.items():
        if key not in names:
            raise TrainConfigError(f"{where}.{key}: unknown key (known: {sorted(names)})")
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}")
    try:
        return cls(**kwargs)
    except (TrainConfigError, ValueError) as exc:
        raise TrainConfigError(f"{where}: {exc}") from None


def config_to_dict(config: Any) -> Any:
    """A dataclass tree as plain mappings / lists (tuples become lists)."""
    if dataclasses.is_dataclass(config):
        return {f.name: config_to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (tuple, list)):
        return [config_to_dict(v) for v in config]
    return config


def _set_path(tree: Any, path: list[str], value: Any, full_key: str) -> None:
    node = tree
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise TrainConfigError(f"{full_key}: {part!r} is not an index of a list of {len(node)}")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node:
                raise TrainConfigError(f"{full_key}: unknown key {part!r}")
            if last:
                node[part] = value
            else:
                node = node[part]
        else:
            raise TrainConfigError(f"{full_key}: {'.'.join(path[:i])} is a value, not a section")


def apply_overrides(config: TrainConfig, overrides: Sequence[str]) -> TrainConfig:
    """Apply ``key=value`` strings; values are YAML (``1e-4``, ``true``, ``[0.5, 1.0]``, ``null``)."""
    tree = config_to_dict(config)
    for override in overrides:
        key, sep, text = override.partition("=")
        key = key.strip()
        if not sep or not key:
            raise TrainConfigError(f"override {override!r} is not key=value")
        try:
            value = load_yaml(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise TrainConfigError(f"{key}: cannot parse value {text!r}: {exc}") from None
        _set_path(tree, key.split("."), value, key)
    return config_from_mapping(TrainConfig, tree)


def load_train_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a run config from YAML or JSON (None: the defaults), then apply the overrides."""
    config = TrainConfig()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config not found: {path}")
        text = path.read_text()
        try:
            tree = json.loads(text) if path.suffix == ".json" else load_yaml(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise TrainConfigError(f"{path}: cannot parse: {exc}") from None
        try:
            config = config_from_mapping(TrainConfig, tree or {}, "config")
        except TrainConfigError as exc:
            raise TrainConfigError(f"{path}: {exc}") from None
    return apply_overrides(config, overrides)


def save_train_config(path: str | Path, config: TrainConfig) -> None:
    """Write the resolved config (YAML, or JSON for a ``.json`` path) atomically."""
    tree = config_to_dict(config)
    path = Path(path)
    if path.suffix == ".json":
        text = json.dumps(tree, indent=2) + "\n"
    else:
        text = yaml.safe_dump(tree, sort_keys=False)
    atomic_write_bytes(path, text.encode("utf-8"))
