"""The image encoder: Hiera trunk followed by the FPN neck."""

from __future__ import annotations

from collections.abc import Mapping
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

    def forward(self, xs: list[torch.Tensor], projections: Mapping[int, nn.Conv2d] | None = None) -> BackboneOutput:
        """xs: trunk outputs, high resolution first, [B, C_i, H_i, W_i].

        ``projections``: {level: 1x1 convolution} applied to those output levels (then
        ``features[level]`` is the projected map). A level made by its lateral convolution
        alone gets the product of the two 1x1 convolutions in one step, without the
        intermediate d_model-channel map.
        """
        if len(xs) != len(self.convs):
            raise ValueError(f"expected {len(self.convs)} feature levels, got {len(xs)}")
        projections = projections or {}
        n = len(self.convs) - 1
        out: list[torch.Tensor] = [None] * len(xs)  # type: ignore[list-item]
        pos: list[torch.Tensor] = [None] * len(xs)  # type: ignore[list-item]
        prev = None
        for i in range(n, -1, -1):  # low resolution to high resolution
            conv = self.convs[n - i].conv
            proj = projections.get(i)
            lateral_only = i not in self.top_down_levels or prev is None
            needed_below = i > 0 and (i - 1) in self.top_down_levels
            if proj is not None and lateral_only and not needed_below and _mergeable(conv, proj):
                out[i] = self.merged_lateral(i, xs[i], conv, proj)
                prev = None
                pos[i] = self.position_encoding(out[i], out[i].dtype)
                continue
            lateral = conv(xs[i])
            if not lateral_only:
                prev = self._top_down(lateral, prev)
            else:
                prev = lateral
            pos[i] = self.position_encoding(prev, prev.dtype)
            out[i] = prev if proj is None else proj(prev)
        return BackboneOutput(features=out, position=pos)

    @staticmethod
    def merged_projection(conv: nn.Conv2d, proj: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
        """The single 1x1 convolution equal to ``proj(conv(x))``: weight [C_proj, C_in] and
        bias [C_proj], multiplied out in float64 when the device has it."""
        with torch.autocast(conv.weight.device.type, enabled=False):
            wide = torch.float64 if conv.weight.device.type in ("cpu", "cuda") else torch.float32
            w_c = conv.weight.flatten(1).to(wide)  # [C, C_in]
            w_p = proj.weight.flatten(1).to(wide)  # [C_proj, C]
            weight = (w_p @ w_c).to(conv.weight.dtype)
            bias = (w_p @ conv.bias.to(wide) + proj.bias.to(wide)).to(conv.bias.dtype)
        return weight, bias

    def merged_lateral(self, level: int, x: torch.Tensor, conv: nn.Conv2d, proj: nn.Conv2d) -> torch.Tensor:
        """proj(conv(x)) as one 1x1 convolution: x [B, C_in, H, W] -> [B, C_proj, H, W]."""
        weight, bias = self.merged_projection(conv, proj)
        return F.conv2d(x, weight[:, :, None, None], bias)

    def _top_down(self, lateral: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """lateral + 2x upsampled prev (in float32), halved for the "avg" fusion."""
        b, c, h, w = prev.shape
        if self.interp_mode == "nearest" and lateral.shape[-2:] == (2 * h, 2 * w):
            # nearest 2x upsampling is a broadcast: add it without materialising it,
            # channels-last like the lateral maps
            fused = lateral.permute(0, 2, 3, 1).reshape(b, h, 2, w, 2, c) + prev.to(torch.float32).permute(
                0, 2, 3, 1
            ).reshape(b, h, 1, w, 1, c)  # [B, h, 2, w, 2, C]
            if self.fuse_type == "avg":
                fused = fused / 2
            return fused.reshape(b, 2 * h, 2 * w, c).permute(0, 3, 1, 2)
        top_down = F.interpolate(
            prev.to(torch.float32),
            scale_factor=2.0,
            mode=self.interp_mode,
            align_corners=None if self.interp_mode == "nearest" else False,
            antialias=False,
        )
        fused = lateral + top_down
        if self.fuse_type == "avg":
            fused = fused / 2
        return fused


def _mergeable(conv: nn.Conv2d, proj: nn.Conv2d) -> bool:
    """Whether proj(conv(x)) is one 1x1 convolution (both 1x1, stride 1, no padding, with bias)."""
    return all(
        c.kernel_size == (1, 1)
        and c.stride == (1, 1)
        and c.padding in ((0, 0), "valid")
        and c.dilation == (1, 1)
        and c.groups == 1
        and c.bias is not None
        for c in (conv, proj)
    )


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

    def forward(self, images: torch.Tensor, projections: Mapping[int, nn.Conv2d] | None = None) -> BackboneOutput:
        """images: [B, 3, S, S] normalized -> multi-scale features.

        ``projections``: {level: 1x1 convolution} applied to those levels of the output
        (see :meth:`FpnNeck.forward`); levels count from the highest resolution.
        """
        out = self.neck(self.trunk(images), projections)
        if self.scalp > 0:
            out = BackboneOutput(out.features[: -self.scalp], out.position[: -self.scalp])
        return out
