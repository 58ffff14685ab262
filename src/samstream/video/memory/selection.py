"""Which memories a frame attends to: the torch-free rule of :mod:`samstream.memory_selection`,
under its name in the memory-strategy package."""

from ...memory_selection import (
    MemoryPolicy,
    MemoryRef,
    MemorySelection,
    PointerRef,
    select_conditioning_frames,
    select_memories,
)

__all__ = ["MemoryPolicy", "MemoryRef", "MemorySelection", "PointerRef", "select_conditioning_frames", "select_memories"]
