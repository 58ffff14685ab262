"""Optimiser, learning-rate schedule and gradient clipping for SAM 2 training.

* AdamW with weight decay on weights only: biases, normalisation layers and
  (optionally, on by default) position embeddings and learned tokens get none.
* Layer-wise learning-rate decay in the Hiera trunk, as in the official recipe:
  with L blocks, block i gets ``decay ** (L - i)``, the patch embedding
  ``decay ** (L + 1)``; the trunk's position embeddings keep factor 1, and so does
  everything outside the trunk.
* A separate factor for the whole image encoder (the reference trains it with a
  lower learning rate).
* Linear warm-up then cosine decay to ``final_lr_factor`` (a ``LambdaLR``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn

__all__ = [
    "OptimizerConfig",
    "ScheduleConfig",
    "ParamGroupInfo",
    "trunk_lr_factor",
    "param_groups",
    "build_optimizer",
    "warmup_cosine_factor",
    "build_scheduler",
    "clip_gradients",
    "NonFiniteGradientError",
    "describe_params",
]

_NORM_TYPES: tuple[type, ...] = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm, nn.InstanceNorm2d)

# Parameters that are embeddings rather than weights: position encodings and learned tokens.
_EMBEDDING_PATTERN = re.compile(
    r"(pos_embed|pos_enc|tpos|_token|_tokens|point_embeddings|not_a_point_embed|no_mask_embed"
    r"|no_mem_embed|no_obj_ptr|no_obj_embed)"
)
_TRUNK_PREFIX = "image_encoder.trunk."


@dataclass(frozen=True)
class OptimizerConfig:
    """AdamW settings (official SAM 2 training values where they exist)."""

    lr: float = 5e-6
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    layer_decay: float = 0.9  # per Hiera block, toward the input
    image_encoder_lr_factor: float = 0.6  # reference: vision_lr 3e-6 / base_lr 5e-6
    no_decay_on_embeddings: bool = True  # no weight decay on position embeddings and tokens
    grad_clip_norm: float | None = 0.1  # max global L2 norm (None: no clipping)

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 < self.layer_decay <= 1:
            raise ValueError(f"layer_decay must be in (0, 1], got {self.layer_decay}")
        if self.image_encoder_lr_factor < 0:
            raise ValueError(f"image_encoder_lr_factor must be >= 0, got {self.image_encoder_lr_factor}")
        if self.grad_clip_norm is not None and self.grad_clip_norm <= 0:
            raise ValueError(f"grad_clip_norm must be > 0 or None, got {self.grad_clip_norm}")


@dataclass(frozen=True)
class ScheduleConfig:
    """Linear warm-up over ``warmup_steps``, then cosine to ``final_lr_factor`` at ``total_steps``."""

    total_steps: int = 1000
    warmup_steps: int = 50
    final_lr_factor: float = 0.1  # reference: end LR = base LR / 10

    def __post_init__(self) -> None:
        if self.total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {self.total_steps}")
        if not 0 <= self.warmup_steps <= self.total_steps:
            raise ValueError(f"warmup_steps must be in [0, total_steps], got {self.warmup_steps}")
        if not 0 <= self.final_lr_factor <= 1:
            raise ValueError(f"final_lr_factor must be in [0, 1], got {self.final_lr_factor}")


@dataclass(frozen=True)
class ParamGroupInfo:
    """How one parameter is optimised (for inspection and tests)."""

    name: str
    lr_factor: float
    weight_decay: float


def _num_trunk_blocks(model: nn.Module) -> int:
    blocks = {
        int(match.group(1))
        for name, _ in model.named_parameters()
        if (match := re.match(r"image_encoder\.trunk\.blocks\.(\d+)\.", name))
    }
    return max(blocks) + 1 if blocks else 0


def trunk_lr_factor(name: str, num_blocks: int, decay: float) -> float:
    """Layer-decay factor of a parameter (1 outside the trunk and for its position embeddings)."""
    if not name.startswith(_TRUNK_PREFIX):
        return 1.0
    local = name[len(_TRUNK_PREFIX):]
    if "pos_embed" in local:
        return 1.0
    if local.startswith("patch_embed."):
        return decay ** (num_blocks + 1)
    match = re.match(r"blocks\.(\d+)\.", local)
    if match:
        return decay ** (num_blocks - int(match.group(1)))
    return 1.0


def _no_decay_names(model: nn.Module, embeddings: bool) -> set[str]:
    names: set[str] = set()
    for module_name, module in model.named_modules():
        is_norm = isinstance(module, _NORM_TYPES) or type(module).__name__.startswith("LayerNorm")
        for param_name, _ in module.named_parameters(recurse=False):
            full = f"{module_name}.{param_name}" if module_name else param_name
            if is_norm or param_name == "bias" or (embeddings and _EMBEDDING_PATTERN.search(full)):
                names.add(full)
    return names


def describe_params(model: nn.Module, config: OptimizerConfig = OptimizerConfig()) -> list[ParamGroupInfo]:
    """LR factor and weight decay of every trainable parameter, in ``named_parameters`` order."""
    num_blocks = _num_trunk_blocks(model)
    no_decay = _no_decay_names(model, config.no_decay_on_embeddings)
    infos = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        factor = trunk_lr_factor(name, num_blocks, config.layer_decay)
        if name.startswith("image_encoder."):
            factor *= config.image_encoder_lr_factor
        infos.append(ParamGroupInfo(name, factor, 0.0 if name in no_decay else config.weight_decay))
    return infos


def param_groups(model: nn.Module, config: OptimizerConfig = OptimizerConfig()) -> list[dict]:
    """Optimizer parameter groups: one per (LR factor, weight decay), each with ``lr`` set and ``names`` listed.

    Frozen parameters (``requires_grad=False``) are left out.
    """
    params = dict(model.named_parameters())
    grouped: dict[tuple[float, float], dict] = {}
    for info in describe_params(model, config):
        key = (info.lr_factor, info.weight_decay)
        group = grouped.setdefault(
            key,
            {"params": [], "names": [], "lr": config.lr * info.lr_factor, "lr_factor": info.lr_factor,
             "weight_decay": info.weight_decay},
        )
        group["params"].append(params[info.name])
        group["names"].append(info.name)
    return list(grouped.values())


def build_optimizer(model: nn.Module, config: OptimizerConfig = OptimizerConfig()) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`."""
    groups = param_groups(model, config)
    if not groups:
        raise ValueError("model has no trainable parameters")
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps)


def warmup_cosine_factor(step: int, config: ScheduleConfig) -> float:
    """LR multiplier at ``step``: linear from 1/(warmup+1) to 1, then cosine down to ``final_lr_factor``."""
    if step < config.warmup_steps:
        return (step + 1) / (config.warmup_steps + 1)
    span = max(config.total_steps - config.warmup_steps, 1)
    progress = min((step - config.warmup_steps) / span, 1.0)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return config.final_lr_factor + (1 - config.final_lr_factor) * cosine


def build_scheduler(optimizer: torch.optim.Optimizer, config: ScheduleConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying :func:`warmup_cosine_factor` to every group (step it once per optimiser step)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine_factor(step, config))


class NonFiniteGradientError(FloatingPointError):
    """The gradient norm is NaN or infinite."""


def clip_gradients(params: Iterable[torch.nn.Parameter] | nn.Module, max_norm: float | None) -> float:
    """Clip the global L2 norm of the gradients to ``max_norm`` (None: only measure it).

    Returns the norm before clipping. Raises :class:`NonFiniteGradientError` when it is NaN
    or infinite (nothing is changed then).
    """
    if isinstance(params, nn.Module):
        params = params.parameters()
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        return 0.0
    grads = [p.grad for p in with_grad]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
    value = float(norm)
    if not math.isfinite(value):
        raise NonFiniteGradientError(f"gradient norm is {value}")
    if max_norm is not None and value > max_norm:
        scale = max_norm / (value + 1e-6)  # same rule as torch.nn.utils.clip_grad_norm_
        for grad in grads:
            grad.mul_(scale)
    return value
