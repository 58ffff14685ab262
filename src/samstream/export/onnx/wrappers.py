"""The model's steps as modules with plain-tensor signatures, ready for ``torch.onnx.export``.

Each wrapper holds the :class:`~samstream.modeling.sam2.SAM2Model` and calls its parts; the
only math written here is what the model does with Python lists and ints and a graph must do
with tensors (memory tokens, pointer encodings, rotary tables for a dynamic number of keys).
A model built with ``accel=None`` (the plain modules) is expected.

Shapes: B objects (or images), S the input size, h = w = S / 16, C the decoder width,
C_mem the memory width, F memory frames, P object pointers, N points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...modeling.attention import RoPEAttention
from ...modeling.position_encoding import temporal_sine_encoding
from ...modeling.sam2 import SAM2Model


def rotary_tables(attn: RoPEAttention, num_queries: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin [num_queries, head_dim / 2] of a rotary attention (real-valued, no complex numbers)."""
    cos, sin = attn._rope(num_queries, torch.device("cpu"))
    return cos.clone(), sin.clone()


def rotate_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs of x [B, nH, N, D] by cos/sin [N, D/2]; the real-valued rotary encoding.

    The pairs are split with a reshape to [..., D/2, 2] so the graph has no complex numbers;
    a key with cos = 1 and sin = 0 is left exactly as it is (how object pointers are excluded).
    """
    b, heads, n, d = x.shape
    pairs = x.reshape(b, heads, n, d // 2, 2)  # [B, nH, N, D/2, 2]
    real, imag = pairs[..., 0], pairs[..., 1]
    out = torch.stack((real * cos - imag * sin, real * sin + imag * cos), dim=-1)
    return out.reshape(b, heads, n, d)


class RotaryCrossAttention(nn.Module):
    """A :class:`RoPEAttention` whose key rotations come from a table built in the graph: the
    query table repeated once per memory frame, then identity rotations for the pointer tokens."""

    def __init__(self, attn: RoPEAttention, num_queries: int) -> None:
        super().__init__()
        self.attn = attn
        cos, sin = rotary_tables(attn, num_queries)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_frames: torch.Tensor | int) -> torch.Tensor:
        """q [B, HW, C], k/v [B, F*HW + T, C_kv] (T pointer tokens, not rotated) -> [B, HW, C]."""
        a = self.attn
        q, k, v = a.project_q(q), a.project_k(k), a.project_v(v)  # [B, nH, N, c]
        q = rotate_pairs(q, self.cos, self.sin)
        cos_k = self.cos.repeat(num_frames, 1)  # [F*HW, c/2]
        sin_k = self.sin.repeat(num_frames, 1)
        ones = torch.ones(k.shape[2] - cos_k.shape[0], cos_k.shape[1], dtype=cos_k.dtype)  # [T, c/2]
        cos_k = torch.cat([cos_k, ones], dim=0)
        sin_k = torch.cat([sin_k, ones * 0.0], dim=0)
        k = rotate_pairs(k, cos_k, sin_k)
        return a._attend(q, k, v)


class RotarySelfAttention(nn.Module):
    """A :class:`RoPEAttention` over the query grid, with its tables as buffers."""

    def __init__(self, attn: RoPEAttention, num_queries: int) -> None:
        super().__init__()
        self.attn = attn
        cos, sin = rotary_tables(attn, num_queries)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        a = self.attn
        q, k, v = a.project_q(q), a.project_k(k), a.project_v(v)
        return a._attend(rotate_pairs(q, self.cos, self.sin), rotate_pairs(k, self.cos, self.sin), v)


class ImageEncoderGraph(nn.Module):
    """image [B, 3, S, S] (normalized) -> high_res_0 [B, C/8, 4h, 4w], high_res_1 [B, C/4, 2h, 2w],
    image_embed [B, C, h, w] (without ``no_mem_embed``), image_pos [B, C, h, w].

    Without high-res features only image_embed and image_pos come out.
    """

    def __init__(self, model: SAM2Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.model.encode_images(image)
        return (*feats.features, feats.position[-1].expand(image.shape[0], -1, -1, -1))


class PromptDecoderGraph(nn.Module):
    """Prompt encoder + mask decoder + object pointer, for B prompt sets.

    In: image_embed [B, C, h, w] (memory-conditioned, or with ``no_mem_embed``), high_res_0/1,
    point_coords [B, N, 2] in input pixels (box corners first, labels 2 and 3), point_labels
    [B, N] int64, mask_input [B, 1, 4h, 4w] logits, has_mask_input [B] (1.0: use mask_input).
    Out: masks [B, M, 4h, 4w] (the decoder's logits), iou [B, M], object_score_logits [B, 1],
    obj_ptr [B, M or 1, C] (projected, blended with the no-object pointer by presence).
    M = 3 with ``multimask``, else 1 (the dynamic stability choice when the model has it).
    """

    def __init__(self, model: SAM2Model, multimask: bool) -> None:
        super().__init__()
        self.model = model
        self.multimask = multimask

    def forward(self, image_embed, high_res_0, high_res_1, point_coords, point_labels, mask_input, has_mask_input):
        m = self.model
        pe = m.sam_prompt_encoder
        sparse = pe.embed_points(point_coords, point_labels, pad=True)
        h, w = pe.image_embedding_size
        no_mask = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(image_embed.shape[0], -1, h, w)
        has = has_mask_input.reshape(-1, 1, 1, 1)
        dense = has * pe.embed_masks(mask_input) + (1.0 - has) * no_mask
        high_res = [high_res_0, high_res_1] if m.use_high_res_features_in_sam else None
        dec = m.sam_mask_decoder(
            image_embed, pe.get_dense_pe(), sparse, dense, multimask_output=self.multimask, high_res_features=high_res
        )
        ptrs = m._pointer_with_presence(m.obj_ptr_proj(dec.tokens), dec.object_score_logits[:, None])
        return dec.masks.float(), dec.iou, dec.object_score_logits, ptrs


class MaskDownsampleGraph(nn.Module):
    """mask [B, 1, S, S] (0/1) -> [B, 1, S/4, S/4]: the learned downsampling a mask prompt takes
    to give an object pointer."""

    def __init__(self, model: SAM2Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        return self.model.mask_downsample(mask)


class MemoryAttentionGraph(nn.Module):
    """A tracked frame's features conditioned on F memories and P object pointers.

    In: image_embed, image_pos [B, C, h, w]; memory [B, F, C_mem, h, w] (float32 values of the
    stored bfloat16 memories), memory_pos [B, F, C_mem, h, w], memory_slots [F] int64 (0 for a
    conditioning frame, else 1..num_maskmem-1); obj_ptrs [B, P, C] and ptr_positions [P]
    (temporal offset / (pointer window - 1)) when the model uses object pointers.
    Out: conditioned [B, C, h, w] (what the decoder takes as image_embed).
    """

    def __init__(self, model: SAM2Model) -> None:
        super().__init__()
        self.model = model
        c = model.config
        if not c.directly_add_no_mem_embed:
            raise ValueError("ONNX export needs directly_add_no_mem_embed=True (every official SAM 2 / 2.1 config)")
        hw = (c.image_size // c.backbone_stride) ** 2
        self.self_attn = nn.ModuleList(RotarySelfAttention(layer.self_attn, hw) for layer in model.memory_attention.layers)
        self.cross_attn = nn.ModuleList(
            RotaryCrossAttention(layer.cross_attn_image, hw) for layer in model.memory_attention.layers
        )

    def _tokens(self, memory, memory_pos, memory_slots, obj_ptrs, ptr_positions):
        """Memory tokens and their positions [B, F*hw + T, C_mem] (T pointer tokens)."""
        m = self.model
        b, f, cm = memory.shape[:3]
        tokens = memory.flatten(3).permute(0, 1, 3, 2)  # [B, F, hw, C_mem]
        tpos = m.maskmem_tpos_enc[m.num_maskmem - 1 - memory_slots].reshape(1, -1, 1, cm)  # [1, F, 1, C_mem]
        pos = memory_pos.flatten(3).permute(0, 1, 3, 2) + tpos
        tokens, pos = tokens.reshape(b, -1, cm), pos.reshape(b, -1, cm)  # [B, F*hw, C_mem]
        if obj_ptrs is None:
            return tokens, pos
        c = m.hidden_dim
        n_ptr = obj_ptrs.shape[1]
        if m.config.add_tpos_enc_to_obj_ptrs:
            tpos_dim = c if m.config.proj_tpos_enc_in_obj_ptrs else m.mem_dim
            ptr_pos = m.obj_ptr_tpos_proj(temporal_sine_encoding(ptr_positions, dim=tpos_dim))  # [P, C_mem]
            ptr_pos = ptr_pos.unsqueeze(0).expand(b, -1, -1)
        else:
            ptr_pos = obj_ptrs.new_zeros(b, n_ptr, m.mem_dim)
        ptrs = obj_ptrs
        if m.mem_dim < c:
            split = c // m.mem_dim  # each pointer becomes split tokens of C_mem channels
            ptrs = ptrs.reshape(b, n_ptr, split, m.mem_dim).reshape(b, n_ptr * split, m.mem_dim)
            ptr_pos = ptr_pos.unsqueeze(2).expand(-1, -1, split, -1).reshape(b, n_ptr * split, m.mem_dim)
        return torch.cat([tokens, ptrs], dim=1), torch.cat([pos, ptr_pos], dim=1)

    def forward(self, image_embed, image_pos, memory, memory_pos, memory_slots, obj_ptrs=None, ptr_positions=None):
        m = self.model
        b, c, h, w = image_embed.shape
        mem, mem_pos = self._tokens(memory, memory_pos, memory_slots, obj_ptrs, ptr_positions)
        num_frames = memory.shape[1]
        curr = image_embed.flatten(2).transpose(1, 2)  # [B, hw, C]
        curr_pos = image_pos.flatten(2).transpose(1, 2)
        attn = m.memory_attention
        out = curr + 0.1 * curr_pos if attn.pos_enc_at_input else curr
        for layer, self_attn, cross_attn in zip(attn.layers, self.self_attn, self.cross_attn):
            x = layer.norm1(out)
            q = x + curr_pos if layer.pos_enc_at_attn else x
            out = out + self_attn(q, q, x)
            x = layer.norm2(out)
            x = cross_attn(
                x + curr_pos if layer.pos_enc_at_cross_attn_queries else x,
                mem + mem_pos if layer.pos_enc_at_cross_attn_keys else mem,
                mem,
                num_frames,
            )
            out = out + x
            x = layer.norm3(out)
            out = out + layer.linear2(layer.activation(layer.linear1(x)))
        out = attn.norm(out)
        return out.transpose(1, 2).reshape(b, c, h, w)


class MemoryEncoderGraph(nn.Module):
    """A frame's new memory for B objects.

    In: image_embed [B, C, h, w] (raw, as the image encoder gives it), low_res_masks
    [B, 1, S/4, S/4] chosen logits, object_score_logits [B, 1], is_mask_from_pts [B] bool.
    Out: memory [B, C_mem, h, w] float32 (the tracker stores it in bfloat16), memory_pos [B, C_mem, h, w].
    """

    def __init__(self, model: SAM2Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, image_embed, low_res_masks, object_score_logits, is_mask_from_pts):
        s = self.model.image_size
        high = F.interpolate(low_res_masks, size=(s, s), mode="bilinear", align_corners=False)
        mem = self.model.encode_memory(image_embed, high, object_score_logits, is_mask_from_pts)
        return mem.features, mem.pos_enc


__all__ = [
    "ImageEncoderGraph",
    "MaskDownsampleGraph",
    "MemoryAttentionGraph",
    "MemoryEncoderGraph",
    "PromptDecoderGraph",
    "RotaryCrossAttention",
    "RotarySelfAttention",
    "rotate_pairs",
    "rotary_tables",
]
