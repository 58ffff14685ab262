"""Roofline pieces shared by ``bench_roofline.py`` and its test: what this machine can do, how
many FLOPs a piece of a model runs, and where the time of a call goes.

- :func:`probe_machine` measures the limits on the machine it runs on: the best float32 and
  bfloat16 throughput of a large square matrix product, and of
  ``F.scaled_dot_product_attention`` at memory-attention shapes (1 head, dim 256, the keys of
  a few memory frames), and names the CPU (lscpu model name, AMX / AVX-512-bf16 / VNNI flags).
- :func:`counting_flops` is ``torch.utils.flop_counter.FlopCounterMode`` with the two CPU ops
  it does not count by itself: PyTorch's CPU flash attention
  (``aten._scaled_dot_product_flash_attention_for_cpu``) and oneDNN's fused linear layer
  (``mkldnn._linear_pointwise``, what samstream's CPU backend runs its linear layers with).
- :class:`ComponentMeter` times named components of a model (subtrees of modules, plus a few
  methods called outside ``forward``) with forward pre/post hooks; with a FLOP counter it also
  attributes FLOPs to them, and splits off the attention core (the FLOPs inside attention
  modules that are not their linear projections).
- :func:`roofline_limit` is the time-weighted limit for a mix of attention and other FLOPs.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

#: CPU flags that decide which low-precision kernels exist
CPU_FLAGS = ("amx_tile", "amx_bf16", "amx_int8", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni")

# --------------------------------------------------------------------------- the machine


@dataclass(frozen=True)
class CpuInfo:
    """What CPU the numbers come from."""

    model_name: str
    flags: tuple[str, ...]  # those of CPU_FLAGS present
    capability: str  # torch.backends.cpu.get_cpu_capability(), e.g. "AVX512"
    threads: int  # torch.get_num_threads()
    cores: int | None  # logical CPUs the OS reports


def cpu_info() -> CpuInfo:
    """The CPU's model name and relevant flags, from ``lscpu`` (``/proc/cpuinfo`` where missing)."""
    text = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    if not text:
        with contextlib.suppress(OSError):
            with open("/proc/cpuinfo") as f:
                text = f.read()
    name = re.search(r"^\s*model name\s*:\s*(.+)$", text, re.MULTILINE | re.IGNORECASE)
    flags_line = re.search(r"^\s*flags\s*:\s*(.+)$", text, re.MULTILINE | re.IGNORECASE)
    present = set(flags_line.group(1).split()) if flags_line else set()
    return CpuInfo(
        model_name=name.group(1).strip() if name else (platform.processor() or platform.machine()),
        flags=tuple(f for f in CPU_FLAGS if f in present),
        capability=torch.backends.cpu.get_cpu_capability(),
        threads=torch.get_num_threads(),
        cores=os.cpu_count(),
    )


@dataclass(frozen=True)
class Throughput:
    """The best of a few timed runs of one kernel."""

    kernel: str  # "matmul" or "attention"
    dtype: str  # "fp32" or "bf16"
    shape: str  # what was run, e.g. "4096x4096 @ 4096x4096"
    flops: int  # per run
    seconds: float  # the fastest run

    @property
    def gflops(self) -> float:
        return self.flops / self.seconds / 1e9


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _best_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first-call allocations and kernel selection
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_throughput(
    size: int, dtype: str, *, repeats: int = 3, start: int = 512, budget_s: float = 0.25
) -> Throughput:
    """``a @ b`` for two random square matrices of ``dtype`` ("fp32" / "bf16"), at most [size, size].

    The side starts at ``min(start, size)`` and doubles (up to ``size``) while one product takes
    under ``budget_s``: where a dtype has no hardware (bfloat16 on an AVX2 CPU ran a 4096 product
    at 0.2 GFLOP/s, 10 minutes a call) the probe stays small instead of taking an hour, and
    fast machines still reach ``size``.
    """
    if size < 1 or start < 1:
        raise ValueError(f"size and start must be >= 1, got {size} and {start}")
    gen = torch.Generator().manual_seed(0)
    side = min(start, size)
    with torch.inference_mode():
        while True:
            a = torch.randn(side, side, generator=gen).to(DTYPES[dtype])
            b = torch.randn(side, side, generator=gen).to(DTYPES[dtype])
            begin = time.perf_counter()
            torch.mm(a, b)
            if side >= size or time.perf_counter() - begin >= budget_s:
                break
            side = min(2 * side, size)
        seconds = _best_seconds(lambda: torch.mm(a, b), repeats)
    return Throughput("matmul", dtype, f"{side}x{side} @ {side}x{side}", 2 * side**3, seconds)


def attention_throughput(queries: int, keys: int, dim: int, dtype: str, *, repeats: int = 3) -> Throughput:
    """``F.scaled_dot_product_attention`` with 1 head: q [1, 1, queries, dim], k/v [1, 1, keys, dim]."""
    if min(queries, keys, dim) < 1:
        raise ValueError(f"queries, keys and dim must be >= 1, got {queries}, {keys}, {dim}")
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(1, 1, queries, dim, generator=gen).to(DTYPES[dtype])
    k = torch.randn(1, 1, keys, dim, generator=gen).to(DTYPES[dtype])
    v = torch.randn(1, 1, keys, dim, generator=gen).to(DTYPES[dtype])
    flops = sdpa_flop_count(q.shape, k.shape, v.shape)
    with torch.inference_mode():
        seconds = _best_seconds(lambda: F.scaled_dot_product_attention(q, k, v), repeats)
    return Throughput("attention", dtype, f"q {queries} x k {keys} x d {dim}", flops, seconds)


@dataclass(frozen=True)
class MachineProbe:
    """The machine's limits, GFLOP/s: matmul per dtype, attention per (dtype, query tokens)."""

    cpu: CpuInfo
    matmul: dict[str, Throughput]  # dtype -> best matrix product
    attention: dict[tuple[str, int], Throughput]  # (dtype, query tokens) -> best attention

    def matmul_limit(self, dtype: str) -> float:
        return self.matmul[dtype].gflops

    def attention_limit(self, dtype: str, queries: int) -> float:
        """The best this machine does on attention FLOPs: PyTorch's fused attention at the probed
        query count closest to ``queries``, or the matmul limit where matrix products are faster
        (attention is two matrix products and a softmax, so no kernel is held to less)."""
        probed = [q for d, q in self.attention if d == dtype]
        if not probed:
            raise KeyError(f"no attention probe for dtype {dtype!r}")
        nearest = min(probed, key=lambda q: abs(math.log(q / max(queries, 1))))
        fused = self.attention[(dtype, nearest)].gflops
        matmul = self.matmul.get(dtype)
        return fused if matmul is None else max(fused, matmul.gflops)

    def as_dict(self) -> dict:
        def row(t: Throughput) -> dict:
            return {"kernel": t.kernel, "dtype": t.dtype, "shape": t.shape, "gflops": t.gflops, "seconds": t.seconds}

        return {
            "cpu": vars(self.cpu) | {"flags": list(self.cpu.flags)},
            "matmul": [row(t) for t in self.matmul.values()],
            "attention": [row(t) | {"queries": q} for (_, q), t in self.attention.items()],
        }


def probe_machine(
    *,
    matmul_size: int = 4096,
    attention_queries: Sequence[int] = (1024, 4096),
    memory_frames: int = 7,
    dim: int = 256,
    dtypes: Sequence[str] = ("fp32", "bf16"),
    repeats: int = 3,
) -> MachineProbe:
    """Measure matmul and attention throughput here (keys = ``memory_frames`` x queries)."""
    matmul = {d: matmul_throughput(matmul_size, d, repeats=repeats) for d in dtypes}
    attention = {
        (d, q): attention_throughput(q, memory_frames * q, dim, d, repeats=repeats)
        for d in dtypes
        for q in attention_queries
    }
    return MachineProbe(cpu_info(), matmul, attention)


# --------------------------------------------------------------------------- counting FLOPs


def _linear_pointwise_flops(*args, out_shape=None, **kwargs) -> int:
    """mkldnn._linear_pointwise: (X, W, B, attr, ...) or .binary (X, other, W, B, attr); W [out, in]."""
    x_shape, w_shape = (args[0], args[1]) if isinstance(args[3], str) else (args[0], args[2])
    rows = math.prod(x_shape[:-1])
    return 2 * rows * w_shape[0] * w_shape[1]


def _cpu_flash_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def extra_flop_formulas() -> dict:
    """FLOP formulas for the CPU ops FlopCounterMode leaves out, for the ops this build has."""
    formulas = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_flops}
    with contextlib.suppress(AttributeError, RuntimeError):
        formulas[torch.ops.mkldnn._linear_pointwise] = _linear_pointwise_flops
    return formulas


@contextlib.contextmanager
def counting_flops() -> Iterator[FlopCounterMode]:
    """A FlopCounterMode (no table printed) that also counts CPU flash attention and oneDNN linear."""
    with FlopCounterMode(display=False, custom_mapping=extra_flop_formulas()) as counter:
        yield counter


# --------------------------------------------------------------------------- timing components

#: classes (or their bases, by name) whose forward is an attention block; in samstream and the
#: reference alike: transformer Attention / RoPEAttention and Hiera's MultiScaleAttention
ATTENTION_CLASSES = frozenset({"Attention", "RoPEAttention", "MultiScaleAttention"})


def is_attention(module: nn.Module) -> bool:
    return any(cls.__name__ in ATTENTION_CLASSES for cls in type(module).__mro__)


@dataclass
class ComponentStats:
    """Accumulated over calls: wall seconds, FLOPs (0 without a counter), attention-core FLOPs."""

    seconds: float = 0.0
    flops: int = 0
    attention_flops: int = 0
    calls: int = 0

    def __sub__(self, other: "ComponentStats") -> "ComponentStats":
        return ComponentStats(
            self.seconds - other.seconds,
            self.flops - other.flops,
            self.attention_flops - other.attention_flops,
            self.calls - other.calls,
        )

    def __add__(self, other: "ComponentStats") -> "ComponentStats":
        return ComponentStats(
            self.seconds + other.seconds,
            self.flops + other.flops,
            self.attention_flops + other.attention_flops,
            self.calls + other.calls,
        )


@dataclass
class _Accounting:
    depth: int = 0  # hooked calls open (any component): only the outermost one is timed
    group: str | None = None
    start: float = 0.0
    start_flops: int = 0
    start_core: int = 0
    att_depth: int = 0
    att_start: int = 0
    att_linear_start: int = 0
    lin_depth: int = 0
    lin_start: int = 0
    linear_in_attention: int = 0  # FLOPs of linear layers run inside attention modules
    core: int = 0  # attention-core FLOPs so far
    stats: dict[str, ComponentStats] = field(default_factory=dict)


class ComponentMeter:
    """Times (and with ``flops``, counts the FLOPs of) named components of ``model``.

    ``components``: name -> module paths (``"image_encoder"``, ``"sam_mask_decoder.conv_s0"``);
    every module in a path's subtree belongs to it, a longer path wins over a shorter one (a
    component may have no paths and only methods). ``methods``: name -> ``"path.method"``
    entries, methods called outside ``forward`` (wrapped on the instance while attached); more
    objects' methods can be added with :meth:`watch`. A call is charged to the component of the
    outermost hooked module or method open at the time, so nothing is counted twice; calls
    from other threads than the one that attached the meter are not counted. ``flops``: the
    running FLOP total of an active counter (``counter.get_total_flops``), or None to time only.

    Use as a context manager (hooks attached inside), and read :meth:`totals` at any time.
    """

    def __init__(
        self,
        model: nn.Module,
        components: Mapping[str, Sequence[str]],
        *,
        methods: Mapping[str, Sequence[str]] | None = None,
        flops: Callable[[], int] | None = None,
    ) -> None:
        self.model = model
        self.components = {name: tuple(paths) for name, paths in components.items()}
        self.methods = {name: tuple(entries) for name, entries in (methods or {}).items()}
        self.flops = flops
        self._acc = _Accounting(stats={name: ComponentStats() for name in self.components})
        self._handles: list = []
        self._wrapped: list[tuple[object, str]] = []
        self._thread: int | None = None  # the thread that attached the meter

    # ------------------------------------------------------------------ what belongs where

    def assignment(self) -> dict[str, str]:
        """module path -> component, for every module of the model in a component."""
        owners: dict[str, tuple[int, str]] = {}
        modules = dict(self.model.named_modules())
        for name, paths in self.components.items():
            for path in paths:
                if path not in modules:
                    continue  # e.g. a model without high-resolution projections
                for sub in modules:
                    if sub == path or sub.startswith(path + "."):
                        if sub not in owners or owners[sub][0] < len(path):
                            owners[sub] = (len(path), name)
        return {sub: name for sub, (_, name) in owners.items()}

    # ------------------------------------------------------------------ accounting

    def _total_flops(self) -> int:
        return int(self.flops()) if self.flops is not None else 0

    def _enter(self, group: str) -> None:
        acc = self._acc
        if acc.depth == 0:
            acc.group = group
            acc.start_flops = self._total_flops()
            acc.start_core = acc.core
            acc.start = time.perf_counter()
        acc.depth += 1

    def _exit(self) -> None:
        acc = self._acc
        acc.depth -= 1
        if acc.depth == 0 and acc.group is not None:
            elapsed = time.perf_counter() - acc.start
            s = acc.stats[acc.group]
            s.seconds += elapsed
            s.flops += self._total_flops() - acc.start_flops
            s.attention_flops += acc.core - acc.start_core
            s.calls += 1
            acc.group = None

    def _attention_enter(self) -> None:
        acc = self._acc
        if acc.att_depth == 0:
            acc.att_start = self._total_flops()
            acc.att_linear_start = acc.linear_in_attention
        acc.att_depth += 1

    def _attention_exit(self) -> None:
        acc = self._acc
        acc.att_depth -= 1
        if acc.att_depth == 0:
            linear = acc.linear_in_attention - acc.att_linear_start
            acc.core += self._total_flops() - acc.att_start - linear

    def _linear_enter(self) -> None:
        acc = self._acc
        if acc.att_depth > 0:
            if acc.lin_depth == 0:
                acc.lin_start = self._total_flops()
            acc.lin_depth += 1

    def _linear_exit(self) -> None:
        acc = self._acc
        if acc.lin_depth > 0:
            acc.lin_depth -= 1
            if acc.lin_depth == 0:
                acc.linear_in_attention += self._total_flops() - acc.lin_start

    def _ours(self) -> bool:
        return threading.get_ident() == self._thread

    def _hook(self, module: nn.Module, enter: Callable[[], None], leave: Callable[[], None]) -> None:
        def pre(*_) -> None:
            if self._ours():
                enter()

        def post(*_) -> None:
            if self._ours():
                leave()

        self._handles.append(module.register_forward_pre_hook(pre))
        self._handles.append(module.register_forward_hook(post, always_call=True))

    def watch(self, obj: object, method: str, component: str) -> None:
        """Charge calls of ``obj.method`` to ``component`` until the meter is detached."""
        if self._thread is None:
            raise RuntimeError("watch() needs the meter attached (inside its with-block)")
        if component not in self.components:
            raise KeyError(f"component must be one of {list(self.components)}, got {component!r}")
        if method in vars(obj):
            raise RuntimeError(f"{type(obj).__name__}.{method} is already set on the instance")
        original = getattr(obj, method)

        def timed(*args, **kwargs):
            if not self._ours():
                return original(*args, **kwargs)
            self._enter(component)
            try:
                return original(*args, **kwargs)
            finally:
                self._exit()

        setattr(obj, method, timed)
        self._wrapped.append((obj, method))

    def _wrap_attention(self, obj: object, method: str) -> None:
        """Count calls of ``obj.method`` (attention called without its forward) as attention."""
        original = getattr(obj, method)

        def counted(*args, **kwargs):
            if not self._ours():
                return original(*args, **kwargs)
            self._attention_enter()
            try:
                return original(*args, **kwargs)
            finally:
                self._attention_exit()

        setattr(obj, method, counted)
        self._wrapped.append((obj, method))

    def __enter__(self) -> "ComponentMeter":
        self._thread = threading.get_ident()
        modules = dict(self.model.named_modules())
        for path, group in self.assignment().items():
            self._hook(modules[path], lambda g=group: self._enter(g), self._exit)
        for group, entries in self.methods.items():
            for entry in entries:
                path, _, method = entry.rpartition(".")
                if path in modules and hasattr(modules[path], method):
                    self.watch(modules[path], method, group)
        if self.flops is not None:
            for module in modules.values():
                if is_attention(module):
                    self._hook(module, self._attention_enter, self._attention_exit)
                    if hasattr(module, "attend_projected"):  # samstream's projections kept across frames
                        self._wrap_attention(module, "attend_projected")
                elif isinstance(module, nn.Linear):
                    self._hook(module, self._linear_enter, self._linear_exit)
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for obj, name in self._wrapped:
            delattr(obj, name)
        self._wrapped.clear()
        self._thread = None

    @property
    def attention_core_flops(self) -> int:
        """Attention-core FLOPs counted so far, in any component or none."""
        return self._acc.core

    def totals(self) -> dict[str, ComponentStats]:
        """A copy of the accumulated stats per component."""
        return {name: ComponentStats(**vars(s)) for name, s in self._acc.stats.items()}


def difference(after: Mapping[str, ComponentStats], before: Mapping[str, ComponentStats]) -> dict[str, ComponentStats]:
    return {name: after[name] - before[name] for name in after}


# --------------------------------------------------------------------------- the limit of a mix


def roofline_limit(flops: float, attention_flops: float, matmul_limit: float, attention_limit: float) -> float:
    """GFLOP/s at best for ``flops`` of which ``attention_flops`` run at ``attention_limit`` and
    the rest at ``matmul_limit``: total / (the time each part takes at its own limit)."""
    if flops <= 0:
        return matmul_limit
    attention_flops = min(max(attention_flops, 0.0), flops)
    seconds = (flops - attention_flops) / matmul_limit + attention_flops / attention_limit
    return flops / seconds
