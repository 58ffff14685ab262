"""samstream: SAM 2 / SAM 2.1 for images and streaming video.

The public API is importable from here; each name is loaded on first use, so
``import samstream`` itself imports no torch-heavy module, reads no environment
variable and touches no file::

    import samstream

    model = samstream.build_model("sam2.1_hiera_tiny", "sam2.1_hiera_tiny.pt")
    predictor = samstream.ImagePredictor(model)
    predictor.set_image(image)
    result = predictor.predict(points=[[500, 375]], labels=[1])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> module that defines it (relative to this package)
_PUBLIC: dict[str, str] = {
    "build_model": ".build",
    "ImagePredictor": ".image.predictor",
    "MaskPrediction": ".image.predictor",
    "AutomaticMaskGenerator": ".image.automatic",
    "AutomaticMaskConfig": ".image.automatic",
    "VideoPredictor": ".video.predictor",
    "VideoPredictorOptions": ".video.predictor",
    "StreamingTracker": ".video.streaming",
    "FrameResult": ".results",
    "PromptResult": ".results",
    "MemoryStrategy": ".video.memory",
    "strategy_names": ".video.memory",
    "register_strategy": ".video.memory",
    "ClipPrompts": ".video.clip",
    "open_frame_source": ".video.sources",
    "FrameSource": ".video.sources",
    "SAM2Config": ".config",
    "VideoOptions": ".config",
    "ConfigError": ".config",
    "load_config": ".config",
    "preset_config": ".presets",
    "CheckpointError": ".checkpoint",
    "load_weights": ".checkpoint",
    "save_safetensors": ".checkpoint",
    "make_writer": ".io.writers",
    "TextSegmenter": ".image.text",
    "DetectedObject": ".results",
    "make_proposer": ".detect",
    "ObjectDiscovery": ".video.discovery",
    "TextFinder": ".video.discovery",
}

__all__ = ["__version__", *_PUBLIC]


def _read_version() -> str:
    """The installed distribution's version; the pyproject version when running from a source tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("samstream")
    except PackageNotFoundError:
        return "0.1.0"  # keep equal to [project].version in pyproject.toml (a test checks)


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _read_version()
    elif name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
    else:
        raise AttributeError(f"module 'samstream' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .build import build_model
    from .detect import make_proposer
    from .image.text import TextSegmenter
    from .results import DetectedObject
    from .video.discovery import ObjectDiscovery, TextFinder
    from .checkpoint import CheckpointError, load_weights, save_safetensors
    from .config import ConfigError, SAM2Config, VideoOptions, load_config
    from .image.automatic import AutomaticMaskConfig, AutomaticMaskGenerator
    from .image.predictor import ImagePredictor, MaskPrediction
    from .io.writers import make_writer
    from .presets import preset_config
    from .results import FrameResult, PromptResult
    from .video.clip import ClipPrompts
    from .video.memory import MemoryStrategy, register_strategy, strategy_names
    from .video.predictor import VideoPredictor, VideoPredictorOptions
    from .video.streaming import StreamingTracker
    from .video.sources import FrameSource, open_frame_source
