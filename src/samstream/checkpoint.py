"""Loading and saving model weights: official ``.pt`` files and safetensors, with strict checks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from .io.atomic import atomic_output


class CheckpointError(RuntimeError):
    """A checkpoint that does not fit the model, or cannot be read."""


_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOLS = tuple(bytes([0x80, n]) for n in range(2, 6))


def _looks_like_safetensors(head: bytes) -> bool:
    """safetensors: an 8-byte little-endian header length, then a JSON object."""
    return len(head) >= 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < 100_000_000


def describe_file_start(head: bytes) -> str:
    """What the first bytes of a file look like, for error messages."""
    if not head:
        return "an empty file"
    if head.startswith(_ZIP_MAGIC):
        return "a zip archive (PyTorch's checkpoint format)"
    if head[:2] in _PICKLE_PROTOCOLS:
        return "a raw Python pickle"
    if _looks_like_safetensors(head):
        return "a safetensors file"
    if head.lstrip().startswith((b"<!DOCTYPE", b"<html", b"<HTML")):
        return "an HTML page (a failed download?)"
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the weights (run `git lfs pull`)"
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head) / len(head)
    if printable > 0.95:
        return f"a text file starting with {head[:40].decode('ascii', 'replace')!r}"
    return f"unknown binary data starting with {head[:8].hex(' ')}"


def _load_failure(path: Path, head: bytes, exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in samstream's words (never PyTorch's
    advice to load with ``weights_only=False``, which would run the file's code)."""
    text = str(exc)
    kind = describe_file_start(head)
    if "weights_only" in text or "Weights only load failed" in text:
        found = re.search(r"GLOBAL ([\w.]+)", text)
        what = f" ({found.group(1)})" if found else ""
        return (
            f"refused checkpoint {path} ({kind}): it holds Python objects that would run code when loaded{what}; "
            "samstream loads only tensors: use the official weights, or re-save trusted weights with "
            "samstream.checkpoint.save_safetensors"
        )
    first = text.strip().split(". ")[0].strip(" .") if text.strip() else type(exc).__name__
    return f"cannot read checkpoint {path} ({kind}): the file is damaged or truncated ({first})"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from an official ``.pt`` (``{"model": state_dict}``) or a ``.safetensors`` file.

    Only tensors are loaded (PyTorch's ``weights_only`` loader); a file that is empty,
    not a checkpoint, or a pickle that would run code raises :class:`CheckpointError` naming
    the file and what it looks like.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with open(path, "rb") as handle:
        head = handle.read(64)
    if not head:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): the download or copy did not finish")
    if path.suffix == ".safetensors" or _looks_like_safetensors(head):
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises several types
            raise CheckpointError(
                f"cannot read checkpoint {path} as safetensors: {exc or type(exc).__name__} "
                f"(the file looks like {describe_file_start(head)})"
            ) from None
    if not (head.startswith(_ZIP_MAGIC) or head[:2] in _PICKLE_PROTOCOLS):
        raise CheckpointError(
            f"checkpoint {path} is not a PyTorch (.pt) or safetensors file: it looks like {describe_file_start(head)}"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(_load_failure(path, head, exc)) from None
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
