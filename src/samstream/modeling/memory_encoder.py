"""The memory encoder: a predicted mask fused with the frame's features into a memory."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import CXBlockConfig, FuserConfig, MaskDownSamplerConfig, MemoryEncoderConfig
from .common import DropPath, LayerNorm2d
from .position_encoding import SinePositionEncoding


class MaskDownSampler(nn.Module):
    """Strided convs (each followed by LayerNorm2d and GELU) then a 1x1 projection.

    [B, 1, H, W] -> [B, embed_dim, H / total_stride, W / total_stride].
    """

    def __init__(self, config: MaskDownSamplerConfig) -> None:
        super().__init__()
        num_layers = int(math.log2(config.total_stride) // math.log2(config.stride))
        if config.stride**num_layers != config.total_stride:
            raise ValueError(f"total_stride {config.total_stride} is not a power of stride {config.stride}")
        self.encoder = nn.Sequential()
        chans_in = chans_out = 1
        for _ in range(num_layers):
            chans_out = chans_in * config.stride**2
            self.encoder.append(
                nn.Conv2d(chans_in, chans_out, kernel_size=config.kernel_size, stride=config.stride, padding=config.padding)
            )
            self.encoder.append(LayerNorm2d(chans_out))
            self.encoder.append(nn.GELU())
            chans_in = chans_out
        self.encoder.append(nn.Conv2d(chans_out, config.embed_dim, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class CXBlock(nn.Module):
    """ConvNeXt block: depthwise conv, LayerNorm, pointwise MLP (channels-last), layer scale."""

    def __init__(self, config: CXBlockConfig) -> None:
        super().__init__()
        dim = config.dim
        self.dwconv = nn.Conv2d(
            dim, dim, kernel_size=config.kernel_size, padding=config.padding, groups=dim if config.use_dwconv else 1
        )
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = (
            nn.Parameter(config.layer_scale_init_value * torch.ones(dim)) if config.layer_scale_init_value > 0 else None
        )
        self.drop_path = DropPath(config.drop_path) if config.drop_path > 0.0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> [B, C, H, W]."""
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)  # [B, H, W, C]
        y = self.pwconv2(self.act(self.pwconv1(y)))
        if self.gamma is not None:
            y = self.gamma * y
        return x + self.drop_path(y.permute(0, 3, 1, 2))


class Fuser(nn.Module):
    def __init__(self, config: FuserConfig) -> None:
        super().__init__()
        self.proj: nn.Module = nn.Identity()
        if config.input_projection:
            if config.dim is None:
                raise ValueError("Fuser.input_projection requires dim")
            self.proj = nn.Conv2d(config.dim, config.dim, kernel_size=1)
        self.layers = nn.ModuleList(CXBlock(config.layer) for _ in range(config.num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    def __init__(self, config: MemoryEncoderConfig) -> None:
        super().__init__()
        self.mask_downsampler = MaskDownSampler(config.mask_downsampler)
        self.pix_feat_proj = nn.Conv2d(config.in_dim, config.in_dim, kernel_size=1)
        self.fuser = Fuser(config.fuser)
        self.position_encoding = SinePositionEncoding(config.position_encoding)
        self.out_proj: nn.Module = nn.Identity()
        if config.out_dim != config.in_dim:
            self.out_proj = nn.Conv2d(config.in_dim, config.out_dim, kernel_size=1)

    def forward(self, pix_feat: torch.Tensor, mask_for_mem: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pix_feat [B, C, h, w]; mask_for_mem [B, 1, 16h, 16w] (already scaled/sigmoided).

        Returns memory features [B, C_mem, h, w] and their position encoding [B, C_mem, h, w].
        When every row of pix_feat is the same tensor (a stride-0 batch: one frame's features
        for several objects), its projection is computed once.
        """
        x = self.fuse(self.project_features(pix_feat), mask_for_mem)
        return x, self.position_encoding(x).to(x.dtype)

    def project_features(self, pix_feat: torch.Tensor) -> torch.Tensor:
        """[B, C, h, w] -> [B, C, h, w], or [1, C, h, w] for a stride-0 batch of one frame."""
        if pix_feat.shape[0] > 1 and pix_feat.stride(0) == 0:
            pix_feat = pix_feat[:1]
        return self.pix_feat_proj(pix_feat)

    def fuse(self, projected: torch.Tensor, mask_for_mem: torch.Tensor) -> torch.Tensor:
        """Projected features [B or 1, C, h, w] and masks [B, 1, 16h, 16w] -> [B, C_mem, h, w]."""
        return self.out_proj(self.fuser(projected + self.mask_downsampler(mask_for_mem)))
