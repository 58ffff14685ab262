"""ONNX export of the whole tracker: image encoder, prompt decoder, memory attention, memory
encoder (needs torch and onnx: ``pip install 'samstream[export]'``). The exported folder runs
without PyTorch through :mod:`samstream.onnx`."""

from .exporter import DEFAULT_OPSET, MIN_OPSET, export_onnx
from .quantize import quantize_export, quantize_int8

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "export_onnx", "quantize_export", "quantize_int8"]
