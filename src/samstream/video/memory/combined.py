"""Strategies made of others: ``motion+distractor``, and a strategy chosen per object.

``motion+distractor``: the motion filter chooses the candidate (:mod:`.motion`), the bank is
the distractor-aware one (:mod:`.distractor`), and its recent-appearance frames must also
pass the motion strategy's quality test.

:class:`PerObjectMemory` gives each object its own strategy (``memory={1: "motion", 2:
"multipath"}`` in :class:`~samstream.video.predictor.VideoPredictor`; other objects get the
fallback). Each object's state is its own strategy's; objects whose selections agree are
still batched together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Container, Mapping, NamedTuple, Sequence

from .base import Candidates, Keep, MemoryStrategy
from .distractor import DistractorConfig, DistractorMemory, DistractorState, output_visible
from .filtering import Quality, note_of
from .motion import MotionConfig, MotionState, choose_with_motion, motion_memory_ok
from .selection import MemoryPolicy, MemorySelection


@dataclass
class MotionDistractorState(DistractorState):
    """The distractor bank's state plus the object's motion filter."""

    motion: MotionState = field(default_factory=MotionState)


class MotionDistractorMemory(DistractorMemory):
    """Candidates chosen with the motion filter; a distractor-aware bank of good frames."""

    name = "motion+distractor"

    def __init__(
        self, policy: MemoryPolicy, config: DistractorConfig | None = None, motion: MotionConfig | None = None
    ) -> None:
        super().__init__(policy, config)
        self.motion = motion or MotionConfig()

    def new_object_state(self, obj_id: int) -> MotionDistractorState:
        base = super().new_object_state(obj_id)
        return MotionDistractorState(areas=base.areas)

    def on_prompt(self, frame_idx: int, state: MotionDistractorState) -> None:
        state.motion = MotionState()

    def _choose(self, frame_idx: int, cand: Candidates, state: MotionDistractorState) -> tuple[int, Quality]:
        return choose_with_motion(frame_idx, cand, state.motion, self.motion)

    def _ram_ok(self, memory_frames) -> Callable[[int], bool]:
        return lambda t: output_visible(memory_frames, t) and motion_memory_ok(note_of(memory_frames, t), self.motion)


class _Chosen(NamedTuple):
    """An object's strategy and that strategy's state for the object."""

    strategy: MemoryStrategy
    state: Any


class PerObjectMemory(MemoryStrategy):
    """Each object tracked with its own strategy: ``strategies`` by object id, else ``fallback``."""

    name = "per-object"

    def __init__(self, strategies: Mapping[int, MemoryStrategy], fallback: MemoryStrategy) -> None:
        for obj_id, strategy in strategies.items():
            if isinstance(obj_id, bool) or not isinstance(obj_id, int):
                raise TypeError(f"memory: object ids must be integers, got {obj_id!r}")
            if not isinstance(strategy, MemoryStrategy):
                raise TypeError(f"memory for object {obj_id}: expected a MemoryStrategy, got {type(strategy).__name__}")
        self.strategies = dict(strategies)
        self.fallback = fallback
        self.policy = getattr(fallback, "policy", None)

    def strategy_for(self, obj_id: int) -> MemoryStrategy:
        return self.strategies.get(obj_id, self.fallback)

    def new_object_state(self, obj_id: int) -> _Chosen:
        strategy = self.strategy_for(obj_id)
        return _Chosen(strategy, strategy.new_object_state(obj_id))

    def select_memories(
        self,
        frame_idx: int,
        *,
        cond_frames: Sequence[int],
        memory_frames: Container[int],
        reverse: bool,
        num_frames: int | None,
        state: _Chosen,
    ) -> MemorySelection:
        return state.strategy.select_memories(
            frame_idx, cond_frames=cond_frames, memory_frames=memory_frames, reverse=reverse,
            num_frames=num_frames, state=state.state,
        )

    def decide(self, frame_idx: int, proposals: Sequence[Candidates], state: _Chosen) -> Sequence[Keep]:
        return state.strategy.decide(frame_idx, proposals, state.state)

    def horizon(self) -> int:
        return max(s.horizon() for s in [self.fallback, *self.strategies.values()])

    def retained_frames(self, frame_idx: int, *, memory_frames, reverse: bool, state: _Chosen) -> Collection[int]:
        return state.strategy.retained_frames(frame_idx, memory_frames=memory_frames, reverse=reverse, state=state.state)

    def on_prompt(self, frame_idx: int, state: _Chosen) -> None:
        state.strategy.on_prompt(frame_idx, state.state)
