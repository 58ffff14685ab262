"""``multipath``: several memory pathways per object, after SAM2Long (Ding et al., 2024).

Each object keeps K pathways (hypotheses), each with its own memory bank. On every frame
each pathway's multimask candidates (3 per pathway) score the pathway's running sum plus
``log(predicted IoU)``; the candidates are pruned back to K:

- when the object score is certain (``|logit| > certainty`` on some pathway), the K best (or
  the ``certain_pathways`` best: with 1, a single pathway while the object is certain and K
  again once it is not, for most of the gain at a fraction of the cost; 0, SAM2Long's K);
- otherwise K with distinct predicted IoUs (rounded to ``iou_decimals``, signed by presence)
  so that the pathways stay diverse, topped up with the best candidate of each pathway not
  kept yet.

A pathway's memory keeps the adjacent frame and only the frames where the object is present
with a predicted IoU > ``memory_iou`` (object pointers from the same frames). Unlike SAM2Long,
which gives masks once the whole video is done, the output on each frame is the current best
pathway's, as soon as it is tracked, or with ``VideoPredictorOptions(output_lag=N)`` frame t
once frame t + N has been seen, along the best pathway then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

from .base import Candidates, Keep
from .filtered import FilteredMemory
from .filtering import Quality
from .selection import MemoryPolicy

_LOG_EPS = 1e-5  # log(IoU + eps): an IoU of 0 gives a large penalty, not -inf


@dataclass(frozen=True)
class MultipathConfig:
    """SAM2Long's settings: pathways K, the certainty of the object score, the memory's IoU
    threshold; ``certain_pathways``: the pathways kept while the object is certain (0: K)."""

    pathways: int = 3
    certainty: float = 2.0
    memory_iou: float = 0.3
    iou_decimals: int = 2
    certain_pathways: int = 0

    def __post_init__(self) -> None:
        if self.pathways < 1:
            raise ValueError(f"pathways must be >= 1, got {self.pathways}")
        if self.iou_decimals < 0:
            raise ValueError(f"iou_decimals must be >= 0, got {self.iou_decimals}")
        if not 0 <= self.certain_pathways <= self.pathways:
            raise ValueError(f"certain_pathways must be in 0..pathways ({self.pathways}), got {self.certain_pathways}")

    def kept(self, certain: bool) -> int:
        """How many pathways pruning keeps."""
        return self.certain_pathways if certain and self.certain_pathways else self.pathways


class PathCandidate(NamedTuple):
    """One candidate of one pathway: its cumulative score, predicted IoU and whether the
    object is judged present (object score logit > 0)."""

    parent: int
    candidate: int
    score: float
    iou: float
    present: bool


def path_score(prior: float, iou: float) -> float:
    """The running score of a pathway extended by a candidate of predicted IoU ``iou``."""
    return prior + math.log(max(iou, 0.0) + _LOG_EPS)


def prune_pathways(cands: Sequence[PathCandidate], k: int, *, certain: bool, iou_decimals: int = 2) -> list[int]:
    """Indices of the candidates kept (at most ``k``), the first the best-scoring.

    certain: the K highest scores. Otherwise, by decreasing score, candidates whose rounded
    signed IoU (negative when the object is absent) is not taken yet; if fewer than K, the
    best candidate of each pathway not represented, in pathway order.
    """
    order = sorted(range(len(cands)), key=lambda i: -cands[i].score)  # stable for ties
    if certain:
        return order[:k]
    kept: list[int] = []
    seen: set[float] = set()
    for i in order:
        c = cands[i]
        key = round(c.iou if c.present else -c.iou, iou_decimals)
        if key not in seen:
            kept.append(i)
            seen.add(key)
        if len(kept) == k:
            return kept
    represented = {cands[i].parent for i in kept}
    for parent in sorted({c.parent for c in cands} - represented):
        if len(kept) == k:
            break
        kept.append(next(i for i in order if cands[i].parent == parent))
    return kept


def path_memory_ok(quality: Quality | None, config: MultipathConfig) -> bool:
    """Whether a pathway's frame may be attended to beyond the adjacent one (prompted outputs: yes)."""
    if quality is None:
        return True
    return quality.object_score > 0 and quality.iou > config.memory_iou


class MultipathMemory(FilteredMemory):
    """K memory pathways per object; the output follows the best one."""

    name = "multipath"
    eligible_pointers = True

    def __init__(self, policy: MemoryPolicy, config: MultipathConfig | None = None) -> None:
        self.policy = policy
        self.config = config or MultipathConfig()

    def memory_ok(self, note: Any) -> bool:
        return path_memory_ok(note, self.config)

    def decide(self, frame_idx: int, proposals: Sequence[Candidates], state: Any) -> Sequence[Keep]:
        cands: list[PathCandidate] = []
        logits: list[float] = []
        for h, proposal in enumerate(proposals):
            logit = float(proposal.object_score_logit)
            logits.append(logit)
            for j, iou in enumerate(proposal.ious.float().cpu().tolist()):
                cands.append(PathCandidate(h, j, path_score(proposal.prior_score, iou), iou, logit > 0))
        certain = max(abs(x) for x in logits) > self.config.certainty
        kept = prune_pathways(cands, self.config.kept(certain), certain=certain, iou_decimals=self.config.iou_decimals)
        return [
            Keep(parent=cands[i].parent, candidate=cands[i].candidate, score=cands[i].score,
                 note=Quality(cands[i].iou, logits[cands[i].parent]))
            for i in kept
        ]

