"""oneDNN kernels for CPU inference: the fused linear op (checked when a backend is made),
when it applies, and low-precision weight copies kept on the module that owns them.

On CPU, inference-time linear layers can go straight to oneDNN (the library PyTorch already
uses for its convolutions): it fuses the bias and a GELU/ReLU into the matrix product (the
activation is run apart where that is timed faster on the CPU at hand), and in
float32 it is often much faster than the BLAS behind ``F.linear`` (e.g. MKL's AVX2 code on AMD
CPUs). Under ``torch.autocast`` the cast to the autocast dtype is done here, with the
low-precision weights kept between calls.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = ("none", "gelu", "relu")
# the layer timed to decide, per activation and dtype, between oneDNN's fused epilogue and the
# product followed by PyTorch's activation: tokens, C_in, C_out (a Hiera MLP's first layer)
EPILOGUE_PROBE_SHAPE = (1024, 384, 1536)
# the separate activation is taken only when it is this much faster (timing noise stays fused)
EPILOGUE_MARGIN = 0.9


@dataclass(frozen=True)
class OnednnKernels:
    """What this PyTorch build and CPU offer.

    ``linear_op``: ``torch.ops.mkldnn._linear_pointwise.default`` once checked against
    ``F.linear`` (None when missing or disagreeing); ``bf16``: whether oneDNN runs bfloat16
    kernels on this CPU (AVX512-BF16, AMX...); ``amx``: whether the CPU has AMX tiles, with
    which PyTorch's fused bfloat16 attention is faster than samstream's chunked products
    (``benchmarks/bench_kernels.py``: 1.3-2.4x on a 2-core AMX Xeon, 0.6-0.8x on an AVX-512 EPYC
    without AMX); ``separate``: the (activation, dtype) pairs for which the product followed by
    PyTorch's activation is faster here than oneDNN's fused epilogue (exact GELU on an AVX2-only
    EPYC, ``benchmarks/bench_kernels.py``; see :func:`slow_epilogues`).
    """

    linear_op: Callable | None
    bf16: bool
    amx: bool = False
    separate: frozenset[tuple[str, torch.dtype]] = field(default_factory=frozenset)


@functools.cache
def probe_onednn() -> OnednnKernels:
    """Look up the fused oneDNN linear op and check on a small problem that it computes
    ``gelu(F.linear(x, w, b))``; ask oneDNN whether it has bfloat16 kernels; time which fused
    activations are slower than separate ones (:func:`slow_epilogues`). Probed once a process."""
    op = None
    try:
        candidate = torch.ops.mkldnn._linear_pointwise.default
        if torch.backends.mkldnn.is_available():
            with torch.no_grad(), torch.autocast("cpu", enabled=False):
                gen = torch.Generator().manual_seed(0)
                x = torch.randn(5, 3, 24, generator=gen)
                w = torch.randn(40, 24, generator=gen)
                b = torch.randn(40, generator=gen)
                want = F.gelu(F.linear(x, w, b))
                got = candidate(x, w, b, "gelu", [], "none")
                if got.shape == want.shape and torch.allclose(got, want, atol=1e-4, rtol=1e-4):
                    op = candidate
    except (AttributeError, RuntimeError):  # op missing or failing in this build
        op = None
    try:
        bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        bf16 = False
    separate: frozenset[tuple[str, torch.dtype]] = frozenset()
    if op is not None:
        dtypes = (torch.float32, torch.bfloat16) if bf16 else (torch.float32,)
        separate = slow_epilogues(op, dtypes)
    return OnednnKernels(linear_op=op, bf16=bf16, amx=has_amx(), separate=separate)


def slow_epilogues(
    op: Callable,
    dtypes: Iterable[torch.dtype],
    activations: Iterable[str] = ("gelu",),
    shape: tuple[int, int, int] = EPILOGUE_PROBE_SHAPE,
    repeats: int = 5,
) -> frozenset[tuple[str, torch.dtype]]:
    """The (activation, dtype) pairs whose fused oneDNN epilogue is slower on this CPU than the
    plain product followed by PyTorch's activation, by more than :data:`EPILOGUE_MARGIN`.

    Only exact GELU by default: its erf epilogue is the costly one (a ReLU is a max). Each pair
    is timed on one [tokens, C_in] x [C_out, C_in] layer of ``shape``, the two ways in turn,
    ``repeats`` times, best of each kept (a fraction of a second a pair).
    """
    tokens, c_in, c_out = shape
    gen = torch.Generator().manual_seed(0)
    slow = set()
    with torch.no_grad(), torch.autocast("cpu", enabled=False):
        for dtype in dtypes:
            x = torch.randn(tokens, c_in, generator=gen).to(dtype)
            w = torch.randn(c_out, c_in, generator=gen).to(dtype)
            b = torch.randn(c_out, generator=gen).to(dtype)
            for activation in activations:
                fused_kernels = OnednnKernels(linear_op=op, bf16=False)
                apart_kernels = OnednnKernels(linear_op=op, bf16=False, separate=frozenset({(activation, dtype)}))
                fused = functools.partial(fused_linear, fused_kernels, x, w, b, activation)
                apart = functools.partial(fused_linear, apart_kernels, x, w, b, activation)
                fused(), apart()  # warm-up: first calls create oneDNN primitives
                best_fused = best_apart = float("inf")
                for _ in range(repeats):
                    best_fused = min(best_fused, _seconds(fused))
                    best_apart = min(best_apart, _seconds(apart))
                if best_apart < EPILOGUE_MARGIN * best_fused:
                    slow.add((activation, dtype))
    return frozenset(slow)


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def separate_activation(y: torch.Tensor, activation: str) -> torch.Tensor:
    """PyTorch's exact GELU / ReLU on a fresh product y (ReLU in place)."""
    if activation == "gelu":
        return F.gelu(y)
    if activation == "relu":
        return y.relu_()
    return y


def has_amx() -> bool:
    """Whether this CPU has AMX tiles the process may use (asks PyTorch, else /proc/cpuinfo)."""
    init = getattr(getattr(torch._C, "_cpu", None), "_init_amx", None)
    if init is not None:
        try:
            return bool(init())
        except RuntimeError:
            return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return any(line.startswith("flags") and " amx_bf16" in line for line in f)
    except OSError:
        return False


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a matrix product on ``x`` runs in: the autocast dtype inside an enabled
    ``torch.autocast`` region for x's device (floating x), else x's own dtype."""
    if x.dtype in (torch.float32, torch.float16, torch.bfloat16) and torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def cpu_inference(x: torch.Tensor, *params: torch.Tensor | None) -> bool:
    """Whether the CPU kernels may replace the plain op on x: x on CPU, not inside
    ``torch.compile`` tracing (a compiled graph has its own kernels), no gradient needed."""
    if x.device.type != "cpu" or torch.compiler.is_compiling():
        return False
    if torch.is_grad_enabled() and (x.requires_grad or any(p is not None and p.requires_grad for p in params)):
        return False
    return True


def linear_dtype(
    kernels: OnednnKernels, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.dtype | None:
    """The dtype the oneDNN linear runs in for these arguments, or None when it does not apply."""
    if kernels.linear_op is None or not cpu_inference(x, weight, bias):
        return None
    dtype = compute_dtype(x)
    if dtype == torch.float32 or (dtype == torch.bfloat16 and kernels.bf16):
        if weight.dtype in (torch.float32, torch.bfloat16) and x.dtype in (torch.float32, torch.bfloat16):
            return dtype
    return None


def fused_linear(
    kernels: OnednnKernels,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    activation: str = "none",
) -> torch.Tensor:
    """``activation(x @ weight.T + bias)`` in one oneDNN call (the activation apart for the pairs
    in ``kernels.separate``): x [..., C_in], weight [C_out, C_in] and bias [C_out] already in the
    dtype to run in -> [..., C_out]."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if (activation, x.dtype) in kernels.separate:
        return separate_activation(kernels.linear_op(x, weight, bias, "none", [], ""), activation)
    if activation == "gelu":
        return kernels.linear_op(x, weight, bias, "gelu", [], "none")
    return kernels.linear_op(x, weight, bias, activation, [], "")


def plain_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str) -> torch.Tensor:
    """The eager ops for :func:`fused_linear` (autograd, CUDA, compile)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    y = F.linear(x, weight, bias)
    if activation == "gelu":
        return F.gelu(y)
    if activation == "relu":
        return F.relu(y)
    return y


def activation_name(module: nn.Module) -> str | None:
    """"gelu" / "relu" for an exact nn.GELU / nn.ReLU module (fusable), else None."""
    if type(module) is nn.GELU and module.approximate == "none":
        return "gelu"
    if type(module) is nn.ReLU:
        return "relu"
    return None


def _version(t: torch.Tensor) -> int:
    """The in-place version counter of t (inference tensors have none: -1)."""
    try:
        return t._version
    except RuntimeError:
        return -1


def tensor_key(t: torch.Tensor) -> tuple:
    """Identifies t's current contents: in-place version, storage, device and dtype."""
    return (_version(t), t.data_ptr(), t.device, t.dtype)


class CastCache:
    """Copies of a module's tensors in another dtype, kept until the tensor changes
    (in-place update, new data, other device). One per module, keyed by name and dtype."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, torch.dtype], tuple[tuple, torch.Tensor]] = {}

    def get(self, name: str, t: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
        """``t`` in ``dtype`` (t itself when it already is)."""
        if t is None or t.dtype == dtype:
            return t
        key = tensor_key(t)
        entry = self._entries.get((name, dtype))
        if entry is not None and entry[0] == key:
            return entry[1]
        with torch.no_grad():
            out = t.detach().to(dtype)
        self._entries[(name, dtype)] = (key, out)
        return out

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
