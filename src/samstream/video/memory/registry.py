"""Memory strategies by name: ``--memory NAME`` on the command line, ``memory=`` in the API.

Built in: ``default`` (the reference), ``motion`` (SAMURAI), ``multipath`` (SAM2Long),
``distractor`` (DAM4SAM) and ``motion+distractor``. A mapping ``{obj_id: name or strategy}``
gives objects their own strategies (the others get ``default``).
"""

from __future__ import annotations

from typing import Callable, Mapping, Union

from ...config import SAM2Config
from .base import MemoryStrategy
from .combined import MotionDistractorMemory, PerObjectMemory
from .default import DefaultMemory
from .distractor import DistractorMemory
from .motion import MotionMemory
from .multipath import MultipathMemory
from .selection import MemoryPolicy

StrategyFactory = Callable[[SAM2Config], MemoryStrategy]
MemorySpec = Union[str, MemoryStrategy, Mapping[int, Union[str, MemoryStrategy]]]

_FACTORIES: dict[str, StrategyFactory] = {
    "default": lambda config: DefaultMemory(MemoryPolicy.from_config(config)),
    "motion": lambda config: MotionMemory(MemoryPolicy.from_config(config)),
    "multipath": lambda config: MultipathMemory(MemoryPolicy.from_config(config)),
    "distractor": lambda config: DistractorMemory(MemoryPolicy.from_config(config)),
    "motion+distractor": lambda config: MotionDistractorMemory(MemoryPolicy.from_config(config)),
}


def register_strategy(name: str, factory: StrategyFactory) -> None:
    """Make a strategy available by name; ``factory(config)`` builds it for a model's config.
    Names are words, optionally joined by ``-``, ``_`` or ``+`` (for combinations)."""
    if not name or not name.replace("-", "").replace("_", "").replace("+", "").isalnum():
        raise ValueError(f"a strategy name must be a non-empty word, got {name!r}")
    if name in _FACTORIES:
        raise ValueError(f"a memory strategy named {name!r} is already registered")
    _FACTORIES[name] = factory


def strategy_names() -> list[str]:
    """The names ``make_strategy`` accepts."""
    return sorted(_FACTORIES)


def _one(memory, config: SAM2Config) -> MemoryStrategy:
    if isinstance(memory, MemoryStrategy):
        return memory
    if not isinstance(memory, str):
        raise TypeError(f"memory must be a strategy name or a MemoryStrategy, got {type(memory).__name__}")
    factory = _FACTORIES.get(memory)
    if factory is None:
        raise ValueError(f"unknown memory strategy {memory!r}; available: {', '.join(strategy_names())}")
    return factory(config)


def make_strategy(memory: MemorySpec, config: SAM2Config) -> MemoryStrategy:
    """A strategy object from a name (built for ``config``), the object itself, or a mapping
    ``{obj_id: name or strategy}`` (a :class:`PerObjectMemory`; unlisted objects: ``default``)."""
    if isinstance(memory, Mapping):
        return PerObjectMemory({k: _one(v, config) for k, v in memory.items()}, _one("default", config))
    return _one(memory, config)
