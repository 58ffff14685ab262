"""The CPU inference backend: module swaps that run a model's math through oneDNN.

:func:`apply_cpu_backend` changes, in place, the class of the modules it knows to a subclass
with the same parameters, buffers and state-dict names (gpt-fast ``quantize.py`` style):

- ``nn.Linear`` -> :class:`CpuLinear`: one fused oneDNN call (bias, and the activation when
  an MLP asks for it, unless that is timed slower on this CPU: see
  :func:`samstream.accel.onednn.slow_epilogues`), with the autocast-dtype weights kept on the layer;
- :class:`MLP` -> :class:`CpuMLP`: exact GELU / ReLU fused into the linear layers before them,
  and the same for the feed-forward block of each memory-attention layer;
- attention modules -> the chunked CPU attention kernel
  (:func:`samstream.accel.cpu_attention.cpu_scaled_dot_product`); Hiera's attention also
  gets a bfloat16 path for many windows with per-head projections kept on the module;
- :class:`MemoryAttention` -> :class:`CpuMemoryAttention`: many objects (8,192 tokens and
  more) go through the layers in groups of about 2,048 tokens (two objects at 512 px, one at
  1024 px), which keep their activations in the CPU cache;
- :class:`MaskDecoder` -> :class:`CpuMaskDecoder`: many prompt sets (16,384 prompts x image
  tokens and more, e.g. the automatic mask generator's batches of 64 points) are decoded in groups
  of about 8,192 tokens (two prompt sets at 1024 px, eight at 512 px), whose activations stay
  small instead of a fresh [64, 4096, C] tensor for every residual add, norm and activation;
- :class:`MemoryEncoder` -> :class:`CpuMemoryEncoder`: the mask downsampler and fuser run on
  groups of masks whose full-resolution maps fit in 1 MiB (one at a time from 512 px up; measured
  faster: one mask's maps fit in the cache, a batch's do not);
- the 1x1 convolutions of the FPN neck and the mask decoder (fed channels-last maps)
  -> :class:`CpuConv1x1`, a linear layer over the channels; the neck keeps its merged
  conv_s0/conv_s1 projections; the Hiera trunk keeps its position embedding.

Each swapped module steps aside (runs the plain PyTorch code of its base class) when autograd
needs gradients, on other devices than CPU, and inside ``torch.compile`` tracing, so a model
with the backend gives the plain model's results to float rounding. :func:`remove_cpu_backend`
undoes the swap.
"""

from __future__ import annotations

import torch
from torch import nn

from ..modeling.attention import Attention, RoPEAttention
from ..modeling.common import MLP
from ..modeling.hiera import Hiera, MultiScaleAttention, pool_hw
from ..modeling.image_encoder import FpnNeck
from ..modeling.mask_decoder import DecoderOutput, MaskDecoder
from ..modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
from ..modeling.memory_encoder import MemoryEncoder
from ..modeling.two_way_transformer import ImageContext
from .cpu_attention import cpu_scaled_dot_product
from .onednn import (
    CastCache,
    OnednnKernels,
    activation_name,
    cpu_inference,
    fused_linear,
    linear_dtype,
    plain_linear,
    probe_onednn,
    tensor_key,
)

# attention logits (elements) computed at once by Hiera's windowed bfloat16 path
WINDOW_CHUNK = 1 << 22
# tokens (objects x feature-map tokens) that go through the memory-attention layers together,
# once a frame has at least GROUPED_FROM_TOKENS of them (below that, e.g. 3 objects at 512 px,
# groups measured no faster than the whole batch: the shared first self-attention runs per group)
GROUP_TOKENS = 2048
GROUPED_FROM_TOKENS = 8192
# prompt sets x image tokens that the mask decoder decodes together at CPU inference, once a
# batch has at least DECODER_GROUPED_FROM_TOKENS of them (3 objects at 1024 px, 12,288 tokens,
# measured no faster in groups of 2 + 1; 4 and more were faster)
DECODER_GROUP_TOKENS = 8192
DECODER_GROUPED_FROM_TOKENS = 16384


class CpuModule:
    """What every swapped module has: the checked kernels and a cache of cast weights.

    ``plain_class`` is the class the module had before the swap (restored by
    :func:`remove_cpu_backend`); ``cpu_state`` names the attributes the swap adds.
    """

    plain_class: type[nn.Module]
    cpu_state: tuple[str, ...] = ("_onednn", "_casts")

    def setup_cpu(self, kernels: OnednnKernels) -> None:
        self._onednn = kernels
        self._casts = CastCache()

    def clear_cpu_caches(self) -> None:
        self._casts.clear()

    def _apply(self, fn, *args, **kwargs):  # nn.Module hook: weights may move or change
        self.clear_cpu_caches()
        return super()._apply(fn, *args, **kwargs)


class CpuLinear(CpuModule, nn.Linear):
    """``nn.Linear`` through the fused oneDNN op at CPU inference. x [..., C_in] -> [..., C_out]."""

    plain_class = nn.Linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_fused(x, "none")

    def forward_fused(self, x: torch.Tensor, activation: str) -> torch.Tensor:
        """``activation(self(x))`` for activation "none", "gelu" (exact) or "relu", in one call."""
        dtype = linear_dtype(self._onednn, x, self.weight, self.bias)
        if dtype is None:
            return plain_linear(x, self.weight, self.bias, activation)
        weight = self._casts.get("weight", self.weight, dtype)
        bias = self._casts.get("bias", self.bias, dtype)
        return fused_linear(self._onednn, x.to(dtype), weight, bias, activation)


def is_pointwise(conv: nn.Conv2d) -> bool:
    """Whether conv is a plain 1x1 convolution (a linear layer over the channels)."""
    return (
        conv.kernel_size == (1, 1)
        and conv.stride == (1, 1)
        and conv.padding in ((0, 0), "valid")
        and conv.dilation == (1, 1)
        and conv.groups == 1
    )


class CpuConv1x1(CpuModule, nn.Conv2d):
    """A 1x1 ``nn.Conv2d`` run as a oneDNN linear layer over the channels at CPU inference.

    [B, C, H, W] -> [B, C', H, W], channels-last in memory (a permuted view of [B, H, W, C']),
    which is what a channels-last input gives through the convolution too.
    """

    plain_class = nn.Conv2d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            dtype = linear_dtype(self._onednn, x, self.weight, self.bias)
            if dtype is not None:
                weight = self._casts.get("weight", self.weight, dtype)
                weight = weight.view(weight.shape[0], weight.shape[1])  # [C', C]
                bias = self._casts.get("bias", self.bias, dtype)
                y = fused_linear(self._onednn, x.to(dtype).permute(0, 2, 3, 1), weight, bias)  # [B, H, W, C']
                return y.permute(0, 3, 1, 2)
        return super().forward(x)


class CpuMLP(CpuModule, MLP):
    """:class:`MLP` with its exact GELU / ReLU fused into the swapped linear layers."""

    plain_class = MLP

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = activation_name(self.act)
        last = self.num_layers - 1
        for i, layer in enumerate(self.layers):
            if i < last and fused is not None and isinstance(layer, CpuLinear):
                x = layer.forward_fused(x, fused)
            else:
                x = layer(x)
                if i < last:
                    x = self.act(x)
        if self.sigmoid_output:
            x = torch.sigmoid(x)
        return x


class CpuMemoryAttentionLayer(CpuModule, MemoryAttentionLayer):
    """:class:`MemoryAttentionLayer` with its ReLU / GELU fused into the first feed-forward layer."""

    plain_class = MemoryAttentionLayer

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self.activation_name not in ("relu", "gelu") or not isinstance(self.linear1, CpuLinear):
            return super().feed_forward(x)
        return self.linear2(self.linear1.forward_fused(x, self.activation_name))


class CpuMemoryAttention(CpuModule, MemoryAttention):
    """:class:`MemoryAttention` run on groups of objects at CPU inference, each group through
    every layer before the next: a group's activations ([objects x HW, C], and the feed-forward's
    [objects x HW, 8C]) stay in the CPU cache, where a batch of many objects does not
    (``benchmarks/bench_roofline.py``, 8 objects at 512 px, float32, a 2-core AMX Xeon: memory
    attention at 60 % of the machine's limit batched, 78 % in groups of two)."""

    plain_class = MemoryAttention

    def object_groups(self, curr: torch.Tensor) -> list[tuple[int, int]]:
        """curr [B, HW, C]: groups of ``GROUP_TOKENS // HW`` objects once B x HW >=
        ``GROUPED_FROM_TOKENS`` at CPU inference, else the whole batch."""
        batch, hw = curr.shape[0], curr.shape[1]
        group = max(1, GROUP_TOKENS // max(1, hw))
        if batch * hw < GROUPED_FROM_TOKENS or batch <= group or self.training or not cpu_inference(curr):
            return super().object_groups(curr)
        return [(s, min(s + group, batch)) for s in range(0, batch, group)]


class CpuMaskDecoder(CpuModule, MaskDecoder):
    """:class:`MaskDecoder` that decodes a large batch of prompt sets in groups of about
    ``DECODER_GROUP_TOKENS`` prompt sets x image tokens at CPU inference, once a batch has
    ``DECODER_GROUPED_FROM_TOKENS`` of them (``benchmarks/bench_roofline.py --no-video``, 16x16
    points at 1024 px on a 2-core AMX Xeon: the generator's decoder from 13 % to 36 % of the
    float32 limit, the whole generator from 13.1 to 9.3 s an image, the same masks)."""

    plain_class = MaskDecoder

    @staticmethod
    def prompt_groups(batch: int, hw: int) -> list[tuple[int, int]]:
        """(start, stop) of each group of prompt sets decoded together."""
        group = max(1, DECODER_GROUP_TOKENS // max(1, hw))
        return [(s, min(s + group, batch)) for s in range(0, batch, group)]

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
        args = (image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings)
        batch = sparse_prompt_embeddings.shape[0]
        hw = image_embeddings.shape[-2] * image_embeddings.shape[-1]
        shared_image = image_embeddings.shape[0] == 1 and batch > 1
        consistent = image_embeddings.shape[0] == batch or (repeat_image and shared_image)
        if (
            self.training
            or not consistent  # the plain method names what is wrong
            or batch * hw < DECODER_GROUPED_FROM_TOKENS
            or not cpu_inference(sparse_prompt_embeddings, image_embeddings, dense_prompt_embeddings)
        ):
            return super().predict_all(*args, high_res_features, repeat_image, context)

        def rows(t: torch.Tensor, start: int, stop: int) -> torch.Tensor:
            return t if t.shape[0] == 1 else t[start:stop]  # a single row is shared by every prompt set

        outputs = []
        for start, stop in self.prompt_groups(batch, hw):
            part = (rows(image_embeddings, start, stop), image_pe, sparse_prompt_embeddings[start:stop],
                    rows(dense_prompt_embeddings, start, stop))
            feats = None if high_res_features is None else [rows(f, start, stop) for f in high_res_features]
            ctx = None
            if context is not None:
                ctx = ImageContext(*(rows(t, start, stop) for t in
                                     (context.keys, context.keys_pe, context.t2i_k, context.t2i_v, context.i2t_q)))
            outputs.append(super().predict_all(*part, feats, repeat_image and shared_image, ctx))
        return DecoderOutput(
            torch.cat([o.masks for o in outputs]),
            torch.cat([o.iou for o in outputs]),
            torch.cat([o.tokens for o in outputs]),
            torch.cat([o.object_score_logits for o in outputs]),
        )


class CpuAttention(CpuModule, Attention):
    """:class:`Attention` with the chunked CPU attention kernel."""

    plain_class = Attention

    def scaled_dot_product(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float) -> torch.Tensor:
        return cpu_scaled_dot_product(self._onednn, q, k, v, dropout_p)


class CpuRoPEAttention(CpuModule, RoPEAttention):
    """:class:`RoPEAttention` with the chunked CPU attention kernel."""

    plain_class = RoPEAttention

    def scaled_dot_product(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float) -> torch.Tensor:
        return cpu_scaled_dot_product(self._onednn, q, k, v, dropout_p)


class CpuMultiScaleAttention(CpuModule, MultiScaleAttention):
    """Hiera attention with the chunked CPU attention kernel, and for many windows under
    bfloat16 a path where each head's queries, keys and values come from their own projection."""

    plain_class = MultiScaleAttention
    cpu_state = CpuModule.cpu_state + ("_split",)

    def setup_cpu(self, kernels: OnednnKernels) -> None:
        super().setup_cpu(kernels)
        self._split: tuple | None = None  # (qkv parameter keys, per-head bfloat16 projections)

    def clear_cpu_caches(self) -> None:
        super().clear_cpu_caches()
        self._split = None

    def scaled_dot_product(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return cpu_scaled_dot_product(self._onednn, q, k, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, H, W, C] -> [B, H', W', C_out]."""
        if x.shape[0] >= 16 and linear_dtype(self._onednn, x, self.qkv.weight, self.qkv.bias) == torch.bfloat16:
            return self._windowed_low_precision(x)
        return super().forward(x)

    def _split_projections(self) -> tuple:
        """bfloat16 projection weights cut per head: queries (scaled by head_dim^-0.5, all heads
        and per head), keys and values per head; kept until the qkv weights change."""
        weight, bias = self.qkv.weight, self.qkv.bias
        key = (tensor_key(weight), tensor_key(bias))
        if self._split is not None and self._split[0] == key:
            return self._split[1]
        c = weight.shape[0] // 3
        d = c // self.num_heads
        with torch.no_grad():
            w, bb = weight.detach().float(), bias.detach().float()
            scale = d**-0.5

            def cut(i0: int, i1: int, factor: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
                return (w[i0:i1] * factor).to(torch.bfloat16), (bb[i0:i1] * factor).to(torch.bfloat16)

            q_all = cut(0, c, scale)
            q = [cut(j * d, (j + 1) * d, scale) for j in range(self.num_heads)]
            k = [cut(c + j * d, c + (j + 1) * d) for j in range(self.num_heads)]
            v = [cut(2 * c + j * d, 2 * c + (j + 1) * d) for j in range(self.num_heads)]
        split = (q_all, q, k, v)
        self._split = (key, split)
        return split

    def _windowed_low_precision(self, x: torch.Tensor) -> torch.Tensor:
        """The forward pass for many windows in bfloat16: dense per-head [B, N, c] maps (the
        softmax scale folded into the query weights), so the batched products need no strided copies."""
        b, h, w, _ = x.shape
        q_all, q_heads, k_heads, v_heads = self._split_projections()
        x = x.to(torch.bfloat16)
        if self.q_pool is not None:
            q = pool_hw(fused_linear(self._onednn, x, *q_all), self.q_pool)  # [B, H', W', C_out]
            h2, w2 = q.shape[1:3]
            q = q.reshape(b, h2 * w2, self.num_heads, -1)  # [B, N', nH, c]
            queries = [q[:, :, j].contiguous() for j in range(self.num_heads)]
        else:
            h2, w2 = h, w
            queries = [fused_linear(self._onednn, x, *qw).reshape(b, h * w, -1) for qw in q_heads]  # [B, N, c]
        nq, nk = h2 * w2, h * w
        out = x.new_empty((b, nq, self.num_heads, queries[0].shape[-1]))  # [B, N', nH, c]
        rows = max(1, WINDOW_CHUNK // (b * nk))
        for j in range(self.num_heads):
            kt = fused_linear(self._onednn, x, *k_heads[j]).reshape(b, nk, -1).transpose(1, 2)  # [B, c, N]
            v = fused_linear(self._onednn, x, *v_heads[j]).reshape(b, nk, -1)  # [B, N, c]
            for s in range(0, nq, rows):
                attn = torch.softmax(torch.bmm(queries[j][:, s : s + rows], kt), dim=-1)
                out[:, s : s + rows, j] = torch.bmm(attn, v)
        return self.proj(out.view(b, h2, w2, -1))


class CpuHiera(CpuModule, Hiera):
    """The Hiera trunk with its position embedding kept between inference calls (channels-last,
    contiguous) until the size, the dtype, the device or the embedding weights change."""

    plain_class = Hiera
    cpu_state = CpuModule.cpu_state + ("_pos_cache",)

    def setup_cpu(self, kernels: OnednnKernels) -> None:
        super().setup_cpu(kernels)
        self._pos_cache: tuple | None = None

    def clear_cpu_caches(self) -> None:
        super().clear_cpu_caches()
        self._pos_cache = None

    def _position_embedding(self, h: int, w: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        if self.training or not cpu_inference(self.pos_embed, self.pos_embed_window):
            return super()._position_embedding(h, w, dtype)
        key = (h, w, dtype, tensor_key(self.pos_embed), tensor_key(self.pos_embed_window))
        if self._pos_cache is None or self._pos_cache[0] != key:
            self._pos_cache = (key, super()._position_embedding(h, w, dtype).contiguous())
        return self._pos_cache[1]


class CpuFpnNeck(CpuModule, FpnNeck):
    """The FPN neck with the merged lateral + projection weights kept between inference calls
    and run as a oneDNN linear layer over the channels."""

    plain_class = FpnNeck
    cpu_state = CpuModule.cpu_state + ("_merged",)

    def setup_cpu(self, kernels: OnednnKernels) -> None:
        super().setup_cpu(kernels)
        self._merged: dict[int, tuple] = {}  # level -> (parameter keys, weight, bias)

    def clear_cpu_caches(self) -> None:
        super().clear_cpu_caches()
        self._merged = {}

    def merged_lateral(self, level: int, x: torch.Tensor, conv: nn.Conv2d, proj: nn.Conv2d) -> torch.Tensor:
        params = (conv.weight, conv.bias, proj.weight, proj.bias)
        if not cpu_inference(x, *params):
            return super().merged_lateral(level, x, conv, proj)
        key = tuple(tensor_key(p) for p in params)
        cached = self._merged.get(level)
        if cached is None or cached[0] != key:
            with torch.no_grad():
                cached = (key, *self.merged_projection(conv, proj))
            self._merged[level] = cached
        _, weight, bias = cached
        dtype = linear_dtype(self._onednn, x, weight, bias)
        if dtype is None:
            return torch.nn.functional.conv2d(x, weight[:, :, None, None], bias)
        weight = self._casts.get(f"merged{level}.weight", weight, dtype)
        bias = self._casts.get(f"merged{level}.bias", bias, dtype)
        y = fused_linear(self._onednn, x.to(dtype).permute(0, 2, 3, 1), weight, bias)  # [B, H, W, C_proj]
        return y.permute(0, 3, 1, 2)


class CpuMemoryEncoder(CpuModule, MemoryEncoder):
    """:class:`MemoryEncoder` fusing masks in small groups at CPU inference.

    The mask downsampler's first map has one element per mask pixel whatever its stride
    ([4, 512, 512] for a 1024 px mask at stride 2, [16, 256, 256] at stride 4): 4 MB in float32.
    Each of the layer norms and activations over it is a pass through memory, so masks go through
    in groups whose first maps fit in :attr:`group_bytes` (one mask at a time from 512 px up; at
    256 px, where the maps are small and the per-call cost dominates, four together), in
    channels-last layout. Same results as the batched call, to float rounding.
    """

    plain_class = MemoryEncoder
    group_bytes = 1 << 20

    @classmethod
    def group_size(cls, mask_for_mem: torch.Tensor) -> int:
        """Masks [B, 1, H, W] per group: the most whose first maps (H * W elements each) fit."""
        per_mask = mask_for_mem.shape[-2] * mask_for_mem.shape[-1] * mask_for_mem.element_size()
        return max(1, cls.group_bytes // per_mask)

    def fuse(self, projected: torch.Tensor, mask_for_mem: torch.Tensor) -> torch.Tensor:
        if not cpu_inference(mask_for_mem, projected):
            return super().fuse(projected, mask_for_mem)
        # channels-last maps: every layer norm of the downsampler and the fuser is then one fused
        # pass over each pixel's channels (measured at 512 px, 3 masks, on a 2-core AMX Xeon:
        # 22 ms against 27 ms in bf16, 35 against 37.5 ms in float32); the result stays channels-last
        projected = projected.contiguous(memory_format=torch.channels_last)
        mask_for_mem = mask_for_mem.contiguous(memory_format=torch.channels_last)
        count = mask_for_mem.shape[0]
        group = self.group_size(mask_for_mem)
        if count <= group:
            return super().fuse(projected, mask_for_mem)
        fused = []
        for i in range(0, count, group):
            rows = projected if projected.shape[0] == 1 else projected[i : i + group]
            fused.append(super().fuse(rows, mask_for_mem[i : i + group]))
        return torch.cat(fused)


# exact base class -> swapped class
_SWAPS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Linear: CpuLinear,
    MLP: CpuMLP,
    MemoryAttention: CpuMemoryAttention,
    MemoryAttentionLayer: CpuMemoryAttentionLayer,
    Attention: CpuAttention,
    RoPEAttention: CpuRoPEAttention,
    MultiScaleAttention: CpuMultiScaleAttention,
    Hiera: CpuHiera,
    FpnNeck: CpuFpnNeck,
    MemoryEncoder: CpuMemoryEncoder,
    MaskDecoder: CpuMaskDecoder,
}
# modules whose 1x1 convolutions see channels-last maps (run as linear layers)
_POINTWISE_OWNERS = (FpnNeck, MaskDecoder)


def _swap_targets(model: nn.Module) -> list[tuple[nn.Module, type[nn.Module]]]:
    """(module, class to give it) for every module of model the backend swaps."""
    targets = []
    for module in model.modules():
        cls = _SWAPS.get(type(module))
        if cls is not None:
            targets.append((module, cls))
        if isinstance(module, _POINTWISE_OWNERS):
            targets += [(c, CpuConv1x1) for c in module.modules() if type(c) is nn.Conv2d and is_pointwise(c)]
    return targets


def apply_cpu_backend(model: nn.Module, kernels: OnednnKernels | None = None) -> nn.Module:
    """Swap, in place, the modules of ``model`` that have a CPU inference version (see the
    module docstring); returns ``model``. Parameters, buffers and state-dict names are kept.

    ``kernels``: what oneDNN offers here; by default probed now (:func:`probe_onednn`).
    Applying it twice is harmless (already swapped modules are left as they are).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    kernels = probe_onednn() if kernels is None else kernels
    for module, cls in _swap_targets(model):
        module.__class__ = cls
        module.setup_cpu(kernels)
    return model


def remove_cpu_backend(model: nn.Module) -> nn.Module:
    """Undo :func:`apply_cpu_backend` in place: every swapped module gets its plain class back
    and loses its caches. Returns ``model``."""
    for module in model.modules():
        if isinstance(module, CpuModule):
            names = module.cpu_state
            module.__class__ = module.plain_class
            for name in names:
                module.__dict__.pop(name, None)
    return model


def has_cpu_backend(model: nn.Module) -> bool:
    """Whether any module of ``model`` is swapped by the CPU backend."""
    return any(isinstance(m, CpuModule) for m in model.modules())
