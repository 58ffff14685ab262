"""The mask decoder: two-way transformer, upscaling with high-res skips, mask hypernetworks,
IoU head, object-score head and dynamic multimask selection by stability."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import MaskDecoderExtraConfig
from .common import MLP, LayerNorm2d
from .two_way_transformer import ImageContext, TwoWayTransformer


@dataclass
class DecoderOutput:
    """Per prompt set (batch B), M = 3 with multimask output, else 1.

    masks: [B, M, 4h, 4w] logits; iou: [B, M]; tokens: [B, M or 1, C] output tokens used for
    object pointers; object_score_logits: [B, 1].
    """

    masks: torch.Tensor
    iou: torch.Tensor
    tokens: torch.Tensor
    object_score_logits: torch.Tensor


def stability_scores(mask_logits: torch.Tensor, delta: float) -> torch.Tensor:
    """IoU between the masks thresholded at +delta and -delta: [..., H, W] -> [...]."""
    flat = mask_logits.flatten(-2)
    inter = (flat > delta).sum(-1).float()
    union = (flat > -delta).sum(-1).float()
    return torch.where(union > 0, inter / union, torch.ones_like(inter))


def select_by_stability(
    all_masks: torch.Tensor, all_iou: torch.Tensor, delta: float, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the single-mask output (index 0) where it is stable, else the best multimask output.

    all_masks [B, 4, H, W], all_iou [B, 4] -> ([B, 1, H, W], [B, 1]).
    """
    multi_iou = all_iou[:, 1:]
    best = multi_iou.argmax(dim=-1)
    rows = torch.arange(all_iou.shape[0], device=all_iou.device)
    best_masks = all_masks[:, 1:][rows, best].unsqueeze(1)
    best_iou = multi_iou[rows, best].unsqueeze(1)
    stable = stability_scores(all_masks[:, 0:1], delta) >= threshold  # [B, 1]
    masks = torch.where(stable[..., None, None], all_masks[:, 0:1], best_masks)
    iou = torch.where(stable, all_iou[:, 0:1], best_iou)
    return masks, iou


class MaskDecoder(nn.Module):
    def __init__(
        self,
        *,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
        use_high_res_features: bool = False,
        iou_prediction_use_sigmoid: bool = False,
        extra: MaskDecoderExtraConfig | None = None,
        pred_obj_scores: bool = False,
        pred_obj_scores_mlp: bool = False,
        use_multimask_token_for_obj_ptr: bool = False,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.pred_obj_scores = pred_obj_scores
        if pred_obj_scores:
            self.obj_score_token = nn.Embedding(1, transformer_dim)
        self.use_multimask_token_for_obj_ptr = use_multimask_token_for_obj_ptr
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.use_high_res_features = use_high_res_features
        if use_high_res_features:
            self.conv_s0 = nn.Conv2d(transformer_dim, transformer_dim // 8, kernel_size=1)
            self.conv_s1 = nn.Conv2d(transformer_dim, transformer_dim // 4, kernel_size=1)
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim,
            iou_head_hidden_dim,
            self.num_mask_tokens,
            iou_head_depth,
            sigmoid_output=iou_prediction_use_sigmoid,
        )
        if pred_obj_scores:
            self.pred_obj_score_head = (
                MLP(transformer_dim, transformer_dim, 1, 3) if pred_obj_scores_mlp else nn.Linear(transformer_dim, 1)
            )
        extra = extra or MaskDecoderExtraConfig()
        self.dynamic_multimask_via_stability = extra.dynamic_multimask_via_stability
        self.stability_delta = extra.dynamic_multimask_stability_delta
        self.stability_thresh = extra.dynamic_multimask_stability_thresh

    def _output_tokens(self) -> torch.Tensor:
        parts = [self.iou_token.weight, self.mask_tokens.weight]
        if self.pred_obj_scores:
            parts.insert(0, self.obj_score_token.weight)
        return torch.cat(parts, dim=0)  # [T, C]

    def image_context(
        self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, dense_prompt_embeddings: torch.Tensor
    ) -> ImageContext:
        """The prompt-independent transformer work for image_embeddings [1, C, h, w] with a dense
        prompt embedding that is the same for every prompt (the "no mask" embedding): pass it
        as ``context`` to decode any number of prompts on that image."""
        src = image_embeddings + dense_prompt_embeddings
        return self.transformer.image_context(src, image_pe.expand(src.shape[0], -1, -1, -1))

    def predict_all(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        high_res_features: list[torch.Tensor] | None = None,
        repeat_image: bool = False,
        context: ImageContext | None = None,
    ) -> DecoderOutput:
        """All 4 masks as a :class:`DecoderOutput`: masks [B, 4, 4h, 4w], iou [B, 4], the mask
        tokens [B, 4, C], object scores [B, 1].

        image_embeddings [B or 1, C, h, w] (repeated over the prompt batch when ``repeat_image``),
        image_pe [1, C, h, w], sparse [B, N, C], dense [B, C, h, w];
        high_res_features: [B or 1, C/8, 4h, 4w] and [B or 1, C/4, 2h, 2w];
        context: :meth:`image_context` of these image embeddings, image_pe and dense embeddings
        (then they are not read again).
        """
        batch = sparse_prompt_embeddings.shape[0]
        out_tokens = self._output_tokens()
        tokens = torch.cat(
            (out_tokens.unsqueeze(0).expand(batch, -1, -1).to(sparse_prompt_embeddings.dtype), sparse_prompt_embeddings),
            dim=1,
        )
        if image_embeddings.shape[0] != batch and not (repeat_image and image_embeddings.shape[0] == 1):
            raise ValueError(f"{image_embeddings.shape[0]} image embeddings for {batch} prompt sets")
        pos = image_pe.expand(batch, -1, -1, -1)
        b, (c, h, w) = batch, image_embeddings.shape[1:]
        if context is None:
            src = image_embeddings.expand(batch, -1, -1, -1) + dense_prompt_embeddings
        else:
            src = None

        hs, src = self.transformer(src, pos, tokens, context)
        s = 1 if self.pred_obj_scores else 0
        iou_token_out = hs[:, s, :]
        mask_tokens_out = hs[:, s + 1 : s + 1 + self.num_mask_tokens, :]

        # [B, hw, C] -> [B, C, h, w] as a channels-last view (no copy)
        src = src.reshape(b, h, w, c).permute(0, 3, 1, 2)
        if not self.use_high_res_features:
            upscaled = self.output_upscaling(src)
        else:
            dc1, ln1, act1, dc2, act2 = self.output_upscaling
            feat_s0, feat_s1 = high_res_features
            if repeat_image and feat_s0.shape[0] != b:
                feat_s0, feat_s1 = feat_s0.expand(b, -1, -1, -1), feat_s1.expand(b, -1, -1, -1)
            upscaled = act1(ln1(dc1(src) + feat_s1))
            upscaled = act2(dc2(upscaled) + feat_s0)

        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )  # [B, 4, C/8]
        b, c, h, w = upscaled.shape
        if upscaled.permute(0, 2, 3, 1).is_contiguous():  # channels-last
            pixels = upscaled.permute(0, 2, 3, 1).reshape(b, h * w, c).transpose(1, 2)
        else:
            pixels = upscaled.reshape(b, c, h * w)
        masks = (hyper_in @ pixels).view(b, -1, h, w)

        iou = self.iou_prediction_head(iou_token_out)
        if self.pred_obj_scores:
            object_scores = self.pred_obj_score_head(hs[:, 0, :])
        else:
            object_scores = 10.0 * iou.new_ones(iou.shape[0], 1)
        return DecoderOutput(masks, iou, mask_tokens_out, object_scores)

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
        high_res_features: list[torch.Tensor] | None = None,
        repeat_image: bool = False,
        context: ImageContext | None = None,
    ) -> DecoderOutput:
        every = self.predict_all(
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
            high_res_features,
            repeat_image,
            context,
        )
        masks, iou, mask_tokens, object_scores = every.masks, every.iou, every.tokens, every.object_score_logits
        if multimask_output:
            masks, iou = masks[:, 1:], iou[:, 1:]
        elif self.dynamic_multimask_via_stability and not self.training:
            masks, iou = select_by_stability(masks, iou, self.stability_delta, self.stability_thresh)
        else:
            masks, iou = masks[:, 0:1], iou[:, 0:1]
        if multimask_output and self.use_multimask_token_for_obj_ptr:
            tokens = mask_tokens[:, 1:]
        else:
            tokens = mask_tokens[:, 0:1]
        return DecoderOutput(masks=masks, iou=iou, tokens=tokens, object_score_logits=object_scores)
