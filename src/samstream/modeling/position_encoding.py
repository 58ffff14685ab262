"""Position encodings: 2-D sine maps, random Fourier features for prompts,
1-D sine encodings of temporal offsets, and 2-D axial rotary encodings."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import SinePositionConfig


def _sine_frequencies(num_feats: int, temperature: float, device: torch.device) -> torch.Tensor:
    """Divisors [num_feats] shared by pairs of channels: temperature ** (2 * (i // 2) / num_feats)."""
    i = torch.arange(num_feats, dtype=torch.float32, device=device)
    return temperature ** (2 * torch.div(i, 2, rounding_mode="floor") / num_feats)


def _interleave_sin_cos(angles: torch.Tensor) -> torch.Tensor:
    """[..., F] angles -> [..., F]: sin of even channels and cos of odd channels, interleaved."""
    return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2)


class SinePositionEncoding(nn.Module):
    """Fixed 2-D sine position encoding of a [B, C, H, W] map, cached per size.

    Output: [B, num_pos_feats, H, W], y channels first, then x channels.
    """

    def __init__(self, config: SinePositionConfig) -> None:
        super().__init__()
        if config.num_pos_feats % 2 != 0:
            raise ValueError(f"num_pos_feats must be even, got {config.num_pos_feats}")
        if config.scale is not None and not config.normalize:
            raise ValueError("a position-encoding scale requires normalize=True")
        self.half_feats = config.num_pos_feats // 2
        self.temperature = config.temperature
        self.normalize = config.normalize
        self.scale = 2 * math.pi if config.scale is None else config.scale
        self._cache: dict[tuple[int, int, torch.device], torch.Tensor] = {}

    @torch.no_grad()
    def encoding(
        self, height: int, width: int, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """The [C, H, W] encoding of an H x W map (computed in float32, kept per dtype)."""
        key = (height, width, torch.device(device))
        if dtype != torch.float32:
            cached = self._cache.get(key + (dtype,))
            if cached is None:
                cached = self.encoding(height, width, device).to(dtype)
                self._cache[key + (dtype,)] = cached
            return cached
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        y = torch.arange(1, height + 1, dtype=torch.float32, device=device)
        x = torch.arange(1, width + 1, dtype=torch.float32, device=device)
        if self.normalize:
            eps = 1e-6
            y = y / (y[-1:] + eps) * self.scale
            x = x / (x[-1:] + eps) * self.scale
        dim_t = _sine_frequencies(self.half_feats, self.temperature, device)
        pos_y = _interleave_sin_cos(y[:, None] / dim_t)  # [H, F]
        pos_x = _interleave_sin_cos(x[:, None] / dim_t)  # [W, F]
        pos = torch.cat(
            (pos_y[:, None, :].expand(height, width, -1), pos_x[None, :, :].expand(height, width, -1)),
            dim=-1,
        )  # [H, W, 2F]
        pos = pos.permute(2, 0, 1).contiguous()  # [2F, H, W]
        self._cache[key] = pos
        return pos

    def forward(self, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """x: [B, C, H, W] -> [B, num_pos_feats, H, W] (float32 unless ``dtype`` says otherwise)."""
        pos = self.encoding(x.shape[-2], x.shape[-1], x.device, dtype)
        return pos.unsqueeze(0).expand(x.shape[0], -1, -1, -1)


class RandomFourierEncoding(nn.Module):
    """Position encoding with random spatial frequencies (the prompt encoder's ``pe_layer``)."""

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None) -> None:
        super().__init__()
        if scale is None or scale <= 0.0:
            scale = 1.0
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats)))

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        """coords in [0, 1]: [..., 2] (x, y) -> [..., 2 * num_pos_feats]."""
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def dense(self, height: int, width: int) -> torch.Tensor:
        """Encoding of every cell centre of an H x W grid: [C, H, W]."""
        device = self.positional_encoding_gaussian_matrix.device
        y = (torch.arange(height, dtype=torch.float32, device=device) + 0.5) / height
        x = (torch.arange(width, dtype=torch.float32, device=device) + 0.5) / width
        grid = torch.stack(
            (x[None, :].expand(height, width), y[:, None].expand(height, width)), dim=-1
        )  # [H, W, 2]
        return self._encode(grid).permute(2, 0, 1)

    def points(self, coords: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
        """Pixel coordinates [B, N, 2] (x, y) in an image of size image_hw -> [B, N, C]."""
        size = coords.new_tensor([float(image_hw[1]), float(image_hw[0])])
        return self._encode((coords / size).float())


def temporal_sine_encoding(positions: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """1-D sine encoding of (relative) positions [N] -> [N, dim]: sin half then cos half."""
    half = dim // 2
    dim_t = _sine_frequencies(half, temperature, positions.device)
    angles = positions.unsqueeze(-1) / dim_t
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def axial_rope_angles(head_dim: int, end_x: int, end_y: int, theta: float = 10000.0) -> torch.Tensor:
    """Rotation angles of 2-D axial rotary encoding for an end_x by end_y grid (row-major).

    Returns [end_x * end_y, head_dim // 2]: the first quarter of head_dim rotates by the
    x position, the second by the y position, each at head_dim // 4 frequencies.
    """
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 4)[: head_dim // 4].float() / head_dim))
    t = torch.arange(end_x * end_y, dtype=torch.float32)
    t_x = t % end_x
    t_y = torch.div(t, end_x, rounding_mode="floor")
    return torch.cat([torch.outer(t_x, freqs), torch.outer(t_y, freqs)], dim=-1)


def apply_rotary(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cis: torch.Tensor | None = None
) -> torch.Tensor:
    """Rotate consecutive channel pairs of x [..., N, D] by angles given as cos/sin [N, D/2]
    (``cis``: the same as complex numbers cos + i sin, when the caller keeps them).

    Computed in float32 and returned in x's dtype: as one complex product in eager mode (a
    single pass over x), with real arithmetic only while exporting to ONNX or compiling.
    """
    if torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
        return _apply_rotary_real(x, cos, sin)
    xf = x.float()
    if xf.stride(-1) != 1 or xf.storage_offset() % 2 or any(stride % 2 for stride in xf.stride()[:-1]):
        xf = xf.contiguous()
    pairs = torch.view_as_complex(xf.unflatten(-1, (-1, 2)))  # [..., N, D/2]
    if cis is None:
        cis = torch.complex(cos.float(), sin.float())
    out = torch.view_as_real(pairs * cis)
    return out.flatten(-2).to(x.dtype)


def _apply_rotary_real(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """:func:`apply_rotary` with real tensors only (ONNX has no complex numbers)."""
    xf = x.float().unflatten(-1, (-1, 2))  # [..., N, D/2, 2]
    real, imag = xf[..., 0], xf[..., 1]
    out = torch.stack((real * cos - imag * sin, real * sin + imag * cos), dim=-1)
    return out.flatten(-2).to(x.dtype)
