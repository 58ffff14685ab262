"""Opt-in speed outside the model's math: the CPU inference backend (module swaps onto
oneDNN kernels) and ``torch.compile`` of model parts. :mod:`samstream.modeling` never
imports this package; the builder applies it."""

from .compile import VIDEO_PARTS, compile_model
from .cpu import apply_cpu_backend, has_cpu_backend, remove_cpu_backend

__all__ = ["VIDEO_PARTS", "apply_cpu_backend", "compile_model", "has_cpu_backend", "remove_cpu_backend"]
