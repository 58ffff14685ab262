"""The two-way transformer of the mask decoder: prompt tokens and image tokens attend to each other."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .attention import Attention
from .common import MLP


@dataclass
class ImageContext:
    """The prompt-independent part of the first transformer layer for one image embedding.

    keys [1 or B, hw, C] (image tokens), keys_pe [1 or B, hw, C] (keys + their position
    encoding), and the first layer's projections of them: t2i_k and t2i_v (token-to-image
    keys and values) and i2t_q (image-to-token queries), split into heads [.., nH, hw, c].
    """

    keys: torch.Tensor
    keys_pe: torch.Tensor
    t2i_k: torch.Tensor
    t2i_v: torch.Tensor
    i2t_q: torch.Tensor

    def expand(self, batch: int) -> "ImageContext":
        """The same context broadcast to a batch of prompt sets (views, no copies)."""
        if self.keys.shape[0] == batch:
            return self
        parts = (self.keys, self.keys_pe, self.t2i_k, self.t2i_v, self.i2t_q)
        return ImageContext(*(t.expand(batch, *t.shape[1:]) for t in parts))


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token-to-image attention, token MLP, image-to-token attention."""

    def __init__(
        self,
        *,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int = 2048,
        attention_downsample_rate: int = 2,
        skip_first_layer_pe: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLP(embedding_dim, mlp_dim, embedding_dim, 2, activation=nn.ReLU)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def image_context(self, keys: torch.Tensor, key_pe: torch.Tensor) -> ImageContext:
        """Everything this block computes from the image tokens alone (before any prompt)."""
        k = keys + key_pe
        t2i, i2t = self.cross_attn_token_to_image, self.cross_attn_image_to_token
        return ImageContext(keys, k, t2i.project_k(k), t2i.project_v(keys), i2t.project_q(k))

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        query_pe: torch.Tensor,
        key_pe: torch.Tensor,
        context: ImageContext | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """queries [B, Nq, C], keys [B, Nk, C] (image tokens) with their position encodings.

        ``context``: :meth:`image_context` of these keys, computed earlier (same result).
        """
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)

        q = queries + query_pe
        if context is None:
            k = keys + key_pe
            attn = self.cross_attn_token_to_image(q, k, keys)
        else:
            k = context.keys_pe
            attn = self.cross_attn_token_to_image.attend_projected(q, context.t2i_k, context.t2i_v)
        queries = self.norm2(queries + attn)
        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        if context is None:
            attn = self.cross_attn_image_to_token(k, q, queries)
        else:
            attn = self.cross_attn_image_to_token.attend_projected(context.i2t_q, q, queries)
        keys = self.norm4(keys + attn)
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(
        self,
        *,
        depth: int,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        attention_downsample_rate: int = 2,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embedding_dim=embedding_dim,
                num_heads=num_heads,
                mlp_dim=mlp_dim,
                attention_downsample_rate=attention_downsample_rate,
                skip_first_layer_pe=(i == 0),
            )
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    @staticmethod
    def _flatten(image: torch.Tensor) -> torch.Tensor:
        """[B, C, h, w] -> [B, hw, C] (a view when the map is channels-last)."""
        return image.permute(0, 2, 3, 1).flatten(1, 2)

    def image_context(self, image: torch.Tensor, image_pe: torch.Tensor) -> ImageContext:
        """The prompt-independent work on an image embedding [B, C, h, w] (see :class:`ImageContext`),
        to pass to :meth:`forward` for any number of prompts on that image."""
        return self.layers[0].image_context(self._flatten(image), self._flatten(image_pe))

    def forward(
        self,
        image: torch.Tensor,
        image_pe: torch.Tensor,
        tokens: torch.Tensor,
        context: ImageContext | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image and image_pe [B, C, h, w], tokens [B, N, C] -> (tokens [B, N, C], image [B, hw, C]).

        With ``context`` (from :meth:`image_context` of the same image and position encoding,
        broadcastable to the batch) ``image`` is not read again.
        """
        key_pe = self._flatten(image_pe)
        queries = tokens
        if context is not None:
            context = context.expand(tokens.shape[0])
            keys = context.keys
        else:
            keys = self._flatten(image)
        for i, layer in enumerate(self.layers):
            queries, keys = layer(queries, keys, tokens, key_pe, context if i == 0 else None)
        q = queries + tokens
        k = keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys
