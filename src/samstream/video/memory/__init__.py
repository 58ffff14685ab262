"""Memory strategies: the seam between the tracker and its memory bank.

``DefaultMemory`` is the reference behaviour; others plug in through :func:`register_strategy`.
"""

from .base import Candidates, Keep, MemoryStrategy
from .default import DefaultMemory
from .registry import make_strategy, register_strategy, strategy_names
from .selection import MemoryPolicy, MemoryRef, MemorySelection, PointerRef, select_conditioning_frames, select_memories

__all__ = [
    "Candidates",
    "DefaultMemory",
    "Keep",
    "MemoryPolicy",
    "MemoryRef",
    "MemorySelection",
    "MemoryStrategy",
    "PointerRef",
    "make_strategy",
    "register_strategy",
    "select_conditioning_frames",
    "select_memories",
    "strategy_names",
]
