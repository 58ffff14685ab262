"""Memory strategies by name: ``--memory NAME`` on the command line, ``memory=`` in the API.

Built in: ``default`` (the reference), ``motion`` (SAMURAI), ``multipath`` (SAM2Long),
``distractor`` (DAM4SAM) and ``motion+distractor``. A mapping ``{obj_id: name or strategy}``
gives objects their own strategies (the others get ``default``).

A built-in name takes options after a colon, the scalar fields of its settings
(:class:`MotionConfig`, :class:`MultipathConfig`, :class:`DistractorConfig`; both of the last
and the first for ``motion+distractor``): ``multipath:pathways=2``,
``motion:motion_weight=0.25,stable_frames=10``. :func:`check_strategy` validates such a text
without a model.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple, Union

from ...config import SAM2Config
from .base import MemoryStrategy
from .combined import MotionDistractorMemory, PerObjectMemory
from .default import DefaultMemory
from .distractor import DistractorConfig, DistractorMemory
from .motion import MotionConfig, MotionMemory
from .multipath import MultipathConfig, MultipathMemory
from .selection import MemoryPolicy

StrategyFactory = Callable[[SAM2Config], MemoryStrategy]
MemorySpec = Union[str, MemoryStrategy, Mapping[int, Union[str, MemoryStrategy]]]


class _Builtin(NamedTuple):
    """A built-in strategy: its settings classes, and how to build it from a policy and one
    instance of each of them (in order)."""

    settings: tuple[type, ...]
    build: Callable[..., MemoryStrategy]


_BUILTINS: dict[str, _Builtin] = {
    "default": _Builtin((), DefaultMemory),
    "motion": _Builtin((MotionConfig,), MotionMemory),
    "multipath": _Builtin((MultipathConfig,), MultipathMemory),
    "distractor": _Builtin((DistractorConfig,), DistractorMemory),
    "motion+distractor": _Builtin(
        (DistractorConfig, MotionConfig), lambda policy, d, m: MotionDistractorMemory(policy, d, motion=m)
    ),
}
_FACTORIES: dict[str, StrategyFactory] = {}  # registered by users


def register_strategy(name: str, factory: StrategyFactory) -> None:
    """Make a strategy available by name; ``factory(config)`` builds it for a model's config.
    Names are words, optionally joined by ``-``, ``_`` or ``+`` (for combinations)."""
    if not name or not name.replace("-", "").replace("_", "").replace("+", "").isalnum():
        raise ValueError(f"a strategy name must be a non-empty word, got {name!r}")
    if name in _BUILTINS or name in _FACTORIES:
        raise ValueError(f"a memory strategy named {name!r} is already registered")
    _FACTORIES[name] = factory


def strategy_names() -> list[str]:
    """The names ``make_strategy`` accepts (built-in names also take options, see the module)."""
    return sorted([*_BUILTINS, *_FACTORIES])


def strategy_options(name: str) -> dict[str, Any]:
    """A built-in strategy's options and their defaults (a registered one has none)."""
    builtin = _BUILTINS.get(name)
    if builtin is None:
        return {}
    return {k: v for cls in builtin.settings for k, v in _scalar_fields(cls).items()}


def _scalar_fields(cls: type) -> dict[str, Any]:
    """The fields of a settings dataclass a text can set (int, float, bool), with their defaults."""
    defaults = cls()
    return {
        f.name: getattr(defaults, f.name)
        for f in dataclasses.fields(cls)
        if isinstance(getattr(defaults, f.name), (bool, int, float))
    }


def _value(text: str, default: Any, key: str) -> Any:
    """An option's text as the type of its default."""
    if isinstance(default, bool):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"option {key}={text!r}: expected true or false")
    try:
        return int(text) if isinstance(default, int) else float(text)
    except ValueError:
        kind = "an integer" if isinstance(default, int) else "a number"
        raise ValueError(f"option {key}={text!r}: expected {kind}") from None


def parse_strategy(text: str) -> tuple[str, dict[str, str]]:
    """``"multipath:pathways=2,memory_iou=0.4"`` -> ``("multipath", {"pathways": "2", "memory_iou": "0.4"})``."""
    name, sep, rest = text.partition(":")
    name = name.strip()
    options: dict[str, str] = {}
    if sep and not rest.strip():
        raise ValueError(f"{text!r}: no options after ':' (expected NAME:key=value,...)")
    for item in rest.split(",") if rest.strip() else []:
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise ValueError(f"{text!r}: option {item.strip()!r} is not of the form key=value")
        if key in options:
            raise ValueError(f"{text!r}: option {key} given twice")
        options[key] = value
    return name, options


def _settings(name: str, builtin: _Builtin, options: dict[str, str]) -> list[Any]:
    """One settings instance per class of ``builtin``, with ``options`` applied (checked)."""
    known = strategy_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        listed = ", ".join(known) if known else "none"
        raise ValueError(f"strategy {name!r} has no option {unknown[0]} (its options: {listed})")
    out = []
    for cls in builtin.settings:
        fields = _scalar_fields(cls)
        values = {k: _value(v, fields[k], k) for k, v in options.items() if k in fields}
        out.append(cls(**values))  # the settings' own checks (ranges) raise ValueError
    return out


def _lookup(text: str) -> tuple[str, _Builtin | None, StrategyFactory | None, dict[str, str]]:
    name, options = parse_strategy(text)
    builtin, factory = _BUILTINS.get(name), _FACTORIES.get(name)
    if builtin is None and factory is None:
        raise ValueError(f"unknown memory strategy {name!r}; available: {', '.join(strategy_names())}")
    if factory is not None and options:
        raise ValueError(f"strategy {name!r} takes no options (it is registered by a factory)")
    return name, builtin, factory, options


def check_strategy(text: str) -> None:
    """Raise ValueError (naming what is wrong) unless ``text`` is a strategy name with valid options."""
    name, builtin, _, options = _lookup(text)
    if builtin is not None:
        _settings(name, builtin, options)


def _one(memory, config: SAM2Config) -> MemoryStrategy:
    if isinstance(memory, MemoryStrategy):
        return memory
    if not isinstance(memory, str):
        raise TypeError(f"memory must be a strategy name or a MemoryStrategy, got {type(memory).__name__}")
    name, builtin, factory, options = _lookup(memory)
    if builtin is None:
        return factory(config)
    return builtin.build(MemoryPolicy.from_config(config), *_settings(name, builtin, options))


def make_strategy(memory: MemorySpec, config: SAM2Config) -> MemoryStrategy:
    """A strategy object from a name with options (built for ``config``), the object itself, or
    a mapping ``{obj_id: name or strategy}`` (a :class:`PerObjectMemory`; unlisted objects:
    ``default``)."""
    if isinstance(memory, Mapping):
        return PerObjectMemory({k: _one(v, config) for k, v in memory.items()}, _one("default", config))
    return _one(memory, config)
