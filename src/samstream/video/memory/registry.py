"""Memory strategies by name: ``--memory NAME`` on the command line, ``memory=`` in the API."""

from __future__ import annotations

from typing import Callable

from ...config import SAM2Config
from .base import MemoryStrategy
from .default import DefaultMemory
from .selection import MemoryPolicy

StrategyFactory = Callable[[SAM2Config], MemoryStrategy]

_FACTORIES: dict[str, StrategyFactory] = {
    "default": lambda config: DefaultMemory(MemoryPolicy.from_config(config)),
}


def register_strategy(name: str, factory: StrategyFactory) -> None:
    """Make a strategy available by name; ``factory(config)`` builds it for a model's config."""
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"a strategy name must be a non-empty word, got {name!r}")
    if name in _FACTORIES:
        raise ValueError(f"a memory strategy named {name!r} is already registered")
    _FACTORIES[name] = factory


def strategy_names() -> list[str]:
    """The names ``make_strategy`` accepts."""
    return sorted(_FACTORIES)


def make_strategy(memory: str | MemoryStrategy, config: SAM2Config) -> MemoryStrategy:
    """A strategy object from a name (built for ``config``) or the object itself."""
    if isinstance(memory, MemoryStrategy):
        return memory
    if not isinstance(memory, str):
        raise TypeError(f"memory must be a strategy name or a MemoryStrategy, got {type(memory).__name__}")
    factory = _FACTORIES.get(memory)
    if factory is None:
        raise ValueError(f"unknown memory strategy {memory!r}; available: {', '.join(strategy_names())}")
    return factory(config)
