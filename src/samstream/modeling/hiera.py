"""The Hiera trunk: a hierarchical ViT with windowed and global attention,
query pooling between stages and a windowed absolute position embedding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import HieraConfig
from .common import MLP, DropPath


def window_partition(x: torch.Tensor, window: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """[B, H, W, C] -> windows [B * nW, window, window, C], padding H and W up to multiples."""
    b, h, w, c = x.shape
    pad_h = (window - h % window) % window
    pad_w = (window - w % window) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window, window, wp // window, window, c)
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c)
    return windows, (hp, wp)


def window_unpartition(
    windows: torch.Tensor, window: int, padded_hw: tuple[int, int], hw: tuple[int, int]
) -> torch.Tensor:
    """Inverse of :func:`window_partition`: [B * nW, window, window, C] -> [B, H, W, C]."""
    hp, wp = padded_hw
    h, w = hw
    b = windows.shape[0] // ((hp // window) * (wp // window))
    x = windows.reshape(b, hp // window, wp // window, window, window, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    if hp > h or wp > w:
        x = x[:, :h, :w, :]
    return x


def window_unpartition_add(
    windows: torch.Tensor, window: int, padded_hw: tuple[int, int], shortcut: torch.Tensor
) -> torch.Tensor:
    """``shortcut + window_unpartition(windows, ...)`` for shortcut [B, H, W, C]; without
    padding the windows are added as a permuted view, with no unpartitioned copy."""
    b, h, w, c = shortcut.shape
    if padded_hw != (h, w) or not shortcut.is_contiguous():
        return shortcut + window_unpartition(windows, window, padded_hw, (h, w))
    nh, nw = h // window, w // window
    out = shortcut.view(b, nh, window, nw, window, c) + windows.view(b, nh, nw, window, window, c).permute(
        0, 1, 3, 2, 4, 5
    )  # [B, nH, window, nW, window, C], laid out like the shortcut
    return out.reshape(b, h, w, c)


def pool_hw(x: torch.Tensor, pool: nn.Module) -> torch.Tensor:
    """Max-pool a channels-last map [B, H, W, C] -> [B, H', W', C].

    A non-overlapping max pool (kernel == stride, no padding) is taken directly on the
    channels-last layout as an elementwise maximum of strided views (exact, no transposes).
    """
    if isinstance(pool, nn.MaxPool2d):
        ks = _pair(pool.kernel_size)
        st = _pair(pool.stride if pool.stride is not None else pool.kernel_size)
        if ks == st and _pair(pool.padding) == (0, 0) and _pair(pool.dilation) == (1, 1) and not pool.ceil_mode:
            sh, sw = ks
            h, w = x.shape[1] // sh * sh, x.shape[2] // sw * sw
            if h > 0 and w > 0:
                out = None
                for i in range(sh):
                    for j in range(sw):
                        part = x[:, i:h:sh, j:w:sw]  # [B, H', W', C] strided view
                        out = part.contiguous() if out is None else torch.maximum(out, part)
                return out
    return pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class PatchEmbed(nn.Module):
    """7x7 stride-4 convolution: [B, 3, H, W] -> [B, H/4, W/4, C]."""

    def __init__(self, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a channels-last input makes the convolution write [B, H, W, C] directly
        return self.proj(x.contiguous(memory_format=torch.channels_last)).permute(0, 2, 3, 1)


class MultiScaleAttention(nn.Module):
    """Multi-head self-attention whose queries may be max-pooled (stage transitions)."""

    def __init__(self, dim: int, dim_out: int, num_heads: int, q_pool: nn.Module | None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_pool = q_pool
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def scaled_dot_product(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention over heads: q [B, nH, Nq, c], k/v [B, nH, Nk, c] -> [B, nH, Nq, c]."""
        return F.scaled_dot_product_attention(q, k, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, H, W, C] -> [B, H', W', C_out]."""
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1)  # [B, HW, 3, nH, Ch]
        q, k, v = qkv.unbind(2)
        if self.q_pool is not None:
            q = pool_hw(q.reshape(b, h, w, -1), self.q_pool)
            h, w = q.shape[1:3]
            q = q.reshape(b, h * w, self.num_heads, -1)
        out = self.scaled_dot_product(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        out = out.transpose(1, 2).reshape(b, h, w, -1)  # [B, H', W', C_out]
        return self.proj(out)


class MultiScaleBlock(nn.Module):
    """A Hiera block: (windowed) attention with optional query pooling, then an MLP."""

    def __init__(
        self,
        *,
        dim: int,
        dim_out: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        q_stride: tuple[int, int] | None = None,
        window_size: int = 0,
    ) -> None:
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.window_size = window_size
        self.q_stride = q_stride
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.pool = nn.MaxPool2d(kernel_size=q_stride, stride=q_stride) if q_stride else None
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_pool=self.pool)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, int(dim_out * mlp_ratio), dim_out, 2, activation=nn.GELU)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, H, W, C] -> [B, H', W', C_out]."""
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = self.proj(x)
            if self.pool is not None:
                shortcut = pool_hw(shortcut, self.pool)

        window = self.window_size
        if window > 0:
            h, w = x.shape[1], x.shape[2]
            x, padded_hw = window_partition(x, window)
        x = self.attn(x)
        if self.q_stride:
            # queries were pooled: the windows shrank with them
            window = self.window_size // self.q_stride[0]
            h, w = shortcut.shape[1:3]
            padded_hw = (h + (window - h % window) % window, w + (window - w % window) % window)
        if self.window_size > 0 and (not self.training or isinstance(self.drop_path, nn.Identity)):
            x = window_unpartition_add(x, window, padded_hw, shortcut)
        else:
            if self.window_size > 0:
                x = window_unpartition(x, window, padded_hw, (h, w))
            x = shortcut + self.drop_path(x)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class Hiera(nn.Module):
    """Hiera trunk. Input [B, 3, S, S]; output one [B, C_i, H_i, W_i] map per stage, high-res first."""

    def __init__(self, config: HieraConfig) -> None:
        super().__init__()
        if len(config.stages) != len(config.window_spec):
            raise ValueError("stages and window_spec must have the same length")
        self.config = config
        depth = sum(config.stages)
        self.stage_ends = [sum(config.stages[:i]) - 1 for i in range(1, len(config.stages) + 1)]
        if not 0 <= config.q_pool <= len(self.stage_ends) - 1:
            raise ValueError(f"q_pool must be in [0, {len(self.stage_ends) - 1}], got {config.q_pool}")
        q_pool_blocks = [end + 1 for end in self.stage_ends[:-1]][: config.q_pool]
        self.return_interm_layers = config.return_interm_layers

        embed_dim = config.embed_dim
        num_heads = config.num_heads
        self.patch_embed = PatchEmbed(embed_dim)
        self.global_att_blocks = tuple(config.global_att_blocks or ())
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, *config.window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(
            torch.zeros(1, embed_dim, config.window_spec[0], config.window_spec[0])
        )
        drop_rates = [config.drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]

        stage = 0
        self.blocks = nn.ModuleList()
        for i in range(depth):
            dim_out = embed_dim
            # the window size lags one block behind the stage: the first block of a
            # stage pools from the previous stage's windows
            window = 0 if i in self.global_att_blocks else config.window_spec[stage]
            if i - 1 in self.stage_ends:
                dim_out = int(embed_dim * config.dim_mul)
                num_heads = int(num_heads * config.head_mul)
                stage += 1
            self.blocks.append(
                MultiScaleBlock(
                    dim=embed_dim,
                    dim_out=dim_out,
                    num_heads=num_heads,
                    drop_path=drop_rates[i],
                    q_stride=tuple(config.q_stride) if i in q_pool_blocks else None,
                    window_size=window,
                )
            )
            embed_dim = dim_out

        ends = self.stage_ends[::-1] if self.return_interm_layers else [self.stage_ends[-1]]
        self.channel_list = [self.blocks[i].dim_out for i in ends]

    def _position_embedding(self, h: int, w: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Background embedding interpolated to (h, w) plus the tiled window embedding: [1, h, w, C],
        computed in the parameters' dtype and then cast to ``dtype`` if given."""
        pos = F.interpolate(self.pos_embed, size=(h, w), mode="bicubic")
        window = self.pos_embed_window
        reps = [a // b for a, b in zip(pos.shape, window.shape)]
        pos = pos + window.tile(reps)
        pos = pos.permute(0, 2, 3, 1)  # [1, h, w, C]
        return pos if dtype is None else pos.to(dtype)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)  # [B, H, W, C]
        # under autocast the patch embedding comes out in low precision: the position embedding
        # joins it there, rather than promoting the first stage to float32
        low = x.dtype in (torch.bfloat16, torch.float16) and self.pos_embed.dtype == torch.float32
        x = x + self._position_embedding(x.shape[1], x.shape[2], x.dtype if low else None)
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.stage_ends[-1] or (i in self.stage_ends and self.return_interm_layers):
                outputs.append(x.permute(0, 3, 1, 2))  # [B, C, H, W]
        return outputs
