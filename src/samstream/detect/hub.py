"""Loading a transformers detector by hub name (through the Hugging Face cache) or from a
local folder, with one clear error when it is not available."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["DetectorNotAvailableError", "DetectorLoadError", "LoadedDetector", "require_transformers", "load_detector"]

INSTALL_HINT = "text prompts need Hugging Face transformers: install it with `pip install 'samstream[text]'`"


class DetectorNotAvailableError(RuntimeError):
    """The detector's files are neither in a local folder nor in the hub cache, and cannot be downloaded."""


class DetectorLoadError(ValueError):
    """The detector's files are there but are not a detector samstream can run."""


class LoadedDetector(NamedTuple):
    """A transformers processor and model, the config's ``model_type`` and where they came from."""

    processor: Any
    model: Any
    model_type: str
    source: str


def require_transformers() -> Any:
    """The transformers module; ImportError with the install command when it is missing."""
    try:
        import transformers
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return transformers


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where hub models are cached: ``cache_dir``, else ``$HF_HUB_CACHE``, ``$HF_HOME/hub``, ``~/.cache/huggingface/hub``."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home) / "hub"


def _not_available(name: str, cache: Path, reason: str) -> DetectorNotAvailableError:
    folder = cache / ("models--" + name.replace("/", "--"))
    return DetectorNotAvailableError(
        f"detector '{name}' is not available ({reason}): download it where there is network "
        f"(`hf download {name}`) and copy it to {folder}, or save the model folder (config.json, the weights, "
        f"the processor and tokenizer files) anywhere and pass that folder as --detector"
    )


def load_detector(
    name_or_path: str | os.PathLike[str],
    *,
    device: Any = "cpu",
    cache_dir: str | os.PathLike[str] | None = None,
    model_types: tuple[str, ...] | None = None,
) -> LoadedDetector:
    """Processor and model of a zero-shot object detector.

    A path that exists is read as a folder written by ``save_pretrained``; anything else is a
    hub name, read from the hub cache and downloaded when missing (never when
    ``HF_HUB_OFFLINE`` is set). ``model_types`` restricts which configs are accepted.
    """
    require_transformers()
    from transformers import AutoConfig, AutoModelForZeroShotObjectDetection, AutoProcessor

    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise DetectorLoadError(f"detector folder {path} must be a folder holding config.json (a save_pretrained folder)")
        where: dict[str, Any] = {}
        source = str(path)
        target = str(path)
    else:
        cache = hub_cache_dir(cache_dir)
        where = {"cache_dir": str(cache), "local_files_only": _offline()}
        source = text
        target = text
    try:
        config = AutoConfig.from_pretrained(target, **where)
    except OSError as exc:
        if path.exists():
            raise DetectorLoadError(f"detector folder {path}: cannot read config.json: {exc}") from None
        reason = "HF_HUB_OFFLINE is set and it is not in the cache" if _offline() else _first_line(exc)
        raise _not_available(text, hub_cache_dir(cache_dir), reason) from None
    except ValueError as exc:
        raise DetectorLoadError(f"detector {text}: {_first_line(exc)}") from None
    model_type = str(getattr(config, "model_type", ""))
    if model_types is not None and model_type not in model_types:
        raise DetectorLoadError(
            f"detector {text} is a '{model_type or 'unknown'}' model; expected one of: {', '.join(model_types)}"
        )
    try:
        processor = AutoProcessor.from_pretrained(target, **where)
        model = AutoModelForZeroShotObjectDetection.from_pretrained(target, **where)
    except OSError as exc:
        if path.exists():
            raise DetectorLoadError(f"detector folder {path} is incomplete: {_first_line(exc)}") from None
        raise _not_available(text, hub_cache_dir(cache_dir), _first_line(exc)) from None
    except ValueError as exc:
        raise DetectorLoadError(f"detector {text}: {_first_line(exc)}") from None
    model = model.to(device).eval()
    return LoadedDetector(processor, model, model_type, source)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
