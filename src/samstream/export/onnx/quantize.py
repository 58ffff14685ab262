"""int8 dynamic quantization of exported graphs (onnxruntime's quantizer, weights only)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
from pathlib import Path

from ...io.atomic import atomic_output, atomic_write_json
from ...onnx.manifest import CONSTANTS_NAME, MANIFEST_NAME, read_manifest


@contextlib.contextmanager
def _quiet_root_logger():
    """The quantizer advises (on the root logger, at every call) a pre-processing step that
    dynamic quantization does not need."""
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(previous)


def quantize_int8(path: str | Path) -> None:
    """Replace the float32 graph at ``path`` by its dynamically quantized version: the weights
    of MatMul / Gemm layers stored as int8, activations quantized on the fly; convolutions stay
    float32 (ONNX Runtime's CPU provider lacks dynamic integer kernels for several of them)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = Path(path)
    with atomic_output(path) as tmp, _quiet_root_logger():
        quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])


def quantize_export(export_dir: str | Path, out_dir: str | Path) -> Path:
    """An int8 copy of a float32 export: every graph of ``export_dir`` quantized into ``out_dir``
    (same signatures), then its manifest with ``quantization: "int8"``. Returns ``out_dir``."""
    src, dst = Path(export_dir), Path(out_dir)
    manifest = read_manifest(src)
    if manifest.quantization is not None:
        raise ValueError(f"export_dir {src} is already quantized ({manifest.quantization})")
    dst.mkdir(parents=True, exist_ok=True)
    for graph in manifest.graphs.values():
        shutil.copyfile(src / graph.file, dst / graph.file)
        quantize_int8(dst / graph.file)
    shutil.copyfile(src / CONSTANTS_NAME, dst / CONSTANTS_NAME)
    atomic_write_json(dst / MANIFEST_NAME, dataclasses.replace(manifest, quantization="int8").to_json(), indent=1)
    return dst
