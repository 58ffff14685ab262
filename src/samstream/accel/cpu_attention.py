"""Scaled dot-product attention for CPU inference, from matrix products and a softmax in
chunks of queries, where PyTorch's fused CPU kernel is slow."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .onednn import OnednnKernels, compute_dtype, cpu_inference

# Attention logits materialised at once (elements); larger problems are processed in chunks
# of queries so that the logits stay cache-friendly.
CHUNK_ELEMENTS = 1 << 21
# A head pair this large (queries x keys) goes through oneDNN one head at a time.
LARGE_ATTENTION = 1 << 22


def cpu_scaled_dot_product(
    kernels: OnednnKernels, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float = 0.0
) -> torch.Tensor:
    """``F.scaled_dot_product_attention(q, k, v)`` for q [B, H, Nq, D], k/v [B, H, Nk, D(v)].

    At CPU inference in bfloat16 (under autocast or with bfloat16 inputs, when the CPU has
    bfloat16 kernels but no AMX) it is computed in chunks of queries, unless there are very few
    queries or keys; float32, and bfloat16 on AMX CPUs, go to PyTorch's fused kernel. The
    chunked result is laid out as [B, Nq, H, Dv] in memory (a transposed view), so that merging the heads costs no copy.
    Anything else (dropout, autograd, CUDA, compile) goes to the fused PyTorch op.
    """
    if dropout_p == 0.0 and q.dim() == 4 and k.dim() == 4 and v.dim() == 4 and cpu_inference(q, k, v):
        dtype = compute_dtype(q)
        b, h, nq, _ = q.shape
        nk = k.shape[-2]
        if nq > 0 and nk > 0:
            if dtype == torch.bfloat16 and min(nq, nk) >= 32 and kernels.bf16 and not kernels.amx:
                return _chunked(kernels, q.to(dtype), k.to(dtype), v.to(dtype))
    # float32: PyTorch's fused flash kernel beats matrix products + softmax at every shape measured
    # (benchmarks/bench_kernels.py: 155-183 against 127-149 GFLOP/s on a 2-core AVX-512 EPYC,
    # 322-357 against 222-268 on a 2-core AMX Xeon, where it also wins in bfloat16: 1077-1610
    # against 563-813)
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)


def _chunked(kernels: OnednnKernels, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(D)) v, chunk by chunk of queries; returns a [B, H, Nq, Dv] view."""
    b, h, nq, d = q.shape
    nk = k.shape[-2]
    scale = 1.0 / math.sqrt(d)
    out = q.new_empty((b, nq, h, v.shape[-1])).transpose(1, 2)  # [B, H, Nq, Dv] view
    op = kernels.linear_op
    if op is not None and b * h <= 16 and nq * nk >= LARGE_ATTENTION:
        # few large heads: one head at a time, keys as the "weight" of a linear layer
        rows = max(1, CHUNK_ELEMENTS // nk)
        for i in range(b):
            for j in range(h):
                qh = q[i, j] * scale  # [Nq, D]
                kh = k[i, j].contiguous()  # [Nk, D]
                vt = v[i, j].t().contiguous()  # [Dv, Nk]
                for s in range(0, nq, rows):
                    attn = torch.softmax(op(qh[s : s + rows], kh, None, "none", [], ""), dim=-1)  # [rows, Nk]
                    out[i, j, s : s + rows] = op(attn, vt, None, "none", [], "")
        return out
    # many small heads (windows): batched matrix products over the windows, head by head
    # (dense operands: strided views into a fused qkv projection make bmm much slower, and
    # copying one head at a time moves whole rows)
    rows = max(1, CHUNK_ELEMENTS // max(1, b * nk))
    for j in range(h):
        qj = torch.mul(q[:, j], scale)  # [B, Nq, D], dense
        kt = k[:, j].contiguous().transpose(1, 2)  # [B, D, Nk]
        vj = v[:, j].contiguous()  # [B, Nk, Dv]
        for s in range(0, nq, rows):
            attn = torch.softmax(torch.bmm(qj[:, s : s + rows], kt), dim=-1)  # [B, rows, Nk]
            out[:, j, s : s + rows] = torch.bmm(attn, vj)
    return out
