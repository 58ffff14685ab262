"""Write a model config in the reference's YAML format (the inverse of :func:`samstream.config.load_config`).

Every node gets the ``_target_`` of the reference class it configures and every
field of the matching samstream dataclass, so the reference package can build
the same model from the file and samstream reads it back unchanged.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from samstream.config import (
    CXBlockConfig,
    FpnNeckConfig,
    FuserConfig,
    HieraConfig,
    ImageEncoderConfig,
    MaskDecoderExtraConfig,
    MaskDownSamplerConfig,
    MemoryAttentionConfig,
    MemoryAttentionLayerConfig,
    MemoryEncoderConfig,
    RoPEAttentionConfig,
    SAM2Config,
    SinePositionConfig,
    VideoOptions,
)
from samstream.io.atomic import atomic_write_bytes

__all__ = ["REFERENCE_TARGETS", "reference_yaml_tree", "reference_yaml_text", "write_reference_yaml"]

#: the reference class each config dataclass configures
REFERENCE_TARGETS: dict[type, str] = {
    SAM2Config: "sam2.modeling.sam2_base.SAM2Base",
    ImageEncoderConfig: "sam2.modeling.backbones.image_encoder.ImageEncoder",
    HieraConfig: "sam2.modeling.backbones.hieradet.Hiera",
    FpnNeckConfig: "sam2.modeling.backbones.image_encoder.FpnNeck",
    SinePositionConfig: "sam2.modeling.position_encoding.PositionEmbeddingSine",
    MemoryAttentionConfig: "sam2.modeling.memory_attention.MemoryAttention",
    MemoryAttentionLayerConfig: "sam2.modeling.memory_attention.MemoryAttentionLayer",
    RoPEAttentionConfig: "sam2.modeling.sam.transformer.RoPEAttention",
    MemoryEncoderConfig: "sam2.modeling.memory_encoder.MemoryEncoder",
    MaskDownSamplerConfig: "sam2.modeling.memory_encoder.MaskDownSampler",
    FuserConfig: "sam2.modeling.memory_encoder.Fuser",
    CXBlockConfig: "sam2.modeling.memory_encoder.CXBlock",
}


def _node(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        tree: dict[str, Any] = {}
        target = REFERENCE_TARGETS.get(type(value))
        if target is not None:
            tree["_target_"] = target
        elif not isinstance(value, MaskDecoderExtraConfig):
            raise TypeError(f"no reference class for {type(value).__name__}")
        for field in dataclasses.fields(value):
            tree[field.name] = _node(getattr(value, field.name))
        return tree
    if isinstance(value, (tuple, list)):
        return [_node(v) for v in value]
    return value


def reference_yaml_tree(config: SAM2Config, video: VideoOptions | None = None) -> dict[str, Any]:
    """``{"model": {...}}`` as the reference YAML holds it.

    With ``video``, the model node targets the reference's video predictor, which takes
    the video options as extra keys; without, it targets ``SAM2Base`` as the official files do.
    """
    model = _node(config)
    if video is not None:
        model["_target_"] = "sam2.sam2_video_predictor.SAM2VideoPredictor"
        model.update(dataclasses.asdict(video))
    return {"model": model}


def reference_yaml_text(config: SAM2Config, video: VideoOptions | None = None) -> str:
    return "# @package _global_\n\n" + yaml.safe_dump(
        reference_yaml_tree(config, video), sort_keys=False, default_flow_style=None
    )


def write_reference_yaml(path: str | Path, config: SAM2Config, video: VideoOptions | None = None) -> None:
    """Write the config as a reference-format YAML file, atomically."""
    atomic_write_bytes(path, reference_yaml_text(config, video).encode("utf-8"))
