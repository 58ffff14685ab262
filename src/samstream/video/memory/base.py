"""The memory-strategy seam: what a tracker decides per object on every tracked frame.

A strategy chooses which of the heads' mask candidates becomes the output, whether that
output enters the memory bank, which memories and object pointers a frame attends to, and
how far back outputs must be kept. It holds no per-object state itself: whatever it needs
per object (a motion filter, scores of several hypotheses) lives in the object's track, in
``ObjectTrack.memory_state`` and ``ObjectTrack.hypotheses``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Collection, Container, Sequence

import torch

from .selection import MemoryPolicy, MemorySelection, select_memories

if TYPE_CHECKING:
    from ..state import MemoryFrames


@dataclass(frozen=True)
class Candidates:
    """What the heads proposed for one object along one hypothesis on a tracked frame.

    low_res_masks [M, s, s] logits (s = S/4); ious [M] predicted IoUs; obj_ptrs [M, C] the
    object pointer each candidate would give; object_score_logit [] (shared by the candidates,
    > 0 means present); prior_score: the hypothesis' score so far.
    """

    low_res_masks: torch.Tensor
    ious: torch.Tensor
    obj_ptrs: torch.Tensor
    object_score_logit: torch.Tensor
    prior_score: float = 0.0

    @property
    def num_candidates(self) -> int:
        return int(self.ious.shape[0])


@dataclass(frozen=True)
class Keep:
    """One hypothesis kept after a frame: ``candidate`` of hypothesis ``parent``'s proposals.

    ``score`` becomes the new hypothesis' score; ``in_memory`` says whether this output enters
    its memory bank (spatial memory and object pointer); ``note`` is stored with the output
    (``FrameOutput.note``) for the strategy's later selections to read.
    """

    parent: int
    candidate: int
    score: float = 0.0
    in_memory: bool = True
    note: Any = None


class MemoryStrategy(ABC):
    """How a tracker uses its memory. Subclasses are registered by name in :mod:`.registry`.

    A subclass must :meth:`decide`; where it keeps the reference's choice of memories and
    its horizon it need only set ``policy`` (the defaults of :meth:`select_memories` and
    :meth:`horizon` read it), otherwise it overrides them."""

    name: str = ""
    policy: MemoryPolicy

    def new_object_state(self, obj_id: int) -> Any:
        """Per-object state kept in the object's track (None when the strategy needs none)."""
        return None

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
        """The memories and pointers one hypothesis of an object attends to on ``frame_idx``.

        cond_frames: the object's conditioning frames in insertion order; memory_frames: the
        hypothesis' tracked frames whose outputs are in memory (a
        :class:`~samstream.video.state.MemoryFrames`: membership, outputs and their notes).
        By default the reference's rule (:func:`~.selection.select_memories`) under ``policy``.
        """
        return select_memories(
            frame_idx,
            cond_frames=cond_frames,
            non_cond_frames=memory_frames,
            reverse=reverse,
            num_frames=num_frames,
            policy=self._policy(),
        )

    @abstractmethod
    def decide(self, frame_idx: int, proposals: Sequence[Candidates], state: Any) -> Sequence[Keep]:
        """Given one :class:`Candidates` per current hypothesis, the hypotheses to keep; the
        first one is the object's output on this frame. At least one must be kept."""

    def horizon(self) -> int:
        """How many frames back (in the tracking direction) a later frame may still attend to:
        the streaming tracker drops older tracked outputs. By default ``policy``'s."""
        return self._policy().horizon()

    def _policy(self) -> MemoryPolicy:
        policy = getattr(self, "policy", None)
        if policy is None:
            raise TypeError(
                f"memory strategy {type(self).__name__} sets no policy: set self.policy, "
                "or override select_memories and horizon"
            )
        return policy

    def retained_frames(
        self, frame_idx: int, *, memory_frames: "MemoryFrames", reverse: bool, state: Any
    ) -> Collection[int]:
        """Frames older than :meth:`horizon` that a later frame may still attend to (a bounded
        number: the streaming tracker keeps them). ``frame_idx`` is the frame just tracked."""
        return ()

    def on_prompt(self, frame_idx: int, state: Any) -> None:
        """Called when the object gets a prompt (a click, box or mask) on ``frame_idx``, at any
        time: a correction. Strategies with per-object state (a motion filter) adjust it here."""
