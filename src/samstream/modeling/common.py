"""Small building blocks shared by several components, and the CPU fast paths they use."""

from __future__ import annotations

import os
import weakref

import torch
import torch.nn.functional as F
from torch import nn

# --------------------------------------------------------------------------- fast CPU kernels
#
# On CPU, inference-time linear layers go straight to oneDNN (the library PyTorch already
# uses for its convolutions): it fuses the bias and a GELU/ReLU into the matrix product, and
# in float32 it is often much faster than the BLAS behind ``F.linear`` (e.g. MKL's AVX2 code
# on AMD CPUs). Under ``torch.autocast`` the cast to the autocast dtype is done here, with
# the low-precision weights kept between calls. Anything else (CUDA, autograd, unusual
# dtypes, a PyTorch without the op) uses the plain eager ops, which give the same results.

_fast_enabled = os.environ.get("SAMSTREAM_FAST_CPU", "1").strip().lower() not in ("0", "false", "no", "off")
_onednn_linear = None  # resolved on first use; False when unavailable
_ACTIVATIONS = ("none", "gelu", "relu")


def set_fast_cpu_kernels(enabled: bool) -> bool:
    """Turn the oneDNN/CPU fast paths on or off (default on; env ``SAMSTREAM_FAST_CPU=0`` turns
    them off). Returns the previous setting. Results agree either way to float rounding."""
    global _fast_enabled
    previous = _fast_enabled
    _fast_enabled = bool(enabled)
    return previous


def fast_cpu_kernels_enabled() -> bool:
    return _fast_enabled


def onednn_linear_op():
    """The fused oneDNN linear op, after checking once that it computes what F.linear does."""
    global _onednn_linear
    if _onednn_linear is None:
        _onednn_linear = False
        try:
            op = torch.ops.mkldnn._linear_pointwise.default
            if torch.backends.mkldnn.is_available():
                with torch.no_grad(), torch.autocast("cpu", enabled=False):
                    gen = torch.Generator().manual_seed(0)
                    x = torch.randn(5, 3, 24, generator=gen)
                    w = torch.randn(40, 24, generator=gen)
                    b = torch.randn(40, generator=gen)
                    want = F.gelu(F.linear(x, w, b))
                    got = op(x, w, b, "gelu", [], "none")
                    if got.shape == want.shape and torch.allclose(got, want, atol=1e-4, rtol=1e-4):
                        _onednn_linear = op
        except Exception:  # op missing or failing in this build: plain eager ops
            _onednn_linear = False
    return _onednn_linear or None


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a matrix product on ``x`` runs in: the autocast dtype inside an enabled
    ``torch.autocast`` region for x's device (floating x), else x's own dtype."""
    if x.dtype in (torch.float32, torch.float16, torch.bfloat16) and torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def use_fast_cpu(x: torch.Tensor, *params: torch.Tensor | None) -> bool:
    """Whether the CPU inference fast paths apply to an op on x (no autograd needed)."""
    if not _fast_enabled or x.device.type != "cpu" or torch.compiler.is_compiling():
        return False  # (a compiled graph gets its own fused kernels)
    if torch.is_grad_enabled() and (x.requires_grad or any(p is not None and p.requires_grad for p in params)):
        return False
    return True


_cast_cache: dict[int, tuple] = {}  # id(param) -> (weakref to param, key, cast copy)


def _drop_cast(pid: int) -> None:
    _cast_cache.pop(pid, None)


def _version(t: torch.Tensor) -> int:
    """The in-place version counter of t (inference tensors have none: -1)."""
    try:
        return t._version
    except RuntimeError:
        return -1


def cast_param(p: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """``p`` in ``dtype``; low-precision copies of parameters are kept until the parameter
    changes (in-place update, new data, other device) or is freed."""
    if p is None or p.dtype == dtype:
        return p
    key = (dtype, _version(p), p.data_ptr(), p.device)
    entry = _cast_cache.get(id(p))
    if entry is not None and entry[0]() is p and entry[1] == key:
        return entry[2]
    with torch.no_grad():
        out = p.detach().to(dtype)
    try:
        ref = weakref.ref(p, lambda _r, pid=id(p): _drop_cast(pid))
    except TypeError:  # not weak-referenceable: no caching
        return out
    _cast_cache[id(p)] = (ref, key, out)
    return out


def linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str = "none",
) -> torch.Tensor:
    """``activation(F.linear(x, weight, bias))`` with activation "none", "gelu" (exact, erf)
    or "relu"; fused in oneDNN on CPU at inference, with autocast honoured."""
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
    dtype = onednn_linear_dtype(x, weight, bias)
    if dtype is not None:
        op = onednn_linear_op()
        x = x.to(dtype)
        w = cast_param(weight, dtype)
        b = cast_param(bias, dtype)
        if activation == "gelu":
            return op(x, w, b, "gelu", [], "none")
        return op(x, w, b, activation, [], "")
    y = F.linear(x, weight, bias)
    if activation == "gelu":
        return F.gelu(y)
    if activation == "relu":
        return F.relu(y)
    return y


def onednn_linear_dtype(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.dtype | None:
    """The dtype the oneDNN linear runs in for these arguments, or None when it does not apply."""
    if not use_fast_cpu(x, weight, bias) or onednn_linear_op() is None:
        return None
    dtype = compute_dtype(x)
    if dtype == torch.float32 or (dtype == torch.bfloat16 and onednn_bf16_supported()):
        if weight.dtype in (torch.float32, torch.bfloat16) and x.dtype in (torch.float32, torch.bfloat16):
            return dtype
    return None


_bf16_ok: bool | None = None


def onednn_bf16_supported() -> bool:
    """Whether this CPU runs oneDNN bfloat16 kernels (AVX512-BF16, AMX...)."""
    global _bf16_ok
    if _bf16_ok is None:
        try:
            _bf16_ok = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except Exception:
            _bf16_ok = False
    return _bf16_ok


def activation_name(module: nn.Module) -> str | None:
    """"gelu" / "relu" for an exact nn.GELU / nn.ReLU module (fusable), else None."""
    if type(module) is nn.GELU and module.approximate == "none":
        return "gelu"
    if type(module) is nn.ReLU:
        return "relu"
    return None


def conv1x1(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A 1x1 convolution [B, C, H, W] -> [B, C', H, W] as a linear layer over the channels.

    The result is channels-last in memory (a permuted view of [B, H, W, C']), which is what
    a channels-last input gives through ``conv`` too.
    """
    if (
        conv.kernel_size == (1, 1)
        and conv.stride == (1, 1)
        and conv.padding in ((0, 0), "valid")
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and x.dim() == 4
    ):
        dtype = onednn_linear_dtype(x, conv.weight, conv.bias)
        if dtype is not None:
            w = cast_param(conv.weight, dtype)  # cached on the parameter, then viewed
            w = w.view(w.shape[0], w.shape[1])
            return linear(x.permute(0, 2, 3, 1), w, cast_param(conv.bias, dtype)).permute(0, 3, 1, 2)
    return nn.Conv2d.forward(conv, x)


class Conv1x1(nn.Conv2d):
    """``nn.Conv2d`` with kernel 1 (same parameters) that runs as a linear layer on CPU."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv1x1(x, self)


# --------------------------------------------------------------------------- modules


class MLP(nn.Module):
    """A stack of ``num_layers`` linear layers with an activation between them.

    Input and output: [..., C].
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        *,
        activation: type[nn.Module] = nn.ReLU,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        self.num_layers = num_layers
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out))
        self.sigmoid_output = sigmoid_output
        self.act = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = self.num_layers - 1
        fused = activation_name(self.act)
        for i, layer in enumerate(self.layers):
            if i < last and fused is not None:
                x = linear(x, layer.weight, layer.bias, fused)
            else:
                x = linear(x, layer.weight, layer.bias)
                if i < last:
                    x = self.act(x)
        if self.sigmoid_output:
            x = torch.sigmoid(x)
        return x


class LayerNorm2d(nn.Module):
    """Layer norm over the channels of a [B, C, H, W] map (output in the input's memory format)."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and x.shape[1] > 1 and x.permute(0, 2, 3, 1).is_contiguous():
            # channels-last: one fused pass over the channels of each pixel
            return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps).permute(
                0, 3, 1, 2
            )
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


def activation_fn(name: str):
    """The functional activation named in a config ("relu", "gelu", "glu")."""
    table = {"relu": F.relu, "gelu": F.gelu, "glu": F.glu}
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(table)}")
    return table[name]


class DropPath(nn.Module):
    """Stochastic depth on the residual branch (identity in eval mode)."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep
