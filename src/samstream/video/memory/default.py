"""The reference SAM 2 memory: the best candidate by predicted IoU, every frame in memory,
the conditioning frames plus the last ``num_maskmem - 1`` frames and the pointer window."""

from __future__ import annotations

from typing import Any, Container, Sequence

from .base import Candidates, Keep, MemoryStrategy
from .selection import MemoryPolicy, MemorySelection, select_memories


class DefaultMemory(MemoryStrategy):
    """Today's SAM 2 behaviour (in parity with the reference)."""

    name = "default"

    def __init__(self, policy: MemoryPolicy) -> None:
        self.policy = policy

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
        return select_memories(
            frame_idx,
            cond_frames=cond_frames,
            non_cond_frames=memory_frames,
            reverse=reverse,
            num_frames=num_frames,
            policy=self.policy,
        )

    def decide(self, frame_idx: int, proposals: Sequence[Candidates], state: Any) -> Sequence[Keep]:
        best = proposals[0]
        candidate = int(best.ious.argmax()) if best.num_candidates > 1 else 0
        return (Keep(parent=0, candidate=candidate),)

    def horizon(self) -> int:
        return self.policy.horizon()
