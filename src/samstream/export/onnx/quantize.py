"""int8 dynamic quantization of an exported graph (onnxruntime's quantizer, weights only)."""

from __future__ import annotations

from pathlib import Path

from ...io.atomic import atomic_output


def quantize_int8(path: str | Path) -> None:
    """Replace the float32 graph at ``path`` by its dynamically quantized version: the weights
    of MatMul / Gemm layers stored as int8, activations quantized on the fly. Convolutions stay
    in float32 (ONNX Runtime's CPU provider has no dynamic ConvInteger kernel for every shape)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = Path(path)
    with atomic_output(path) as tmp:
        quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
