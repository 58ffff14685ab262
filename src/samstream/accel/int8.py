"""Opt-in int8 inference on CPU: linear layers with int8 weights and int8 activations.

:func:`quantize_int8` changes, in place, the class of the ``nn.Linear`` layers (plain, or
:class:`~samstream.accel.cpu.CpuLinear` from the CPU backend) under the named parts of a model
to :class:`Int8Linear` (gpt-fast ``quantize.py`` style). The float weights stay the module's
parameters, so the state dict, loading weights and the plain model are untouched; the int8
copy is derived from them and kept on the layer until they change.

The kernel is PyTorch's dynamic quantized linear (``quantized::linear_dynamic``): weights
int8, symmetric, one scale per output channel; activations quantized to uint8 by the kernel
on every call (one scale and zero point per call, from the input's range), the int32
accumulator dequantized to float32 with the bias added. The weights are packed for oneDNN
where this PyTorch has it (it picks AVX-512 VNNI or AMX int8 instructions when the CPU has
them), else for FBGEMM. Convolutions and the attention products (queries x keys, weights x
values) stay in floating point.

The CPU backend and this module compose in either order: :func:`apply_cpu_backend` leaves an
:class:`Int8Linear` alone, and :func:`quantize_int8` takes a ``CpuLinear`` as it takes an
``nn.Linear`` (the MLPs then apply their activation after the int8 layer instead of fusing it).

An :class:`Int8Linear` steps aside (runs ``nn.Linear``'s float code) when autograd needs
gradients and inside ``torch.compile`` tracing; on another device than the CPU it raises.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .cpu import CpuLinear
from .onednn import compute_dtype, cpu_inference, tensor_key

# the parts of a SAM 2 model whose linear layers run on many tokens (image tokens, memory
# tokens); the heads on a few output tokens (IoU, object score, hypernetworks, object
# pointers) stay float: they cost nothing and decide scores and pointers
INT8_PARTS = ("image_encoder", "memory_attention", "memory_encoder", "sam_mask_decoder.transformer")

# engines in the order tried: oneDNN (VNNI / AMX int8), then FBGEMM
_ENGINES = ("onednn", "x86", "fbgemm")
# the only warning silenced: PyTorch's notice that quantized tensor dtypes are deprecated,
# raised when a weight is packed (the packed weight is the kernel's input format)
_DEPRECATION_NOTICE = r".*quantized tensor creation functions.*deprecated"


@dataclass(frozen=True)
class Int8Kernels:
    """What this PyTorch build offers for int8 linear layers on CPU.

    ``engine``: the quantized engine the weights are packed for ("onednn", "x86" or "fbgemm"),
    None when none works here; ``reduce_range``: activations quantized to 7 bits instead of 8
    (what FBGEMM needs on CPUs without VNNI to keep its 16-bit intermediate sums from
    saturating; oneDNN does not).
    """

    engine: str | None
    reduce_range: bool = False


class _engine:
    """Context manager: ``torch.backends.quantized.engine`` set to ``name`` (packing reads it), restored on exit."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.previous: str | None = None

    def __enter__(self) -> None:
        self.previous = torch.backends.quantized.engine
        torch.backends.quantized.engine = self.name

    def __exit__(self, *exc) -> None:
        torch.backends.quantized.engine = self.previous


def pack_weight(weight: torch.Tensor, bias: torch.Tensor | None, engine: str) -> torch.ScriptObject:
    """``weight`` [C_out, C_in] as symmetric int8 with one scale per output channel (and the
    float32 bias [C_out]), packed for ``engine``'s dynamic quantized linear."""
    with torch.no_grad():
        w = weight.detach().to(torch.float32)
        scales = w.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).eps) / 127.0  # [C_out]
        zero_points = torch.zeros(w.shape[0], dtype=torch.int64)
        b = None if bias is None else bias.detach().to(torch.float32)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_DEPRECATION_NOTICE, category=UserWarning)
            qweight = torch.quantize_per_channel(w, scales.double(), zero_points, 0, torch.qint8)
        with _engine(engine):
            return torch.ops.quantized.linear_prepack(qweight, b)


def int8_linear(x: torch.Tensor, packed: torch.ScriptObject, kernels: Int8Kernels) -> torch.Tensor:
    """``x @ W.T + b`` with the packed int8 weights: x [..., C_in] float -> [..., C_out] float32."""
    return torch.ops.quantized.linear_dynamic(x.to(torch.float32), packed, kernels.reduce_range)


def probe_int8() -> Int8Kernels:
    """The first quantized engine (oneDNN, then FBGEMM) whose packed int8 linear computes
    ``F.linear`` on a small problem within int8 rounding; ``Int8Kernels(None)`` when none does."""
    supported = set(torch.backends.quantized.supported_engines)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, 64, generator=gen)
    w = torch.randn(48, 64, generator=gen) / 8
    b = torch.randn(48, generator=gen)
    with torch.no_grad():
        want = F.linear(x, w, b)
    for engine in _ENGINES:
        if engine not in supported:
            continue
        kernels = Int8Kernels(engine=engine, reduce_range=engine != "onednn")
        try:
            got = int8_linear(x, pack_weight(w, b, engine), kernels)
        except (AttributeError, RuntimeError):  # op missing or failing in this build
            continue
        if got.shape == want.shape and float((got - want).abs().max()) <= 0.05 * float(want.abs().max()):
            return kernels
    return Int8Kernels(engine=None)


class Int8Linear(nn.Linear):
    """``nn.Linear`` with int8 weights and dynamically quantized int8 activations at CPU
    inference. x [..., C_in] -> [..., C_out], in the dtype the float layer would return."""

    int8_state = ("_int8", "_packed", "_int8_previous")

    def setup_int8(self, kernels: Int8Kernels, previous: type[nn.Module]) -> None:
        self._int8 = kernels
        self._packed: tuple | None = None  # (parameter keys, packed weight)
        self._int8_previous = previous

    def packed_weight(self) -> torch.ScriptObject:
        """The packed int8 weight, made again when the weight or the bias change."""
        key = (tensor_key(self.weight), None if self.bias is None else tensor_key(self.bias))
        if self._packed is None or self._packed[0] != key:
            self._packed = (key, pack_weight(self.weight, self.bias, self._int8.engine))
        return self._packed[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or self.weight.device.type != "cpu":
            raise RuntimeError(
                f"int8 layers run on the CPU only, got input on {x.device} and weights on {self.weight.device}: "
                "call samstream.accel.remove_int8(model) before moving the model"
            )
        if not cpu_inference(x, self.weight, self.bias):
            return super().forward(x)
        return int8_linear(x, self.packed_weight(), self._int8).to(compute_dtype(x))

    def _apply(self, fn, *args, **kwargs):  # nn.Module hook: weights may move or change
        self._packed = None
        return super()._apply(fn, *args, **kwargs)


def _int8_targets(model: nn.Module, parts: Sequence[str]) -> list[nn.Module]:
    """The linear layers (nn.Linear or CpuLinear) under the named parts of ``model``, each once."""
    targets: dict[int, nn.Module] = {}
    for name in parts:
        try:
            part = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"parts: {name!r} is not a submodule of {type(model).__name__}") from None
        for module in part.modules():
            if type(module) in (nn.Linear, CpuLinear):
                targets[id(module)] = module
    return list(targets.values())


def quantize_int8(
    model: nn.Module, parts: Sequence[str] = INT8_PARTS, *, kernels: Int8Kernels | None = None
) -> nn.Module:
    """Swap, in place, the linear layers under ``parts`` (dotted submodule names, e.g.
    ``INT8_PARTS``) to :class:`Int8Linear`; returns ``model``. Parameters, buffers and
    state-dict names are kept; applying it twice is harmless.

    ``kernels``: the engine to pack for; by default probed now (:func:`probe_int8`).
    Raises ValueError for a model with parameters off the CPU, RuntimeError when this
    PyTorch has no working int8 kernel.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if isinstance(parts, str):
        raise TypeError(f"parts must be a sequence of names, got the string {parts!r}")
    devices = sorted({str(p.device) for p in model.parameters() if p.device.type != "cpu"})
    if devices:
        raise ValueError(f"int8 inference runs on the CPU only, got a model with parameters on {', '.join(devices)}")
    targets = _int8_targets(model, parts)
    kernels = probe_int8() if kernels is None else kernels
    if kernels.engine is None:
        raise RuntimeError("int8 inference needs PyTorch's quantized CPU kernels (quantized::linear_dynamic), missing here")
    for module in targets:
        previous = type(module)
        module.__class__ = Int8Linear
        module.setup_int8(kernels, previous)
    return model


def remove_int8(model: nn.Module) -> nn.Module:
    """Undo :func:`quantize_int8` in place: every int8 layer gets back the class it had
    (nn.Linear or CpuLinear) and drops its packed weight. Returns ``model``."""
    for module in model.modules():
        if isinstance(module, Int8Linear):
            module.__class__ = module._int8_previous
            for name in Int8Linear.int8_state:
                module.__dict__.pop(name, None)
    return model


def has_int8(model: nn.Module) -> bool:
    """Whether any layer of ``model`` is an :class:`Int8Linear`."""
    return any(isinstance(m, Int8Linear) for m in model.modules())
