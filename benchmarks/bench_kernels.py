"""The kernel-level measurements behind samstream's CPU choices, on the machine it runs on.

1. attention: PyTorch's fused ``F.scaled_dot_product_attention`` against samstream's chunked
   matrix-product path (``samstream.accel.cpu_attention._chunked``), float32 and bfloat16, at
   memory-attention and Hiera shapes (GFLOP/s, 4·B·H·Nq·Nk·D FLOPs);
2. rotary encoding: the complex-product path (eager) against the real-valued one (ONNX export,
   compile) on a [3, 1, 1024, 256] query;
3. key/value assembly: writing 7 memory frames of B objects into a freshly allocated buffer per
   layer against a reused one (the cost of page faults on large allocations);
4. memory encoder (``sam2.1_hiera_t``'s, random weights): one batched pass over 8 objects'
   masks at 1024 px against one pass per object (why the encoder stays batched);
5. GELU epilogues: the first layer of each Hiera stage's MLP at 512 px (``sam2.1_hiera_t``),
   oneDNN's product with the exact GELU fused against the product then ``F.gelu``, float32
   (what ``samstream.accel.onednn.slow_epilogues`` decides between), and the choice it makes here.

Best of a few repeats each; prints the CPU model name and torch's thread count.

Example::

    python benchmarks/bench_kernels.py --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from machine import cpu_name

from samstream.accel.cpu_attention import _chunked
from samstream.accel.onednn import OnednnKernels, fused_linear, probe_onednn
from samstream.modeling.position_encoding import _apply_rotary_real, apply_rotary, axial_rope_angles

ATTENTION_SHAPES = [  # (B, H, Nq, Nk, D)
    (1, 1, 1024, 7184, 256),  # memory attention, 512 px, 7 memories + pointers, 1 object
    (8, 1, 1024, 7184, 256),  # the same, 8 objects
    (1, 4, 4096, 4096, 96),  # Hiera global attention, 1024 px
    (1, 1, 4096, 28688, 256),  # memory attention, 1024 px
]


def best_time(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def attention(repeats: int) -> None:
    kernels = probe_onednn()
    print("attention, GFLOP/s            fused SDPA   chunked")
    for b, h, nq, nk, d in ATTENTION_SHAPES:
        gen = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(b, h, n, d, generator=gen) for n in (nq, nk, nk))
        flops = 4 * b * h * nq * nk * d
        for dtype in (torch.float32, torch.bfloat16):
            qd, kd, vd = q.to(dtype), k.to(dtype), v.to(dtype)
            # oneDNN has no bfloat16 kernels on CPUs without AVX512-BF16 / AMX (the library then
            # never takes the chunked path in bfloat16)
            runs_chunked = dtype == torch.float32 or kernels.bf16
            with torch.inference_mode():
                fused = best_time(lambda: F.scaled_dot_product_attention(qd, kd, vd), repeats)
                chunked = best_time(lambda: _chunked(kernels, qd, kd, vd), repeats) if runs_chunked else None
            name = "fp32" if dtype == torch.float32 else "bf16"
            chunked_text = f"{flops / chunked / 1e9:9.0f}" if chunked is not None else "      n/a"
            print(f"  {b}x{h}x{nq}x{nk}x{d} {name:5s} {flops / fused / 1e9:12.0f} {chunked_text}")


def rotary(repeats: int) -> None:
    angles = axial_rope_angles(256, 32, 32)
    cos, sin = angles.cos(), angles.sin()
    x = torch.randn(3, 1, 1024, 256)
    diff = (apply_rotary(x, cos, sin) - _apply_rotary_real(x, cos, sin)).abs().max().item()
    complex_s = best_time(lambda: apply_rotary(x, cos, sin), repeats)
    real_s = best_time(lambda: _apply_rotary_real(x, cos, sin), repeats)
    print(f"rotary [3, 1, 1024, 256]: complex {complex_s * 1e3:.1f} ms, real {real_s * 1e3:.1f} ms, max |diff| {diff:.1e}")


def assembly(repeats: int, objects: int = 8, frames: int = 7, hw: int = 1024, dim: int = 256) -> None:
    rows = [torch.randn(1, 1, hw, dim) for _ in range(objects)]
    shift = torch.randn(1, 1, hw, dim)
    shape = (objects, 1, frames * hw + 64, dim)

    def fill(buf: torch.Tensor) -> torch.Tensor:
        for f in range(frames):
            for i in range(objects):
                torch.add(rows[i], shift, out=buf[i : i + 1, :, f * hw : (f + 1) * hw])
        return buf

    reused = torch.empty(shape)
    fresh_s = best_time(lambda: fill(torch.empty(shape)), repeats)
    reused_s = best_time(lambda: fill(reused), repeats)
    mb = torch.empty(shape).numel() * 4 / 2**20
    print(f"key assembly, {objects} objects x {frames} memories ({mb:.0f} MB): fresh buffer {fresh_s * 1e3:.1f} ms, "
          f"reused {reused_s * 1e3:.1f} ms per layer")


def memory_encoder(repeats: int, objects: int = 8, size: int = 1024) -> None:
    from samstream.modeling.memory_encoder import MemoryEncoder
    from samstream.presets import preset_config

    torch.manual_seed(0)
    encoder = MemoryEncoder(preset_config("sam2.1_hiera_t").memory_encoder).eval()
    feats = torch.randn(1, 256, size // 16, size // 16).expand(objects, -1, -1, -1)  # one frame, shared
    masks = torch.rand(objects, 1, size, size)
    with torch.inference_mode():
        batched = best_time(lambda: encoder(feats, masks), repeats)
        single = best_time(lambda: [encoder(feats[i : i + 1], masks[i : i + 1]) for i in range(objects)], repeats)
    print(f"memory encoder, {objects} objects at {size} px: batched {batched * 1e3:.0f} ms, "
          f"one object at a time {single * 1e3:.0f} ms")


MLP_SHAPES = [(16384, 96), (4096, 192), (1024, 384), (256, 768)]  # (tokens, C) per Hiera stage, 512 px


def epilogues(repeats: int) -> None:
    real = probe_onednn()
    if real.linear_op is None:
        print("GELU epilogues: no oneDNN linear op in this build")
        return
    fused_kernels = OnednnKernels(linear_op=real.linear_op, bf16=False)
    apart_kernels = OnednnKernels(linear_op=real.linear_op, bf16=False, separate=frozenset({("gelu", torch.float32)}))
    print("GELU epilogue, GFLOP/s (fp32)       fused    apart")
    gen = torch.Generator().manual_seed(0)
    for tokens, c in MLP_SHAPES:
        x = torch.randn(tokens, c, generator=gen)
        w, b = torch.randn(4 * c, c, generator=gen), torch.randn(4 * c, generator=gen)
        flops = 2 * tokens * c * 4 * c
        with torch.inference_mode():
            fused = best_time(lambda: fused_linear(fused_kernels, x, w, b, "gelu"), repeats)
            apart = best_time(lambda: fused_linear(apart_kernels, x, w, b, "gelu"), repeats)
        print(f"  [{tokens}, {c}] x [{c}, {4 * c}]{'':>8} {flops / fused / 1e9:8.0f} {flops / apart / 1e9:8.0f}")
    chosen = "apart" if ("gelu", torch.float32) in real.separate else "fused"
    print(f"  this process runs float32 GELU {chosen} (probe_onednn)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    attention(args.repeats)
    rotary(args.repeats * 5)
    assembly(args.repeats * 3)
    memory_encoder(args.repeats)
    epilogues(args.repeats * 3)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
