"""Multi-head attention with optional channel downsampling, and its rotary variant."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import RoPEAttentionConfig
from .position_encoding import apply_rotary, axial_rope_angles


class Attention(nn.Module):
    """Attention whose q/k/v are projected to ``embedding_dim // downsample_rate`` channels.

    q: [B, Nq, C], k and v: [B, Nk, C_kv] -> [B, Nq, C].
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        downsample_rate: int = 1,
        dropout: float = 0.0,
        kv_in_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.kv_in_dim = kv_in_dim if kv_in_dim is not None else embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads != 0:
            raise ValueError(f"num_heads {num_heads} must divide the internal dim {self.internal_dim}")
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(self.kv_in_dim, self.internal_dim)
        self.v_proj = nn.Linear(self.kv_in_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)
        self.dropout_p = dropout

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, C] -> [B, nH, N, C/nH]."""
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def scaled_dot_product(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float) -> torch.Tensor:
        """Attention over heads: q [B, nH, Nq, c], k/v [B, nH, Nk, c] -> [B, nH, Nq, c]."""
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Heads [B, nH, N, c] -> projected output [B, Nq, C]."""
        out = self.scaled_dot_product(q, k, v, self.dropout_p if self.training else 0.0)
        b, h, n, c = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, h * c))  # [B, Nq, C]

    def project_q(self, q: torch.Tensor) -> torch.Tensor:
        """Queries [B, N, C] -> projected heads [B, nH, N, c]."""
        return self._heads(self.q_proj(q))

    def project_k(self, k: torch.Tensor) -> torch.Tensor:
        return self._heads(self.k_proj(k))

    def project_v(self, v: torch.Tensor) -> torch.Tensor:
        return self._heads(self.v_proj(v))

    def attend_projected(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` where some projections are already done: a 3-D argument [B, N, C]
        is projected as usual, a 4-D one is taken as projected heads [B, nH, N, c]."""
        return self._attend(
            q if q.dim() == 4 else self.project_q(q),
            k if k.dim() == 4 else self.project_k(k),
            v if v.dim() == 4 else self.project_v(v),
        )

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self._attend(self.project_q(q), self.project_k(k), self.project_v(v))


class RoPEAttention(Attention):
    """Attention with 2-D axial rotary position encoding on queries and keys.

    Keys may hold several frames of the query grid (``rope_k_repeat``); the last
    ``num_k_exclude_rope`` keys (object pointers) are not rotated.
    """

    def __init__(self, config: RoPEAttentionConfig) -> None:
        super().__init__(
            config.embedding_dim,
            config.num_heads,
            downsample_rate=config.downsample_rate,
            dropout=config.dropout,
            kv_in_dim=config.kv_in_dim,
        )
        self.rope_theta = config.rope_theta
        self.rope_k_repeat = config.rope_k_repeat
        self.feat_sizes = tuple(config.feat_sizes)
        # (n, device): cos and sin; ("cis", n, device): the same as complex numbers
        self._rope_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor] | torch.Tensor] = {}

    def _rope(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin [n, head_dim / 2] for a grid of n tokens (square unless feat_sizes fits)."""
        key = (n, device)
        cached = self._rope_cache.get(key)
        if cached is None:
            if self.feat_sizes[0] * self.feat_sizes[1] == n:
                end_x, end_y = self.feat_sizes
            else:
                side = int(round(math.sqrt(n)))
                if side * side != n:
                    raise ValueError(f"cannot lay {n} query tokens on a square rotary grid")
                end_x = end_y = side
            with torch.autocast(device.type, enabled=False):  # cached: independent of autocast
                angles = axial_rope_angles(self.internal_dim // self.num_heads, end_x, end_y, self.rope_theta)
            cached = (angles.cos().to(device), angles.sin().to(device))
            self._rope_cache[key] = cached
        return cached

    def rotate(self, x: torch.Tensor, n: int, repeats: int = 1) -> torch.Tensor:
        """Rotary encoding of heads x [B, nH, repeats * n, c]: ``repeats`` copies of the grid of
        n tokens (one per memory frame), each rotated like the queries."""
        cos, sin = self._rope(n, x.device)
        key = ("cis", n, x.device)
        cis = self._rope_cache.get(key)
        if cis is None:
            cis = torch.complex(cos, sin)
            self._rope_cache[key] = cis
        if repeats == 1:
            return apply_rotary(x, cos, sin, cis)
        grids = x.unflatten(-2, (repeats, n))  # [B, nH, repeats, n, c]
        return apply_rotary(grids, cos, sin, cis).flatten(-3, -2)

    def rotated_queries(self, q: torch.Tensor) -> torch.Tensor:
        """Queries [B, N, C] (a square grid of N tokens) -> projected, rotated heads [B, nH, N, c]."""
        q = self.project_q(q)
        return self.rotate(q, q.shape[-2])

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_k_exclude_rope: int = 0
    ) -> torch.Tensor:
        q = self.project_q(q)
        k = self.project_k(k)
        v = self.project_v(v)
        n_q = q.shape[-2]
        q = self.rotate(q, n_q)
        n_rope = k.shape[-2] - num_k_exclude_rope
        if n_rope > 0:
            if n_rope != n_q and (not self.rope_k_repeat or n_rope % n_q != 0):
                raise ValueError(
                    f"{n_rope} rotary keys do not match {n_q} queries (rope_k_repeat={self.rope_k_repeat})"
                )
            k_rot = self.rotate(k[:, :, :n_rope], n_q, n_rope // n_q)
            k = torch.cat([k_rot, k[:, :, n_rope:]], dim=2) if num_k_exclude_rope > 0 else k_rot
        return self._attend(q, k, v)
