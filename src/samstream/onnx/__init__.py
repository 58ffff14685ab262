"""Running an ONNX export (``samstream export onnx``) on ONNX Runtime alone: numpy, onnxruntime
and PIL, never torch (``pip install 'samstream[onnx]'``).

``OnnxImagePredictor`` has the reference image predictor's methods; ``OnnxVideoPredictor`` and
``OnnxStreamingTracker`` those of :class:`samstream.video.predictor.VideoPredictor` and
:class:`samstream.video.streaming.StreamingTracker`.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "OnnxModel": ".graphs",
    "OnnxImagePredictor": ".image",
    "OnnxVideoPredictor": ".video",
    "OnnxVideoOptions": ".video",
    "OnnxStreamingTracker": ".streaming",
    "FrameResult": ".video",
    "PromptResult": ".video",
    "Manifest": ".manifest",
    "read_manifest": ".manifest",
}

__all__ = list(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
