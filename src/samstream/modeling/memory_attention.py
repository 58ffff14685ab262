"""Memory attention: the current frame's features attend to the memory bank
(past mask memories and object pointers) through rotary cross-attention."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..config import MemoryAttentionConfig, MemoryAttentionLayerConfig
from .attention import RoPEAttention
from .common import activation_fn

if TYPE_CHECKING:
    from .memory_cache import MemoryKV


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
        self.activation_name = config.activation
        self.pos_enc_at_attn = config.pos_enc_at_attn
        self.pos_enc_at_cross_attn_queries = config.pos_enc_at_cross_attn_queries
        self.pos_enc_at_cross_attn_keys = config.pos_enc_at_cross_attn_keys

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor | None,
        pos: torch.Tensor | None,
        query_pos: torch.Tensor,
        num_k_exclude_rope: int = 0,
        *,
        memory_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        shared_query: bool = False,
    ) -> torch.Tensor:
        """tgt/query_pos [B, HW, C]; memory/pos [B, M, C_mem] -> [B, HW, C].

        ``memory_kv``: the cross-attention's keys (rotated) and values, already projected
        ([B, nH, M, c] each, :mod:`.memory_cache`); memory and pos are then not used.
        ``shared_query``: every row of tgt and query_pos is the same (one frame's features for
        several objects), so the self-attention and the queries are computed once.
        """
        b = tgt.shape[0]
        shared = shared_query and b > 1 and not self.training
        if shared:
            tgt, query_pos = tgt[:1], query_pos[:1]
        x = self.norm1(tgt)
        q = x + query_pos if self.pos_enc_at_attn else x
        tgt = tgt + self.dropout1(self.self_attn(q, q, x))

        x = self.norm2(tgt)
        q_in = x + query_pos if self.pos_enc_at_cross_attn_queries else x
        if memory_kv is not None:
            keys, values = memory_kv
            queries = self.cross_attn_image.rotated_queries(q_in)  # [1 or B, nH, HW, c]
            if shared:
                queries = queries.expand(b, -1, -1, -1)
            x = self.cross_attn_image.attend_projected(queries, keys, values)
        else:
            if shared:
                q_in = q_in.expand(b, -1, -1)
            x = self.cross_attn_image(
                q_in,
                memory + pos if self.pos_enc_at_cross_attn_keys else memory,
                memory,
                num_k_exclude_rope=num_k_exclude_rope,
            )
        tgt = tgt + self.dropout2(x)  # [B, HW, C] from here on

        return tgt + self.dropout3(self.feed_forward(self.norm3(tgt)))

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The feed-forward block [B, HW, C] -> [B, HW, C]."""
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


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
        memory: torch.Tensor | None,
        memory_pos: torch.Tensor | None,
        num_obj_ptr_tokens: int = 0,
        *,
        memory_kv: "MemoryKV | None" = None,
    ) -> torch.Tensor:
        """Batch-first tokens: curr/curr_pos [B, HW, C], memory/memory_pos [B, M, C_mem].

        The last ``num_obj_ptr_tokens`` memory tokens are object pointers (no rotary encoding).
        ``memory_kv``: the memory already projected to keys and values, per layer
        (:class:`.memory_cache.MemoryKV`), instead of memory and memory_pos.
        When every row of curr and curr_pos is the same tensor (a stride-0 batch: one frame's
        features for several objects), the first layer's self-attention runs once.
        Returns [B, HW, C].
        """
        batch = memory.shape[0] if memory is not None else memory_kv.batch
        if curr.shape[0] != batch:
            raise ValueError(f"batch of current features {curr.shape[0]} != memory batch {batch}")
        groups = self.object_groups(curr)
        if len(groups) == 1:
            return self._attend(curr, curr_pos, memory, memory_pos, num_obj_ptr_tokens, memory_kv)
        return torch.cat(
            [
                self._attend(
                    curr[s:e],
                    curr_pos[s:e],
                    None if memory is None else memory[s:e],
                    None if memory_pos is None else memory_pos[s:e],
                    num_obj_ptr_tokens,
                    None if memory_kv is None else memory_kv.rows(s, e),
                )
                for s, e in groups
            ],
            dim=0,
        )

    def object_groups(self, curr: torch.Tensor) -> list[tuple[int, int]]:
        """Row ranges of the batch (objects) that run through every layer one after the other;
        here one range, the whole batch. curr: [B, HW, C]."""
        return [(0, curr.shape[0])]

    def _attend(
        self,
        curr: torch.Tensor,
        curr_pos: torch.Tensor,
        memory: torch.Tensor | None,
        memory_pos: torch.Tensor | None,
        num_obj_ptr_tokens: int,
        memory_kv: "MemoryKV | None",
    ) -> torch.Tensor:
        """One group of objects through every layer: as :meth:`forward`, on its rows."""
        shared = curr.shape[0] > 1 and curr.stride(0) == 0 and curr_pos.stride(0) == 0
        out = curr
        if self.pos_enc_at_input:
            out = out[:1] + 0.1 * curr_pos[:1] if shared else out + 0.1 * curr_pos
            if shared:
                out = out.expand(curr.shape[0], -1, -1)
        for i, layer in enumerate(self.layers):
            out = layer(
                out,
                memory,
                memory_pos,
                curr_pos,
                num_k_exclude_rope=num_obj_ptr_tokens,
                memory_kv=None if memory_kv is None else memory_kv[i],
                shared_query=shared and i == 0,
            )
        return self.norm(out)
