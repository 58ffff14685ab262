"""Memory attention: the current frame's features attend to the memory bank
(past mask memories and object pointers) through rotary cross-attention."""

from __future__ import annotations

import torch
from torch import nn

from ..config import MemoryAttentionConfig, MemoryAttentionLayerConfig
from .attention import RoPEAttention
from .common import activation_fn


class MemoryAttentionLayer(nn.Module):
    """Pre-norm self-attention, cross-attention to memory, and a feed-forward block."""

    def __init__(self, config: MemoryAttentionLayerConfig) -> None:
        super().__init__()
        self.self_attn = RoPEAttention(config.self_attention)
        self.cross_attn_image = RoPEAttention(config.cross_attention)
        self.linear1 = nn.Linear(config.d_model, config.dim_feedforward)
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.dim_feedforward, config.d_model)
        self.norm1 = nn.LayerNorm(config.d_model)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.norm3 = nn.LayerNorm(config.d_model)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)
        self.dropout3 = nn.Dropout(config.dropout)
        self.activation = activation_fn(config.activation)
        self.pos_enc_at_attn = config.pos_enc_at_attn
        self.pos_enc_at_cross_attn_queries = config.pos_enc_at_cross_attn_queries
        self.pos_enc_at_cross_attn_keys = config.pos_enc_at_cross_attn_keys

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        pos: torch.Tensor,
        query_pos: torch.Tensor,
        num_k_exclude_rope: int = 0,
    ) -> torch.Tensor:
        """tgt/query_pos [B, HW, C]; memory/pos [B, M, C_mem] -> [B, HW, C]."""
        x = self.norm1(tgt)
        q = x + query_pos if self.pos_enc_at_attn else x
        tgt = tgt + self.dropout1(self.self_attn(q, q, x))

        x = self.norm2(tgt)
        x = self.cross_attn_image(
            x + query_pos if self.pos_enc_at_cross_attn_queries else x,
            memory + pos if self.pos_enc_at_cross_attn_keys else memory,
            memory,
            num_k_exclude_rope=num_k_exclude_rope,
        )
        tgt = tgt + self.dropout2(x)

        x = self.norm3(tgt)
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return tgt + self.dropout3(x)


class MemoryAttention(nn.Module):
    def __init__(self, config: MemoryAttentionConfig) -> None:
        super().__init__()
        self.d_model = config.d_model
        self.layers = nn.ModuleList(MemoryAttentionLayer(config.layer) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.pos_enc_at_input = config.pos_enc_at_input

    def forward(
        self,
        curr: torch.Tensor,
        curr_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        num_obj_ptr_tokens: int = 0,
    ) -> torch.Tensor:
        """Batch-first tokens: curr/curr_pos [B, HW, C], memory/memory_pos [B, M, C_mem].

        The last ``num_obj_ptr_tokens`` memory tokens are object pointers (no rotary encoding).
        Returns [B, HW, C].
        """
        if curr.shape[0] != memory.shape[0]:
            raise ValueError(f"batch of current features {curr.shape[0]} != memory batch {memory.shape[0]}")
        out = curr
        if self.pos_enc_at_input:
            out = out + 0.1 * curr_pos
        for layer in self.layers:
            out = layer(out, memory, memory_pos, curr_pos, num_k_exclude_rope=num_obj_ptr_tokens)
        return self.norm(out)
