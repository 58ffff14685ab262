"""``torch.compile`` for parts of a model, applied by the caller (builder, video predictor)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

# the parts whose shapes are fixed for a whole video (the reference's ``vos_optimized``)
VIDEO_PARTS = ("image_encoder", "memory_encoder", "sam_mask_decoder")


def compile_model(
    model: nn.Module,
    parts: Sequence[str] = ("image_encoder",),
    *,
    dynamic: bool = False,
    mode: str | None = None,
    backend: str = "inductor",
) -> nn.Module:
    """Compile the named child modules of ``model`` in place with ``nn.Module.compile``
    (their ``__call__`` runs the compiled graph; ``forward`` and the state dict are
    untouched). Returns ``model``. The first calls are slow while the graphs are built.

    ``parts``: attribute names of ``model``'s submodules, e.g. ``VIDEO_PARTS``;
    ``dynamic``, ``mode``, ``backend``: as for ``torch.compile``.
    """
    if isinstance(parts, str):
        raise TypeError(f"parts must be a sequence of names, got the string {parts!r}")
    modules = []
    for name in parts:
        part = getattr(model, name, None)
        if not isinstance(part, nn.Module):
            raise ValueError(f"parts: {name!r} is not a submodule of {type(model).__name__}")
        modules.append(part)
    for part in modules:
        part.compile(dynamic=dynamic, mode=mode, backend=backend)
    return model
