"""A tiny SAM 2 config built in code, for unit and e2e tests that need some model (not the fixtures).

Every size is the smallest the architecture allows so a forward pass takes milliseconds on CPU:
a 4-stage Hiera with five blocks, 128-pixel input, 32 channels in the heads.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from samstream.config import (
    CXBlockConfig,
    FpnNeckConfig,
    FuserConfig,
    HieraConfig,
    ImageEncoderConfig,
    MaskDownSamplerConfig,
    MemoryAttentionConfig,
    MemoryAttentionLayerConfig,
    MemoryEncoderConfig,
    RoPEAttentionConfig,
    SAM2Config,
    SinePositionConfig,
)

IMAGE_SIZE = 128
_EMBED = 8  # channels of the first Hiera stage (8, 16, 32, 64)
_D_MODEL = 32
_MEM_DIM = 16


def tiny_config(*, image_size: int = IMAGE_SIZE) -> SAM2Config:
    """A SAM 2.1-style config (object pointers, occlusion head, high-res features) at toy size."""
    grid = image_size // 16  # side of the stride-16 feature map
    rope = RoPEAttentionConfig(embedding_dim=_D_MODEL, num_heads=1, feat_sizes=(grid, grid), dropout=0.1)
    return SAM2Config(
        image_encoder=ImageEncoderConfig(
            scalp=1,
            trunk=HieraConfig(
                embed_dim=_EMBED,
                num_heads=1,
                stages=(1, 1, 2, 1),
                global_att_blocks=(3,),  # not a query-pooling block (blocks 1, 2 and 4 pool)
                window_pos_embed_bkg_spatial_size=(4, 4),
            ),
            neck=FpnNeckConfig(
                d_model=_D_MODEL,
                backbone_channel_list=(8 * _EMBED, 4 * _EMBED, 2 * _EMBED, _EMBED),
                position_encoding=SinePositionConfig(num_pos_feats=_D_MODEL),
                fpn_top_down_levels=(2, 3),
                fpn_interp_model="nearest",
            ),
        ),
        memory_attention=MemoryAttentionConfig(
            d_model=_D_MODEL,
            num_layers=1,
            layer=MemoryAttentionLayerConfig(
                d_model=_D_MODEL,
                dim_feedforward=64,
                self_attention=rope,
                cross_attention=RoPEAttentionConfig(
                    embedding_dim=_D_MODEL, num_heads=1, feat_sizes=(grid, grid), dropout=0.1,
                    rope_k_repeat=True, kv_in_dim=_MEM_DIM,
                ),
            ),
        ),
        memory_encoder=MemoryEncoderConfig(
            out_dim=_MEM_DIM,
            in_dim=_D_MODEL,
            position_encoding=SinePositionConfig(num_pos_feats=_MEM_DIM),
            mask_downsampler=MaskDownSamplerConfig(embed_dim=_D_MODEL, kernel_size=3, stride=2, padding=1),
            fuser=FuserConfig(layer=CXBlockConfig(dim=_D_MODEL), num_layers=1),
        ),
        image_size=image_size,
        sigmoid_scale_for_mem_enc=20.0,
        sigmoid_bias_for_mem_enc=-10.0,
        use_mask_input_as_output_without_sam=True,
        directly_add_no_mem_embed=True,
        no_obj_embed_spatial=True,
        use_high_res_features_in_sam=True,
        multimask_output_in_sam=True,
        iou_prediction_use_sigmoid=True,
        use_obj_ptrs_in_encoder=True,
        proj_tpos_enc_in_obj_ptrs=True,
        use_signed_tpos_enc_to_obj_ptrs=True,
        only_obj_ptrs_in_the_past_for_eval=True,
        pred_obj_scores=True,
        pred_obj_scores_mlp=True,
        fixed_no_obj_ptr=True,
        multimask_output_for_tracking=True,
        use_multimask_token_for_obj_ptr=True,
        multimask_min_pt_num=0,
        multimask_max_pt_num=1,
        use_mlp_for_obj_ptr_proj=True,
        binarize_mask_from_pts_for_mem_enc=True,
    )
