"""Typed configuration of a SAM 2 model, and reading of the reference YAML format.

Every component has a frozen dataclass. Field names follow the official
config files (so that a reference YAML maps onto them one to one); each field
is documented where it is declared.

The reference YAML format is a ``model:`` tree whose nodes carry ``_target_``
keys naming the reference class; :func:`load_config` maps each ``_target_``
onto the matching dataclass and rejects any key it does not know.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Union

import yaml


class ConfigError(ValueError):
    """A model config that cannot be read: unknown key, wrong type, bad value."""


@dataclass(frozen=True)
class SinePositionConfig:
    """2-D sine position encoding of a feature map (as in DETR)."""

    num_pos_feats: int = 256  # output channels (half for x, half for y)
    temperature: float = 10000.0
    normalize: bool = True  # normalize positions to [0, scale]
    scale: float | None = None  # defaults to 2*pi when None


@dataclass(frozen=True)
class HieraConfig:
    """The Hiera trunk (hierarchical vision transformer)."""

    embed_dim: int = 96  # channels of the first stage
    num_heads: int = 1  # attention heads of the first stage
    drop_path_rate: float = 0.0  # stochastic depth (training only)
    q_pool: int = 3  # number of stage transitions that pool the queries
    q_stride: tuple[int, int] = (2, 2)  # spatial pooling at a stage transition
    stages: tuple[int, ...] = (2, 3, 16, 3)  # blocks per stage
    dim_mul: float = 2.0  # channel multiplier at a stage transition
    head_mul: float = 2.0  # head multiplier at a stage transition
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (14, 14)  # background pos-embed grid
    window_spec: tuple[int, ...] = (8, 4, 14, 7)  # attention window per stage
    global_att_blocks: tuple[int, ...] = (12, 16, 20)  # blocks with global attention
    return_interm_layers: bool = True  # return every stage's output


@dataclass(frozen=True)
class FpnNeckConfig:
    """The feature pyramid that projects trunk stages to ``d_model`` channels."""

    d_model: int = 256
    backbone_channel_list: tuple[int, ...] = (768, 384, 192, 96)  # trunk channels, low-res first
    position_encoding: SinePositionConfig = field(default_factory=SinePositionConfig)
    kernel_size: int = 1
    stride: int = 1
    padding: int = 0
    fpn_interp_model: str = "bilinear"  # upsampling mode of the top-down path
    fuse_type: str = "sum"  # "sum" or "avg" of lateral and top-down features
    fpn_top_down_levels: tuple[int, ...] | None = None  # levels that get top-down features


@dataclass(frozen=True)
class ImageEncoderConfig:
    trunk: HieraConfig = field(default_factory=HieraConfig)
    neck: FpnNeckConfig = field(default_factory=FpnNeckConfig)
    scalp: int = 0  # number of lowest-resolution levels to discard


@dataclass(frozen=True)
class RoPEAttentionConfig:
    """Attention with 2-D axial rotary position encoding (memory attention)."""

    embedding_dim: int = 256
    num_heads: int = 1
    downsample_rate: int = 1  # internal dim = embedding_dim // downsample_rate
    dropout: float = 0.0
    kv_in_dim: int | None = None  # channels of keys/values when not embedding_dim
    rope_theta: float = 10000.0
    rope_k_repeat: bool = False  # repeat the query frequencies over several key frames
    feat_sizes: tuple[int, int] = (64, 64)  # (width, height) of the rotary grid


@dataclass(frozen=True)
class MemoryAttentionLayerConfig:
    activation: str = "relu"
    d_model: int = 256
    dim_feedforward: int = 2048
    dropout: float = 0.1
    pos_enc_at_attn: bool = False  # add position encoding to self-attention q/k
    pos_enc_at_cross_attn_keys: bool = True
    pos_enc_at_cross_attn_queries: bool = False
    self_attention: RoPEAttentionConfig = field(default_factory=RoPEAttentionConfig)
    cross_attention: RoPEAttentionConfig = field(
        default_factory=lambda: RoPEAttentionConfig(rope_k_repeat=True, kv_in_dim=64)
    )


@dataclass(frozen=True)
class MemoryAttentionConfig:
    d_model: int = 256
    pos_enc_at_input: bool = True  # add 0.1 * position encoding to the input
    layer: MemoryAttentionLayerConfig = field(default_factory=MemoryAttentionLayerConfig)
    num_layers: int = 4
    batch_first: bool = True


@dataclass(frozen=True)
class MaskDownSamplerConfig:
    embed_dim: int = 256
    kernel_size: int = 4
    stride: int = 4
    padding: int = 0
    total_stride: int = 16


@dataclass(frozen=True)
class CXBlockConfig:
    """A ConvNeXt block of the memory fuser."""

    dim: int = 256
    kernel_size: int = 7
    padding: int = 3
    drop_path: float = 0.0
    layer_scale_init_value: float = 1e-6
    use_dwconv: bool = True


@dataclass(frozen=True)
class FuserConfig:
    layer: CXBlockConfig = field(default_factory=CXBlockConfig)
    num_layers: int = 2
    dim: int | None = None
    input_projection: bool = False


@dataclass(frozen=True)
class MemoryEncoderConfig:
    out_dim: int = 64
    mask_downsampler: MaskDownSamplerConfig = field(default_factory=MaskDownSamplerConfig)
    fuser: FuserConfig = field(default_factory=FuserConfig)
    position_encoding: SinePositionConfig = field(
        default_factory=lambda: SinePositionConfig(num_pos_feats=64)
    )
    in_dim: int = 256


@dataclass(frozen=True)
class MaskDecoderExtraConfig:
    """Options of the mask decoder that the reference passes as ``sam_mask_decoder_extra_args``."""

    dynamic_multimask_via_stability: bool = False
    dynamic_multimask_stability_delta: float = 0.05
    dynamic_multimask_stability_thresh: float = 0.98


@dataclass(frozen=True)
class SAM2Config:
    """The whole SAM 2 model: image encoder, SAM heads, memory attention and memory encoder."""

    image_encoder: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    memory_attention: MemoryAttentionConfig = field(default_factory=MemoryAttentionConfig)
    memory_encoder: MemoryEncoderConfig = field(default_factory=MemoryEncoderConfig)
    num_maskmem: int = 7  # memories attended to: 1 conditioning slot + 6 previous frames
    image_size: int = 512  # square input resolution of the image encoder
    backbone_stride: int = 16  # stride of the lowest-resolution features
    sigmoid_scale_for_mem_enc: float = 1.0  # mask probabilities are scaled ...
    sigmoid_bias_for_mem_enc: float = 0.0  # ... and shifted before the memory encoder
    binarize_mask_from_pts_for_mem_enc: bool = False  # binarize masks from clicks for memory
    use_mask_input_as_output_without_sam: bool = False  # a mask prompt is the output as is
    max_cond_frames_in_attn: int = -1  # at most this many conditioning frames (-1: all)
    directly_add_no_mem_embed: bool = False  # first frame: add no_mem_embed instead of attention
    use_high_res_features_in_sam: bool = False  # feed stride 4 and 8 features to the decoder
    multimask_output_in_sam: bool = False  # 3 masks for ambiguous prompts
    multimask_min_pt_num: int = 1  # multimask when the click count is in [min, max]
    multimask_max_pt_num: int = 1
    multimask_output_for_tracking: bool = False  # multimask also on tracked frames
    use_multimask_token_for_obj_ptr: bool = False  # object pointer from the chosen multimask token
    iou_prediction_use_sigmoid: bool = False
    memory_temporal_stride_for_eval: int = 1  # stride between previous-frame memories
    non_overlap_masks_for_mem_enc: bool = False  # objects made disjoint before memory encoding
    use_obj_ptrs_in_encoder: bool = False  # cross-attend to object pointers
    max_obj_ptrs_in_encoder: int = 16  # temporal window of object pointers
    add_tpos_enc_to_obj_ptrs: bool = True  # temporal position encoding of object pointers
    proj_tpos_enc_in_obj_ptrs: bool = False  # project that encoding with a linear layer
    use_signed_tpos_enc_to_obj_ptrs: bool = False  # signed (past/future) temporal distance
    only_obj_ptrs_in_the_past_for_eval: bool = False  # pointers only from frames already seen
    pred_obj_scores: bool = False  # object-presence (occlusion) head
    pred_obj_scores_mlp: bool = False  # that head is an MLP rather than a linear layer
    fixed_no_obj_ptr: bool = False  # absent objects get the learned no-object pointer
    soft_no_obj_ptr: bool = False  # mix pointers by the presence probability
    use_mlp_for_obj_ptr_proj: bool = False
    no_obj_embed_spatial: bool = False  # learned memory embedding for absent objects
    sam_mask_decoder_extra_args: MaskDecoderExtraConfig | None = None
    compile_image_encoder: bool = False  # torch.compile the image encoder

    @property
    def hidden_dim(self) -> int:
        return self.image_encoder.neck.d_model

    @property
    def mem_dim(self) -> int:
        return self.memory_encoder.out_dim

    def replace(self, **changes: Any) -> "SAM2Config":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class VideoOptions:
    """Options of the video predictor that the reference keeps on the model node."""

    fill_hole_area: int = 0  # fill holes up to this area in output masks (pixels of low-res mask)
    non_overlap_masks: bool = False  # objects made disjoint in the outputs
    clear_non_cond_mem_around_input: bool = False  # drop tracked memories near a new click
    clear_non_cond_mem_for_multi_obj: bool = False  # reference flag, kept for config parity
    add_all_frames_to_correct_as_cond: bool = False  # a corrected frame becomes conditioning
    always_start_from_first_ann_frame: bool = False


# ----------------------------------------------------------------------------------------
# Reading the reference YAML format

# `_target_` (last dotted component) -> the dataclass it maps onto.
_TARGETS: dict[str, type] = {
    "SAM2Base": SAM2Config,
    "SAM2VideoPredictor": SAM2Config,
    "SAM2VideoPredictorVOS": SAM2Config,
    "ImageEncoder": ImageEncoderConfig,
    "Hiera": HieraConfig,
    "FpnNeck": FpnNeckConfig,
    "PositionEmbeddingSine": SinePositionConfig,
    "MemoryAttention": MemoryAttentionConfig,
    "MemoryAttentionLayer": MemoryAttentionLayerConfig,
    "RoPEAttention": RoPEAttentionConfig,
    "MemoryEncoder": MemoryEncoderConfig,
    "MaskDownSampler": MaskDownSamplerConfig,
    "Fuser": FuserConfig,
    "CXBlock": CXBlockConfig,
}

# Keys the reference accepts but that do not change the computation.
_IGNORED_KEYS: dict[type, set[str]] = {
    HieraConfig: {"weights_path"},
    SinePositionConfig: {"warmup_cache", "image_size", "strides"},
}

_VIDEO_OPTION_KEYS = {f.name for f in dataclasses.fields(VideoOptions)}


# ----------------------------------------------------------------------------------------
# Type and range checks of every value read from YAML (before any module is built)

# field name -> (test, what is expected); applied wherever the name appears
_RANGES: dict[str, tuple[Any, str]] = {}
for _name in (
    "embed_dim", "num_heads", "d_model", "dim_feedforward", "num_layers", "image_size", "backbone_stride",
    "out_dim", "in_dim", "dim", "kernel_size", "stride", "total_stride", "num_pos_feats", "embedding_dim",
    "downsample_rate", "num_maskmem", "max_obj_ptrs_in_encoder", "memory_temporal_stride_for_eval", "kv_in_dim",
):
    _RANGES[_name] = (lambda v: v > 0, "an integer > 0")
for _name in ("padding", "scalp", "q_pool", "multimask_min_pt_num", "multimask_max_pt_num", "fill_hole_area",
              "dynamic_multimask_stability_delta", "layer_scale_init_value"):
    _RANGES[_name] = (lambda v: v >= 0, "a value >= 0")
for _name in ("dropout", "drop_path_rate", "drop_path", "dynamic_multimask_stability_thresh"):
    _RANGES[_name] = (lambda v: 0 <= v <= 1, "a probability in [0, 1]")
for _name in ("temperature", "rope_theta", "dim_mul", "head_mul", "scale"):
    _RANGES[_name] = (lambda v: v > 0, "a number > 0")
for _name in ("stages", "q_stride", "window_spec", "feat_sizes", "window_pos_embed_bkg_spatial_size",
              "backbone_channel_list"):
    _RANGES[_name] = (lambda v: len(v) > 0 and all(x > 0 for x in v), "a non-empty list of integers > 0")
for _name in ("global_att_blocks", "fpn_top_down_levels"):
    _RANGES[_name] = (lambda v: all(x >= 0 for x in v), "a list of integers >= 0")
_RANGES["max_cond_frames_in_attn"] = (lambda v: v == -1 or v >= 1, "-1 (all) or an integer >= 1")
_RANGES["activation"] = (lambda v: v in ("relu", "gelu"), "'relu' or 'gelu'")
_RANGES["fpn_interp_model"] = (lambda v: v in ("bilinear", "nearest", "bicubic"), "'bilinear', 'nearest' or 'bicubic'")
_RANGES["fuse_type"] = (lambda v: v in ("sum", "avg"), "'sum' or 'avg'")
del _name


@functools.lru_cache(maxsize=None)
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(hint: Any) -> str:
    """What a type hint asks for, in YAML words."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return " or ".join(_describe(a) for a in inner) + (" or null" if len(inner) < len(args) else "")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
        return f"a list of {len(args)} {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def _type_ok(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_type_ok(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_type_ok(v, args[0]) for v in value)
        return len(value) == len(args) and all(_type_ok(v, a) for v, a in zip(value, args))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    return True  # nested configs are checked when they are built


def _check_field(cls: type, name: str, value: Any, where: str) -> None:
    """ConfigError naming ``where`` (the key path) when ``value`` has the wrong type or range."""
    hint = _field_types(cls)[name]
    if not _type_ok(value, hint):
        shown = f"{value!r} ({type(value).__name__})" if not isinstance(value, tuple) else repr(list(value))
        raise ConfigError(f"{where}: expected {_describe(hint)}, got {shown}")
    rule = _RANGES.get(name)
    if rule is not None and value is not None:
        test, expected = rule
        if not test(value):
            shown = repr(list(value)) if isinstance(value, tuple) else repr(value)
            raise ConfigError(f"{where}: expected {expected}, got {shown}")


def _coerce(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return tuple(_coerce(v, where) for v in value)
    return value


def _build(node: Mapping[str, Any], cls: type, where: str) -> Any:
    if not isinstance(node, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(node).__name__}")
    target = node.get("_target_")
    if target is not None:
        short = str(target).rsplit(".", 1)[-1]
        expected = _TARGETS.get(short)
        if expected is None:
            raise ConfigError(f"{where}: unknown _target_ {target!r}")
        if expected is not cls:
            raise ConfigError(
                f"{where}: _target_ {target!r} builds {expected.__name__}, "
                f"but {cls.__name__} is expected here"
            )
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in node.items():
        if key == "_target_" or key in _IGNORED_KEYS.get(cls, set()):
            continue
        if key not in fields:
            raise ConfigError(f"{where}: unknown key {key!r} for {cls.__name__}")
        sub_cls = _NESTED.get((cls, key))
        if sub_cls is not None and value is not None:
            kwargs[key] = _build(value, sub_cls, f"{where}.{key}")
        else:
            kwargs[key] = _coerce(value, f"{where}.{key}")
            _check_field(cls, key, kwargs[key], f"{where}.{key}")
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - defensive
        raise ConfigError(f"{where}: {exc}") from None


_NESTED: dict[tuple[type, str], type] = {
    (SAM2Config, "image_encoder"): ImageEncoderConfig,
    (SAM2Config, "memory_attention"): MemoryAttentionConfig,
    (SAM2Config, "memory_encoder"): MemoryEncoderConfig,
    (SAM2Config, "sam_mask_decoder_extra_args"): MaskDecoderExtraConfig,
    (ImageEncoderConfig, "trunk"): HieraConfig,
    (ImageEncoderConfig, "neck"): FpnNeckConfig,
    (FpnNeckConfig, "position_encoding"): SinePositionConfig,
    (MemoryAttentionConfig, "layer"): MemoryAttentionLayerConfig,
    (MemoryAttentionLayerConfig, "self_attention"): RoPEAttentionConfig,
    (MemoryAttentionLayerConfig, "cross_attention"): RoPEAttentionConfig,
    (MemoryEncoderConfig, "mask_downsampler"): MaskDownSamplerConfig,
    (MemoryEncoderConfig, "fuser"): FuserConfig,
    (MemoryEncoderConfig, "position_encoding"): SinePositionConfig,
    (FuserConfig, "layer"): CXBlockConfig,
}


def config_from_dict(tree: Mapping[str, Any]) -> tuple[SAM2Config, VideoOptions]:
    """Build the typed config from a parsed reference YAML (the mapping holding ``model``).

    Returns the model config and the video-predictor options found on the model node.
    Raises :class:`ConfigError` naming any key that is not understood.
    """
    if not isinstance(tree, Mapping) or "model" not in tree:
        raise ConfigError("config has no top-level 'model:' section")
    if not isinstance(tree["model"], Mapping):
        raise ConfigError(f"model: expected a mapping, got {type(tree['model']).__name__}")
    model = dict(tree["model"])
    video_kwargs = {k: model.pop(k) for k in list(model) if k in _VIDEO_OPTION_KEYS}
    for key, value in video_kwargs.items():
        _check_field(VideoOptions, key, value, f"model.{key}")
    config = _build(model, SAM2Config, "model")
    _validate(config)
    options = VideoOptions(**video_kwargs)
    _reject_unsupported(config, options)
    return config, options


# Fields read for compatibility with the reference format whose non-default values samstream
# does not implement: (where, field, default, why).
_UNSUPPORTED: tuple[tuple[str, str, Any, str], ...] = (
    (
        "model.memory_attention",
        "batch_first",
        True,
        "samstream's memory attention is always batch-first (the official configs all say true)",
    ),
    (
        "model",
        "non_overlap_masks_for_mem_enc",
        False,
        "the reference's video predictor encodes each object's memory on its own, where this flag has no effect",
    ),
    (
        "model",
        "clear_non_cond_mem_for_multi_obj",
        False,
        "samstream clears memories around a prompt per object, for any number of objects "
        "(see clear_non_cond_mem_around_input)",
    ),
    (
        "model",
        "always_start_from_first_ann_frame",
        False,
        "pass start_frame_idx to propagate instead",
    ),
)


def _reject_unsupported(config: SAM2Config, options: VideoOptions) -> None:
    """Refuse a non-default value of a field that is parsed but not implemented."""
    for where, name, default, why in _UNSUPPORTED:
        holder = config.memory_attention if where == "model.memory_attention" else config
        if not hasattr(holder, name):
            holder = options
        value = getattr(holder, name)
        if value != default:
            raise ConfigError(f"{where}.{name}: {value!r} is not supported ({why}); remove the key or set it to {default!r}")


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats: ``1e-6`` (no dot) is a number, as in the
    reference's Hydra/OmegaConf loader, not the string PyYAML's YAML 1.1 rules make of it."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Parse YAML text with :class:`YamlLoader`."""
    return yaml.load(text, Loader=YamlLoader)


def load_config(path: str | Path) -> tuple[SAM2Config, VideoOptions]:
    """Read a config file in the reference's YAML format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        tree = load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return config_from_dict(tree)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _validate(config: SAM2Config) -> None:
    trunk = config.image_encoder.trunk
    if len(trunk.stages) != len(trunk.window_spec):
        raise ConfigError(
            f"model.image_encoder.trunk: stages {trunk.stages} and window_spec "
            f"{trunk.window_spec} must have the same length"
        )
    if config.image_size % config.backbone_stride != 0:
        raise ConfigError(
            f"model.image_size {config.image_size} must be a multiple of "
            f"backbone_stride {config.backbone_stride}"
        )
    if config.proj_tpos_enc_in_obj_ptrs and not config.add_tpos_enc_to_obj_ptrs:
        raise ConfigError("proj_tpos_enc_in_obj_ptrs requires add_tpos_enc_to_obj_ptrs")
    if config.fixed_no_obj_ptr and not (config.pred_obj_scores and config.use_obj_ptrs_in_encoder):
        raise ConfigError("fixed_no_obj_ptr requires pred_obj_scores and use_obj_ptrs_in_encoder")
    neck = config.image_encoder.neck
    if neck.fuse_type not in ("sum", "avg"):
        raise ConfigError(f"model.image_encoder.neck.fuse_type must be 'sum' or 'avg', got {neck.fuse_type!r}")
