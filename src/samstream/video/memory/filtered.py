"""The base of strategies whose bank keeps only good frames (``motion``, ``multipath``).

A subclass says which stored output may serve as a memory (:meth:`FilteredMemory.memory_ok`,
from the output's note) and whether its pointers come from those frames too
(``eligible_pointers``); selection, horizon and what streaming must keep follow from
:mod:`.filtering`.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Callable, Container, Sequence

from .base import MemoryStrategy
from .filtering import note_of, retained_eligible, select_filtered_memories
from .selection import MemorySelection


class FilteredMemory(MemoryStrategy):
    eligible_pointers: bool = False  # pointers from the eligible frames too (SAM2Long), or as the reference

    @abstractmethod
    def memory_ok(self, note: Any) -> bool:
        """Whether a stored output with this note (None: no note) may be attended to."""

    def _eligible(self, memory_frames) -> Callable[[int], bool]:
        return lambda t: self.memory_ok(note_of(memory_frames, t))

    def select_memories(
        self,
        frame_idx: int,
        *,
        cond_frames: Sequence[int],
        memory_frames: Container[int],
        reverse: bool,
        num_frames: int | None,
        state: Any,
    ) -> MemorySelection:
        return select_filtered_memories(
            frame_idx,
            cond_frames=cond_frames,
            memory_frames=memory_frames,
            eligible=self._eligible(memory_frames),
            reverse=reverse,
            num_frames=num_frames,
            policy=self.policy,
            eligible_pointers=self.eligible_pointers,
        )

    def retained_frames(self, frame_idx: int, *, memory_frames, reverse: bool, state: Any) -> set[int]:
        count = self.policy.num_maskmem - 1
        if self.eligible_pointers and self.policy.use_obj_ptrs:
            count = max(count, self.policy.max_obj_ptrs - 1)
        return retained_eligible(
            frame_idx, memory_frames=memory_frames, eligible=self._eligible(memory_frames), reverse=reverse, count=count
        )
