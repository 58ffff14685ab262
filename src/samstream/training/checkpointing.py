"""Checkpoints of a training run.

* Official format: ``model.pt`` holding ``{"model": state_dict}`` (what the reference
  package and :func:`samstream.build.build_model` load), with ``model.yaml`` beside it
  in the reference's config format.
* Resume checkpoint: model, optimizer, scheduler, step, and every random stream
  (Python ``random``, NumPy's global state, torch CPU / CUDA, and any named
  ``torch.Generator``), so that a resumed run draws the same numbers as an
  uninterrupted one. It is loaded with ``torch.load(weights_only=True)``.

Files are written atomically (:mod:`samstream.io.atomic`): an interruption leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from samstream.config import SAM2Config, VideoOptions
from samstream.io.atomic import atomic_write_bytes
from samstream.training.model_yaml import write_reference_yaml

__all__ = [
    "OFFICIAL_WEIGHTS_NAME",
    "OFFICIAL_YAML_NAME",
    "RESUME_NAME",
    "ResumeState",
    "save_official_checkpoint",
    "capture_rng_state",
    "restore_rng_state",
    "save_resume_checkpoint",
    "load_resume_checkpoint",
]

OFFICIAL_WEIGHTS_NAME = "model.pt"
OFFICIAL_YAML_NAME = "model.yaml"
RESUME_NAME = "resume.pt"


def _save_torch(path: Path, obj: Any) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def save_official_checkpoint(
    folder: str | Path, model: nn.Module, config: SAM2Config, video: VideoOptions | None = None
) -> Path:
    """Write ``folder/model.pt`` (``{"model": state_dict}``) and ``folder/model.yaml``; returns the .pt path."""
    folder = Path(folder)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    weights = folder / OFFICIAL_WEIGHTS_NAME
    _save_torch(weights, {"model": state})
    write_reference_yaml(folder / OFFICIAL_YAML_NAME, config, video)
    return weights


def capture_rng_state(generators: Mapping[str, torch.Generator] | None = None) -> dict[str, Any]:
    """The state of every random stream, as tensors and plain Python values."""
    py_version, py_state, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": (py_version, list(py_state), py_gauss),
        "numpy": (np_kind, torch.from_numpy(np_keys.astype(np.int64)), int(np_pos), int(np_has_gauss), float(np_gauss)),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": {name: g.get_state() for name, g in (generators or {}).items()},
    }
    return state


def restore_rng_state(state: Mapping[str, Any], generators: Mapping[str, torch.Generator] | None = None) -> None:
    """Put every stream back as :func:`capture_rng_state` saw it.

    Raises ``KeyError`` naming a generator given here that the state does not hold.
    """
    py_version, py_state, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_kind, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    saved = state["generators"]
    for name, generator in (generators or {}).items():
        if name not in saved:
            raise KeyError(f"resume checkpoint has no state for generator {name!r} (has {sorted(saved)})")
        generator.set_state(saved[name])


@dataclass
class ResumeState:
    """What a resumed run gets back besides the restored objects."""

    step: int
    extra: dict[str, Any] = field(default_factory=dict)


def save_resume_checkpoint(
    path: str | Path,
    *,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None = None,
    generators: Mapping[str, torch.Generator] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write everything a run needs to continue after ``step`` steps, atomically.

    ``extra`` holds plain values (numbers, strings, lists, dicts, tensors), e.g. the resolved config.
    """
    payload = {
        "step": int(step),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": capture_rng_state(generators),
        "extra": dict(extra or {}),
    }
    _save_torch(Path(path), payload)


def load_resume_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    generators: Mapping[str, torch.Generator] | None = None,
    map_location: str | torch.device = "cpu",
) -> ResumeState:
    """Restore model, optimizer, scheduler and random streams from ``path``; returns the step and extras."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"resume checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt or truncated file, or not a checkpoint
        raise ValueError(f"cannot read resume checkpoint {path}: {exc}") from exc
    for key in ("step", "model", "optimizer", "rng"):
        if key not in payload:
            raise ValueError(f"{path} is not a resume checkpoint: no {key!r} entry")
    model.load_state_dict(payload["model"])
    if optimizer is not None:
        optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None:
        if payload["scheduler"] is None:
            raise ValueError(f"{path} holds no scheduler state")
        scheduler.load_state_dict(payload["scheduler"])
    restore_rng_state(payload["rng"], generators)
    return ResumeState(step=int(payload["step"]), extra=dict(payload["extra"]))
