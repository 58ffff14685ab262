"""Memory strategies: the seam between the tracker and its memory bank.

``DefaultMemory`` is the reference behaviour; ``MotionMemory`` (SAMURAI), ``MultipathMemory``
(SAM2Long), ``DistractorMemory`` (DAM4SAM), ``MotionDistractorMemory`` and ``PerObjectMemory``
are the others built in; more plug in through :func:`register_strategy`.
"""

from .base import Candidates, Keep, MemoryStrategy
from .combined import MotionDistractorMemory, PerObjectMemory
from .default import DefaultMemory
from .distractor import DistractorConfig, DistractorMemory
from .filtering import Quality
from .motion import MotionConfig, MotionMemory
from .multipath import MultipathConfig, MultipathMemory
from .registry import check_strategy, make_strategy, parse_strategy, register_strategy, strategy_names, strategy_options
from .selection import MemoryPolicy, MemoryRef, MemorySelection, PointerRef, select_conditioning_frames, select_memories

__all__ = [
    "Candidates",
    "DefaultMemory",
    "DistractorConfig",
    "DistractorMemory",
    "Keep",
    "MemoryPolicy",
    "MemoryRef",
    "MemorySelection",
    "MemoryStrategy",
    "MotionConfig",
    "MotionDistractorMemory",
    "MotionMemory",
    "MultipathConfig",
    "MultipathMemory",
    "PerObjectMemory",
    "PointerRef",
    "Quality",
    "check_strategy",
    "make_strategy",
    "parse_strategy",
    "register_strategy",
    "select_conditioning_frames",
    "select_memories",
    "strategy_names",
    "strategy_options",
]
