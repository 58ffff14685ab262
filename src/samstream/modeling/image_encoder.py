"""The image encoder: Hiera trunk followed by the FPN neck."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import FpnNeckConfig, ImageEncoderConfig
from .hiera import Hiera
from .position_encoding import SinePositionEncoding


@dataclass
class BackboneOutput:
    """Multi-scale features of a batch of images, high resolution first.

    ``features[i]`` and ``position[i]`` are [B, d_model, H_i, W_i]; for the default
    three levels the strides are 4, 8 and 16.
    """

    features: list[torch.Tensor]
    position: list[torch.Tensor]


class FpnNeck(nn.Module):
    """Feature pyramid without output convs: 1x1 lateral projections plus a top-down path."""

    def __init__(self, config: FpnNeckConfig) -> None:
        super().__init__()
        self.position_encoding = SinePositionEncoding(config.position_encoding)
        self.backbone_channel_list = list(config.backbone_channel_list)
        self.d_model = config.d_model
        self.convs = nn.ModuleList()
        for dim in config.backbone_channel_list:
            lateral = nn.Sequential()
            lateral.add_module(
                "conv",
                nn.Conv2d(
                    dim,
                    config.d_model,
                    kernel_size=config.kernel_size,
                    stride=config.stride,
                    padding=config.padding,
                ),
            )
            self.convs.append(lateral)
        self.interp_mode = config.fpn_interp_model
        self.fuse_type = config.fuse_type
        levels = config.fpn_top_down_levels
        self.top_down_levels = set(range(len(self.convs)) if levels is None else levels)

    def forward(self, xs: list[torch.Tensor]) -> BackboneOutput:
        """xs: trunk outputs, high resolution first, [B, C_i, H_i, W_i]."""
        if len(xs) != len(self.convs):
            raise ValueError(f"expected {len(self.convs)} feature levels, got {len(xs)}")
        n = len(self.convs) - 1
        out: list[torch.Tensor] = [None] * len(xs)  # type: ignore[list-item]
        prev = None
        for i in range(n, -1, -1):  # low resolution to high resolution
            lateral = self.convs[n - i](xs[i])
            if i in self.top_down_levels and prev is not None:
                top_down = F.interpolate(
                    prev.to(torch.float32),
                    scale_factor=2.0,
                    mode=self.interp_mode,
                    align_corners=None if self.interp_mode == "nearest" else False,
                    antialias=False,
                )
                prev = lateral + top_down
                if self.fuse_type == "avg":
                    prev = prev / 2
            else:
                prev = lateral
            out[i] = prev
        pos = [self.position_encoding(x).to(x.dtype) for x in out]
        return BackboneOutput(features=out, position=pos)


class ImageEncoder(nn.Module):
    """Trunk + neck; drops the ``scalp`` lowest-resolution levels."""

    def __init__(self, config: ImageEncoderConfig) -> None:
        super().__init__()
        self.trunk = Hiera(config.trunk)
        self.neck = FpnNeck(config.neck)
        self.scalp = config.scalp
        if self.trunk.channel_list != self.neck.backbone_channel_list:
            raise ValueError(
                f"trunk channels {self.trunk.channel_list} do not match the neck's "
                f"backbone_channel_list {self.neck.backbone_channel_list}"
            )

    def forward(self, images: torch.Tensor) -> BackboneOutput:
        """images: [B, 3, S, S] normalized -> multi-scale features."""
        out = self.neck(self.trunk(images))
        if self.scalp > 0:
            out = BackboneOutput(out.features[: -self.scalp], out.position[: -self.scalp])
        return out
