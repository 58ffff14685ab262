"""The reference SAM 2 memory: the best candidate by predicted IoU, every frame in memory,
the conditioning frames plus the last ``num_maskmem - 1`` frames and the pointer window."""

from __future__ import annotations

from typing import Any, Sequence

from .base import Candidates, Keep, MemoryStrategy
from .selection import MemoryPolicy


class DefaultMemory(MemoryStrategy):
    """Today's SAM 2 behaviour (in parity with the reference): the memories and horizon of
    :class:`MemoryStrategy` (the reference's rule under ``policy``), the best candidate."""

    name = "default"

    def __init__(self, policy: MemoryPolicy) -> None:
        self.policy = policy

    def decide(self, frame_idx: int, proposals: Sequence[Candidates], state: Any) -> Sequence[Keep]:
        best = proposals[0]
        candidate = int(best.ious.argmax()) if best.num_candidates > 1 else 0
        return (Keep(parent=0, candidate=candidate),)
