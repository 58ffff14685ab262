"""The 8 official SAM 2 / 2.1 models as typed configs.

Names: ``sam2_hiera_{tiny,small,base_plus,large}`` and ``sam2.1_hiera_{...}``; aliases such
as ``sam2.1_hiera_t``, ``sam2.1_hiera_b+`` or ``configs/sam2.1/sam2.1_hiera_l.yaml`` are
resolved by :func:`samstream.weights.canonical_model_name`. Where their weights come from is
kept apart, in :mod:`samstream.weights` and :mod:`samstream.download`.
"""

from __future__ import annotations

from dataclasses import replace

from .config import (
    FpnNeckConfig,
    HieraConfig,
    ImageEncoderConfig,
    MemoryAttentionConfig,
    MemoryAttentionLayerConfig,
    MemoryEncoderConfig,
    MaskDownSamplerConfig,
    FuserConfig,
    CXBlockConfig,
    RoPEAttentionConfig,
    SAM2Config,
    SinePositionConfig,
)
from .weights import canonical_model_name


def _trunk(size: str) -> HieraConfig:
    common = dict(window_pos_embed_bkg_spatial_size=(7, 7))
    if size == "tiny":
        return HieraConfig(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2), global_att_blocks=(5, 7, 9), **common)
    if size == "small":
        return HieraConfig(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2), global_att_blocks=(7, 10, 13), **common)
    if size == "base_plus":
        return HieraConfig(embed_dim=112, num_heads=2)  # stages, windows and background size at defaults
    if size == "large":
        return HieraConfig(
            embed_dim=144,
            num_heads=2,
            stages=(2, 6, 36, 4),
            global_att_blocks=(23, 33, 43),
            window_spec=(8, 4, 16, 8),
            **common,
        )
    raise ValueError(f"unknown Hiera size {size!r}")


def _build_config(size: str, version: str) -> SAM2Config:
    trunk = _trunk(size)
    dim = trunk.embed_dim
    channels = (dim * 8, dim * 4, dim * 2, dim)
    rope = RoPEAttentionConfig(embedding_dim=256, num_heads=1, downsample_rate=1, dropout=0.1, feat_sizes=(64, 64))
    config = SAM2Config(
        image_encoder=ImageEncoderConfig(
            trunk=trunk,
            neck=FpnNeckConfig(
                d_model=256,
                backbone_channel_list=channels,
                position_encoding=SinePositionConfig(num_pos_feats=256),
                fpn_top_down_levels=(2, 3),
                fpn_interp_model="nearest",
            ),
            scalp=1,
        ),
        memory_attention=MemoryAttentionConfig(
            d_model=256,
            pos_enc_at_input=True,
            num_layers=4,
            layer=MemoryAttentionLayerConfig(
                activation="relu",
                d_model=256,
                dim_feedforward=2048,
                dropout=0.1,
                pos_enc_at_attn=False,
                pos_enc_at_cross_attn_keys=True,
                pos_enc_at_cross_attn_queries=False,
                self_attention=rope,
                cross_attention=replace(rope, rope_k_repeat=True, kv_in_dim=64),
            ),
        ),
        memory_encoder=MemoryEncoderConfig(
            out_dim=64,
            position_encoding=SinePositionConfig(num_pos_feats=64),
            mask_downsampler=MaskDownSamplerConfig(kernel_size=3, stride=2, padding=1),
            fuser=FuserConfig(layer=CXBlockConfig(dim=256, kernel_size=7, padding=3), num_layers=2),
        ),
        num_maskmem=7,
        image_size=1024,
        sigmoid_scale_for_mem_enc=20.0,
        sigmoid_bias_for_mem_enc=-10.0,
        use_mask_input_as_output_without_sam=True,
        directly_add_no_mem_embed=True,
        use_high_res_features_in_sam=True,
        multimask_output_in_sam=True,
        iou_prediction_use_sigmoid=True,
        use_obj_ptrs_in_encoder=True,
        add_tpos_enc_to_obj_ptrs=False,
        only_obj_ptrs_in_the_past_for_eval=True,
        pred_obj_scores=True,
        pred_obj_scores_mlp=True,
        fixed_no_obj_ptr=True,
        multimask_output_for_tracking=True,
        use_multimask_token_for_obj_ptr=True,
        multimask_min_pt_num=0,
        multimask_max_pt_num=1,
        use_mlp_for_obj_ptr_proj=True,
    )
    if version == "2.1":
        # SAM 2.1: learned no-object memory embedding and projected, signed pointer time encodings
        config = replace(
            config,
            no_obj_embed_spatial=True,
            add_tpos_enc_to_obj_ptrs=True,
            proj_tpos_enc_in_obj_ptrs=True,
            use_signed_tpos_enc_to_obj_ptrs=True,
        )
    return config


PRESET_NAMES: tuple[str, ...] = tuple(
    f"{prefix}_hiera_{size}" for prefix in ("sam2", "sam2.1") for size in ("tiny", "small", "base_plus", "large")
)


def preset_config(name: str) -> SAM2Config:
    """The config of an official model by name or alias (see module docstring)."""
    canonical = canonical_model_name(name)
    prefix, _, size = canonical.partition("_hiera_")
    return _build_config(size, "2.1" if prefix == "sam2.1" else "2")
