"""SAM 2: the composition of image encoder, prompt encoder, mask decoder, memory attention
and memory encoder, with the object-pointer and object-presence logic.

The model is stateless per call. Which memories a frame attends to is decided
elsewhere (:mod:`samstream.video.memory`) and handed in as a list.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.init import trunc_normal_

from ..config import SAM2Config
from .common import MLP
from .image_encoder import ImageEncoder
from .mask_decoder import MaskDecoder
from .memory_attention import MemoryAttention
from .memory_cache import CachedMemoryFrame, MemoryProjectionCache, project_memories
from .memory_encoder import MemoryEncoder
from .position_encoding import temporal_sine_encoding
from .prompt_encoder import PromptEncoder
from .two_way_transformer import TwoWayTransformer

# Logit given to every pixel of an object judged absent.
NO_OBJECT_LOGIT = -1024.0


@dataclass
class FrameFeatures:
    """Image features of a batch of frames, high resolution first.

    ``features[-1]`` is the lowest-resolution map [B, C, h, w] (the decoder's image
    embedding, without ``no_mem_embed``); ``features[:-1]`` are the high-resolution maps
    [B, C/8, 4h, 4w] and [B, C/4, 2h, 2w] already projected by ``conv_s0``/``conv_s1``.
    ``position[-1]`` is the sine encoding [B, C, h, w] of the lowest level.
    """

    features: list[torch.Tensor]
    position: list[torch.Tensor]

    @property
    def image_embed(self) -> torch.Tensor:
        return self.features[-1]

    @property
    def high_res(self) -> list[torch.Tensor] | None:
        return self.features[:-1] or None


@dataclass
class HeadOutput:
    """Output of the SAM heads for B objects, with M mask candidates each (3 with multimask, else 1).

    low_res_multimasks [B, M, S/4, S/4] logits (-1024 where the object is judged absent);
    ious [B, M] predicted IoUs; candidate_ptrs [B, M, C] the object pointer each candidate gives
    (the same for all when the decoder has one pointer token); object_score_logits [B, 1];
    choice [B] the index of the chosen candidate. ``high_res_override`` [B, 1, S, S]: chosen
    logits at full size when they are known exactly (a mask used as output). S is the model's
    image size.
    """

    low_res_multimasks: torch.Tensor
    ious: torch.Tensor
    candidate_ptrs: torch.Tensor
    object_score_logits: torch.Tensor
    choice: torch.Tensor
    image_size: int
    high_res_override: torch.Tensor | None = None

    def _rows(self) -> torch.Tensor:
        return torch.arange(self.choice.shape[0], device=self.choice.device)

    @property
    def low_res_masks(self) -> torch.Tensor:
        """The chosen candidate's logits [B, 1, S/4, S/4]."""
        if self.low_res_multimasks.shape[1] == 1:
            return self.low_res_multimasks
        return self.low_res_multimasks[self._rows(), self.choice].unsqueeze(1)

    @property
    def high_res_masks(self) -> torch.Tensor:
        """The chosen candidate's logits upsampled to the model's input size [B, 1, S, S]."""
        if self.high_res_override is not None:
            return self.high_res_override
        s = self.image_size
        return F.interpolate(self.low_res_masks, size=(s, s), mode="bilinear", align_corners=False)

    @property
    def obj_ptr(self) -> torch.Tensor:
        """The chosen candidate's object pointer [B, C]."""
        if self.candidate_ptrs.shape[1] == 1:
            return self.candidate_ptrs[:, 0]
        return self.candidate_ptrs[self._rows(), self.choice]

    def with_choice(self, choice: torch.Tensor) -> "HeadOutput":
        """The same proposals with another chosen candidate per object (choice [B] long)."""
        if choice.shape != self.choice.shape:
            raise ValueError(f"choice must have shape {tuple(self.choice.shape)}, got {tuple(choice.shape)}")
        return replace(self, choice=choice.to(self.choice.device), high_res_override=None)


@dataclass
class MemoryInput:
    """One past frame's mask memory as attended to by the current frame.

    features and pos_enc: [B, C_mem, h, w]; ``slot`` is the temporal slot: 0 for a
    conditioning frame, 1..num_maskmem-1 for the recent frames (num_maskmem-1 = previous frame).
    """

    features: torch.Tensor
    pos_enc: torch.Tensor
    slot: int
    # the stored per-object memories [1, C_mem, h, w] whose concatenation is ``features``
    # (optional): with them, the projections of this memory are kept across frames
    rows: tuple[torch.Tensor, ...] = ()


class MemoryEncoding(NamedTuple):
    """A frame's new memory: features and position encoding, [B, C_mem, h, w] each."""

    features: torch.Tensor
    pos_enc: torch.Tensor


@dataclass
class PointerInput:
    """An object pointer [B, C] with its temporal offset to the current frame."""

    pointer: torch.Tensor
    offset: int


class SAM2Model(nn.Module):
    """The SAM 2 network. Parameter names follow the official checkpoints."""

    def __init__(self, config: SAM2Config) -> None:
        super().__init__()
        self.config = config
        c = config
        self.image_encoder = ImageEncoder(c.image_encoder)
        self.use_high_res_features_in_sam = c.use_high_res_features_in_sam
        self.num_feature_levels = 3 if c.use_high_res_features_in_sam else 1
        if c.use_obj_ptrs_in_encoder:
            # turns a full-size mask prompt into a low-res one to get a pointer from it
            self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.memory_attention = MemoryAttention(c.memory_attention)
        self.hidden_dim = c.image_encoder.neck.d_model
        self.memory_encoder = MemoryEncoder(c.memory_encoder)
        self.mem_dim = c.memory_encoder.out_dim if c.memory_encoder.out_dim != c.memory_encoder.in_dim else self.hidden_dim
        self.num_maskmem = c.num_maskmem
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(c.num_maskmem, 1, 1, self.mem_dim))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, self.hidden_dim))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, self.hidden_dim))
        trunc_normal_(self.maskmem_tpos_enc, std=0.02)
        trunc_normal_(self.no_mem_embed, std=0.02)
        trunc_normal_(self.no_mem_pos_enc, std=0.02)
        if c.pred_obj_scores and c.use_obj_ptrs_in_encoder:
            self.no_obj_ptr = nn.Parameter(torch.zeros(1, self.hidden_dim))
            trunc_normal_(self.no_obj_ptr, std=0.02)
        self.no_obj_embed_spatial = None
        if c.no_obj_embed_spatial:
            self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, self.mem_dim))
            trunc_normal_(self.no_obj_embed_spatial, std=0.02)

        self.image_size = c.image_size
        self.backbone_stride = c.backbone_stride
        embed = c.image_size // c.backbone_stride
        self.sam_image_embedding_size = embed
        self.sam_prompt_encoder = PromptEncoder(
            embed_dim=self.hidden_dim,
            image_embedding_size=(embed, embed),
            input_image_size=(c.image_size, c.image_size),
            mask_in_chans=16,
        )
        self.sam_mask_decoder = MaskDecoder(
            transformer_dim=self.hidden_dim,
            transformer=TwoWayTransformer(depth=2, embedding_dim=self.hidden_dim, mlp_dim=2048, num_heads=8),
            num_multimask_outputs=3,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
            use_high_res_features=c.use_high_res_features_in_sam,
            iou_prediction_use_sigmoid=c.iou_prediction_use_sigmoid,
            extra=c.sam_mask_decoder_extra_args,
            pred_obj_scores=c.pred_obj_scores,
            pred_obj_scores_mlp=c.pred_obj_scores_mlp,
            use_multimask_token_for_obj_ptr=c.use_multimask_token_for_obj_ptr,
        )
        if c.use_obj_ptrs_in_encoder:
            self.obj_ptr_proj: nn.Module = (
                MLP(self.hidden_dim, self.hidden_dim, self.hidden_dim, 3)
                if c.use_mlp_for_obj_ptr_proj
                else nn.Linear(self.hidden_dim, self.hidden_dim)
            )
        else:
            self.obj_ptr_proj = nn.Identity()
        self.obj_ptr_tpos_proj: nn.Module = (
            nn.Linear(self.hidden_dim, self.mem_dim) if c.proj_tpos_enc_in_obj_ptrs else nn.Identity()
        )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, frames: torch.Tensor, prompts, **options):
        """The differentiable clip forward: frames [T, 3, S, S] and per-frame prompts for N
        objects -> one output per frame (see :func:`samstream.video.clip.run_clip` for the
        prompts, the options and the outputs). With ``prompts`` a list (one entry per image),
        ``frames`` are B single images run together (:func:`samstream.video.clip.run_images`)."""
        from ..video.clip import run_clip, run_images  # the tracking loop lives with the memory strategies

        if isinstance(prompts, (list, tuple)):
            return run_images(self, frames, prompts, **options)
        return run_clip(self, frames, prompts, **options)

    # ------------------------------------------------------------------ image features
    def encode_images(self, images: torch.Tensor) -> FrameFeatures:
        """Normalized images [B, 3, S, S] -> the features the heads use (see :class:`FrameFeatures`).

        The decoder's high-resolution projections (conv_s0, conv_s1) are merged into the neck's
        lateral 1x1 convolutions: the same features, without the d_model-wide maps in between.
        """
        n = self.num_feature_levels
        projections = None
        if self.use_high_res_features_in_sam:
            levels = len(self.image_encoder.neck.convs) - self.image_encoder.scalp
            projections = {levels - n: self.sam_mask_decoder.conv_s0, levels - n + 1: self.sam_mask_decoder.conv_s1}
        out = self.image_encoder(images, projections=projections)
        return FrameFeatures(list(out.features[-n:]), list(out.position[-n:]))

    def add_no_memory_embedding(self, image_embed: torch.Tensor) -> torch.Tensor:
        """[B, C, h, w] + no_mem_embed: what a frame without memory feeds the decoder."""
        return image_embed + self.no_mem_embed.view(1, -1, 1, 1)

    # ------------------------------------------------------------------ SAM heads
    def use_multimask(self, is_init_cond_frame: bool, num_points: int) -> bool:
        c = self.config
        return (
            c.multimask_output_in_sam
            and (is_init_cond_frame or c.multimask_output_for_tracking)
            and c.multimask_min_pt_num <= num_points <= c.multimask_max_pt_num
        )

    def forward_sam_heads(
        self,
        backbone_features: torch.Tensor,
        point_coords: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        high_res_features: list[torch.Tensor] | None = None,
        multimask_output: bool = False,
    ) -> HeadOutput:
        """Prompt encoder + mask decoder on memory-conditioned features [B, C, h, w].

        point_coords [B, P, 2] in input pixels (0..S) with point_labels [B, P]; mask_inputs
        [B, 1, H', W'] logits (resized to the prompt encoder's mask size when needed).
        """
        b = backbone_features.shape[0]
        device = backbone_features.device
        if point_coords is None:
            point_coords = torch.zeros(b, 1, 2, device=device)
            point_labels = -torch.ones(b, 1, dtype=torch.int32, device=device)
        mask_prompt = None
        if mask_inputs is not None:
            if tuple(mask_inputs.shape[-2:]) != self.sam_prompt_encoder.mask_input_size:
                mask_prompt = F.interpolate(
                    mask_inputs.float(),
                    size=self.sam_prompt_encoder.mask_input_size,
                    mode="bilinear",
                    align_corners=False,
                    antialias=True,
                )
            else:
                mask_prompt = mask_inputs
        sparse, dense = self.sam_prompt_encoder(points=(point_coords, point_labels), boxes=None, masks=mask_prompt)
        dec = self.sam_mask_decoder(
            backbone_features,
            self.sam_prompt_encoder.get_dense_pe(),
            sparse,
            dense,
            multimask_output=multimask_output,
            high_res_features=high_res_features,
        )
        low_multi = dec.masks
        is_present = dec.object_score_logits > 0  # [B, 1]
        if self.config.pred_obj_scores:
            low_multi = torch.where(is_present[:, None, None], low_multi, NO_OBJECT_LOGIT)
        low_multi = low_multi.float()
        if multimask_output:
            choice = dec.iou.argmax(dim=-1)
        else:
            choice = torch.zeros(b, dtype=torch.long, device=device)
        tokens = dec.tokens  # [B, M or 1, C]
        ptrs = self.obj_ptr_proj(tokens)
        ptrs = self._pointer_with_presence(ptrs, dec.object_score_logits[:, None])  # [B, M or 1, C]
        return HeadOutput(low_multi, dec.iou, ptrs, dec.object_score_logits, choice, self.image_size)

    def _pointer_with_presence(self, obj_ptr: torch.Tensor, object_score_logits: torch.Tensor) -> torch.Tensor:
        """Blend object pointers [B, ..., C] with the learned no-object pointer by presence
        (object_score_logits [B, ..., 1], broadcast against the pointers)."""
        c = self.config
        if not (c.pred_obj_scores and c.use_obj_ptrs_in_encoder):
            return obj_ptr
        if c.soft_no_obj_ptr:
            present = object_score_logits.sigmoid()
        else:
            present = (object_score_logits > 0).float()
        if c.fixed_no_obj_ptr:
            obj_ptr = present * obj_ptr
        return obj_ptr + (1 - present) * self.no_obj_ptr

    def mask_as_output(
        self,
        backbone_features: torch.Tensor,
        high_res_features: list[torch.Tensor] | None,
        mask_inputs: torch.Tensor,
    ) -> HeadOutput:
        """Turn a binary mask prompt [B, 1, S, S] directly into output logits (no decoding),
        with an object pointer from the SAM heads prompted by the downsampled mask."""
        scale, bias = 20.0, -10.0  # logits of +10 inside and -10 outside
        mask_f = mask_inputs.float()
        high = mask_f * scale + bias
        low = F.interpolate(
            high, size=(high.shape[-2] // 4, high.shape[-1] // 4), mode="bilinear", align_corners=False, antialias=True
        )
        b = mask_f.shape[0]
        ious = mask_f.new_ones(b, 1)
        if self.config.use_obj_ptrs_in_encoder:
            obj_ptr = self.forward_sam_heads(
                backbone_features,
                mask_inputs=self.mask_downsample(mask_f),
                high_res_features=high_res_features,
            ).obj_ptr  # already blended by the heads' own presence score; blended again below
        else:
            obj_ptr = torch.zeros(b, self.hidden_dim, device=mask_f.device)
        present = (mask_f.flatten(1) > 0).any(dim=1, keepdim=True).float()  # [B, 1]
        object_score_logits = scale * present + bias
        if self.config.pred_obj_scores:
            if self.config.fixed_no_obj_ptr:
                obj_ptr = present * obj_ptr
            obj_ptr = obj_ptr + (1 - present) * self.no_obj_ptr
        choice = torch.zeros(b, dtype=torch.long, device=mask_f.device)
        return HeadOutput(low, ious, obj_ptr[:, None], object_score_logits, choice, self.image_size, high_res_override=high)


    # ------------------------------------------------------------------ memory
    def condition_on_memory(
        self,
        features: torch.Tensor,
        position: torch.Tensor,
        memories: list[MemoryInput],
        pointers: list[PointerInput],
        *,
        is_init_cond_frame: bool,
        pointer_window: int,
        cache: MemoryProjectionCache | None = None,
    ) -> torch.Tensor:
        """Fuse the current frame's lowest-level features with the memory bank.

        features, position: [B, C, h, w]; memories and pointers as selected by the memory-bank
        policy; ``pointer_window`` is the effective pointer window (the temporal encodings of
        pointers are normalized by ``pointer_window - 1``). With a ``cache`` and memories that
        name their ``rows``, each memory's keys and values are projected once and kept
        (inference only; same results to float rounding). Returns [B, C, h, w].
        """
        b, c, h, w = features.shape
        if self.num_maskmem == 0:
            return features
        if is_init_cond_frame:
            if self.config.directly_add_no_mem_embed:
                return self.add_no_memory_embedding(features)
            memory = self.no_mem_embed.expand(b, 1, self.mem_dim)
            memory_pos = self.no_mem_pos_enc.expand(b, 1, self.mem_dim)
            num_ptr_tokens = 0
        else:
            if self._can_use_cache(cache, memories, h * w):
                return self._condition_cached(features, position, memories, pointers, pointer_window, cache)
            tokens, token_pos = [], []
            for mem in memories:
                tokens.append(mem.features.flatten(2).transpose(1, 2).float())  # [B, hw, C_mem]
                tpos = self.maskmem_tpos_enc[self.num_maskmem - mem.slot - 1].view(1, 1, -1)
                token_pos.append(mem.pos_enc.flatten(2).transpose(1, 2).float() + tpos)
            num_ptr_tokens = 0
            ptr_tokens = self._pointer_tokens(pointers, pointer_window, b, c, features.device)
            if ptr_tokens is not None:
                tokens.append(ptr_tokens[0])
                token_pos.append(ptr_tokens[1])
                num_ptr_tokens = ptr_tokens[0].shape[1]
            if not tokens:
                raise ValueError("a frame that is not an initial conditioning frame needs at least one memory")
            memory = torch.cat(tokens, dim=1)
            memory_pos = torch.cat(token_pos, dim=1)

        curr = features.flatten(2).transpose(1, 2)  # [B, hw, C]
        curr_pos = position.flatten(2).transpose(1, 2)
        out = self.memory_attention(curr, curr_pos, memory, memory_pos, num_obj_ptr_tokens=num_ptr_tokens)
        return out.transpose(1, 2).reshape(b, c, h, w)

    def _pointer_tokens(
        self, pointers: list[PointerInput], pointer_window: int, b: int, c: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Object-pointer memory tokens and their position encodings, [B, P', C_mem] each
        (each pointer split into c / C_mem tokens), or None when there are none."""
        if not (self.config.use_obj_ptrs_in_encoder and pointers):
            return None
        ptrs = torch.stack([p.pointer for p in pointers], dim=1).float()  # [B, P, C]
        if self.config.add_tpos_enc_to_obj_ptrs:
            tpos_dim = c if self.config.proj_tpos_enc_in_obj_ptrs else self.mem_dim
            offsets = torch.tensor([p.offset for p in pointers], device=device)
            ptr_pos = temporal_sine_encoding(offsets / (pointer_window - 1), dim=tpos_dim)
            ptr_pos = self.obj_ptr_tpos_proj(ptr_pos).unsqueeze(0).expand(b, -1, self.mem_dim)
        else:
            ptr_pos = ptrs.new_zeros(b, len(pointers), self.mem_dim)
        if self.mem_dim < c:
            # each pointer becomes c / mem_dim tokens of mem_dim channels
            split = c // self.mem_dim
            ptrs = ptrs.reshape(b, -1, split, self.mem_dim).flatten(1, 2)  # [B, P*split, C_mem]
            ptr_pos = ptr_pos.repeat_interleave(split, dim=1)
        return ptrs, ptr_pos.float()

    def _can_use_cache(self, cache: MemoryProjectionCache | None, memories: list[MemoryInput], hw: int) -> bool:
        if cache is None or not memories or torch.is_grad_enabled() or self.training:
            return False
        if torch.compiler.is_compiling():
            return False
        b = memories[0].features.shape[0]
        return all(len(m.rows) == b and m.features.shape[-2] * m.features.shape[-1] == hw for m in memories)

    def _condition_cached(
        self,
        features: torch.Tensor,
        position: torch.Tensor,
        memories: list[MemoryInput],
        pointers: list[PointerInput],
        pointer_window: int,
        cache: MemoryProjectionCache,
    ) -> torch.Tensor:
        """:meth:`condition_on_memory` with each memory's projections taken from ``cache``."""
        b, c, h, w = features.shape
        frames = [
            CachedMemoryFrame(m.rows, m.pos_enc, self.maskmem_tpos_enc[self.num_maskmem - m.slot - 1].reshape(-1))
            for m in memories
        ]
        ptr_tokens = self._pointer_tokens(pointers, pointer_window, b, c, features.device)
        layers = self.memory_attention.layers
        kv = project_memories(
            cache,
            [layer.cross_attn_image for layer in layers],
            [layer.pos_enc_at_cross_attn_keys for layer in layers],
            frames,
            None if ptr_tokens is None else ptr_tokens[0],
            None if ptr_tokens is None else ptr_tokens[1],
            h * w,
        )
        curr = features.flatten(2).transpose(1, 2)  # [B, hw, C]
        curr_pos = position.flatten(2).transpose(1, 2)
        out = self.memory_attention(curr, curr_pos, None, None, memory_kv=kv)
        return out.transpose(1, 2).reshape(b, c, h, w)

    def encode_memory(
        self,
        features: torch.Tensor,
        high_res_masks: torch.Tensor,
        object_score_logits: torch.Tensor,
        is_mask_from_pts: torch.Tensor | bool,
    ) -> "MemoryEncoding":
        """Encode a frame's features [B, C, h, w] and predicted mask logits [B, 1, S, S] into a memory.

        ``is_mask_from_pts`` ([B] bool or one bool): masks from clicks are binarized first when
        the config says so. Returns memory features and position encoding, [B, C_mem, h, w].
        """
        c = self.config
        if c.binarize_mask_from_pts_for_mem_enc and not self.training:
            binarize = torch.as_tensor(is_mask_from_pts, device=high_res_masks.device).reshape(-1, 1, 1, 1)
            mask_for_mem = torch.where(binarize, (high_res_masks > 0).float(), torch.sigmoid(high_res_masks))
        else:
            mask_for_mem = torch.sigmoid(high_res_masks)
        if c.sigmoid_scale_for_mem_enc != 1.0:
            mask_for_mem = mask_for_mem * c.sigmoid_scale_for_mem_enc
        if c.sigmoid_bias_for_mem_enc != 0.0:
            mask_for_mem = mask_for_mem + c.sigmoid_bias_for_mem_enc
        mem_features, mem_pos = self.memory_encoder(features, mask_for_mem)
        if self.no_obj_embed_spatial is not None:
            absent = 1.0 - (object_score_logits > 0).float()  # [B, 1]
            mem_features = mem_features + absent[..., None, None] * self.no_obj_embed_spatial[..., None, None]
        return MemoryEncoding(mem_features, mem_pos)


def non_overlapping_logits(masks: torch.Tensor) -> torch.Tensor:
    """Keep, at each pixel, only the highest-scoring object: others are clamped to <= -10.

    masks: [N_objects, 1, H, W] logits -> same shape.
    """
    if masks.shape[0] == 1:
        return masks
    winner = masks.argmax(dim=0, keepdim=True)
    own = torch.arange(masks.shape[0], device=masks.device)[:, None, None, None]
    return torch.where(winner == own, masks, masks.clamp(max=-10.0))
