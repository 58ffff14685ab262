"""Opt-in speed outside the model's math: the CPU inference backend (module swaps onto
oneDNN kernels), int8 linear layers on CPU and ``torch.compile`` of model parts.
:mod:`samstream.modeling` never imports this package; the builder applies it."""

from .compile import VIDEO_PARTS, compile_model
from .cpu import apply_cpu_backend, has_cpu_backend, remove_cpu_backend
from .int8 import INT8_PARTS, has_int8, quantize_int8, remove_int8

__all__ = [
    "INT8_PARTS",
    "VIDEO_PARTS",
    "apply_cpu_backend",
    "compile_model",
    "has_cpu_backend",
    "has_int8",
    "quantize_int8",
    "remove_cpu_backend",
    "remove_int8",
]
