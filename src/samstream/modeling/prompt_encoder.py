"""The prompt encoder: points (with labels), box corners and low-res mask inputs."""

from __future__ import annotations

import torch
from torch import nn

from ..prompt_checks import LABEL_BOX_BOTTOM_RIGHT, LABEL_BOX_TOP_LEFT, LABEL_NEGATIVE, LABEL_PADDING, LABEL_POSITIVE
from .common import LayerNorm2d
from .position_encoding import RandomFourierEncoding

__all__ = [
    "LABEL_BOX_BOTTOM_RIGHT",
    "LABEL_BOX_TOP_LEFT",
    "LABEL_NEGATIVE",
    "LABEL_PADDING",
    "LABEL_POSITIVE",
    "PromptEncoder",
]


class PromptEncoder(nn.Module):
    """Embeds prompts into sparse tokens [B, N, C] and a dense map [B, C, h, w]."""

    def __init__(
        self,
        *,
        embed_dim: int,
        image_embedding_size: tuple[int, int],
        input_image_size: tuple[int, int],
        mask_in_chans: int = 16,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = input_image_size
        self.image_embedding_size = image_embedding_size
        self.pe_layer = RandomFourierEncoding(embed_dim // 2)
        # one learned embedding per label 0..3 (negative, positive, box corners)
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)
        self._dense_pe: torch.Tensor | None = None

    def get_dense_pe(self) -> torch.Tensor:
        """Position encoding of the image embedding grid: [1, C, h, w]."""
        pe = self._dense_pe
        weight = self.pe_layer.positional_encoding_gaussian_matrix
        if pe is None or pe.device != weight.device or self.training:
            # always in float32: a cached encoding must not depend on an autocast region
            # that happened to be active when it was first needed
            with torch.autocast(weight.device.type, enabled=False):
                pe = self.pe_layer.dense(*self.image_embedding_size).unsqueeze(0)
            # cached for inference; recomputed after a device move or while training
            self._dense_pe = None if self.training else pe
        return pe

    def _apply(self, fn, *args, **kwargs):  # noqa: D401 - nn.Module hook
        self._dense_pe = None  # weights may have moved or changed
        return super()._apply(fn, *args, **kwargs)

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """coords [B, N, 2] (x, y) in input-image pixels, labels [B, N] -> tokens [B, N(+1), C]."""
        coords = coords + 0.5  # centre of the pixel
        if pad:
            coords = torch.cat([coords, coords.new_zeros(coords.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, -torch.ones_like(labels[:, :1])], dim=1)
        emb = self.pe_layer.points(coords, self.input_image_size)
        labels = labels.unsqueeze(-1)
        emb = torch.where(labels == LABEL_PADDING, torch.zeros_like(emb) + self.not_a_point_embed.weight, emb)
        for value, table in enumerate(self.point_embeddings):
            emb = torch.where(labels == value, emb + table.weight, emb)
        return emb

    def embed_masks(self, masks: torch.Tensor) -> torch.Tensor:
        """Mask logits [B, 1, 4h, 4w] -> [B, C, h, w]."""
        return self.mask_downscaling(masks)

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse [B, N, C] and dense [B, C, h, w] embeddings.

        points: (coords [B, N, 2], labels [B, N]); boxes: [B, 4] XYXY; masks: [B, 1, 4h, 4w].
        """
        if points is not None:
            batch = points[0].shape[0]
        elif boxes is not None:
            batch = boxes.shape[0]
        elif masks is not None:
            batch = masks.shape[0]
        else:
            batch = 1
        weight = self.no_mask_embed.weight
        sparse = weight.new_empty((batch, 0, self.embed_dim))
        if points is not None:
            sparse = torch.cat([sparse, self.embed_points(points[0], points[1], pad=boxes is None)], dim=1)
        if boxes is not None:
            corners = boxes.reshape(-1, 2, 2) + 0.5
            corner_emb = self.pe_layer.points(corners, self.input_image_size)
            corner_emb = corner_emb + torch.cat(
                [self.point_embeddings[2].weight, self.point_embeddings[3].weight], dim=0
            )
            sparse = torch.cat([sparse, corner_emb], dim=1)
        if masks is not None:
            dense = self.embed_masks(masks)
        else:
            h, w = self.image_embedding_size
            dense = weight.reshape(1, -1, 1, 1).expand(batch, -1, h, w)
        return sparse, dense
