"""Loading and saving model weights: official ``.pt`` files and safetensors, with strict checks."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from .io.atomic import atomic_output


class CheckpointError(RuntimeError):
    """A checkpoint that does not fit the model, or cannot be read."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from an official ``.pt`` (``{"model": state_dict}``) or a ``.safetensors`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises several types
            raise CheckpointError(f"cannot read safetensors checkpoint {path}: {exc}") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} holds no state dict (expected {{'model': state_dict}} or a state dict)")
    return dict(obj)


def check_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Raise :class:`CheckpointError` listing missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    misshaped = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(state_dict)
        if tuple(expected[k].shape) != tuple(state_dict[k].shape)
    )
    if not (missing or unexpected or misshaped):
        return
    lines = [f"{source} does not fit the model config:"]
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", misshaped)):
        if items:
            shown = items[:20]
            more = f" ... and {len(items) - 20} more" if len(items) > 20 else ""
            lines.append(f"  {title} ({len(items)}): " + ", ".join(shown) + more)
    raise CheckpointError("\n".join(lines))


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a checkpoint into ``model`` strictly (every key present, every shape equal)."""
    state = read_state_dict(path)
    check_state_dict(model, state, source=str(path))
    model.load_state_dict(state, strict=True)


def save_safetensors(model: nn.Module, path: str | Path) -> None:
    """Save the model's weights as safetensors, atomically (:func:`samstream.io.atomic.atomic_output`):
    an interrupted save leaves the previous file, never a truncated one."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_output(path) as temp:
        save_file(state, str(temp))
