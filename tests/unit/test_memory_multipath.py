"""The multipath strategy's rules (SAM2Long): pathway scores and pruning, without a model."""

from __future__ import annotations

import math

import pytest
import torch

from samstream.video.memory import Candidates, MemoryPolicy, MultipathConfig, MultipathMemory
from samstream.video.memory.filtering import Quality
from samstream.video.memory.multipath import PathCandidate, path_memory_ok, path_score, prune_pathways


def test_path_score_is_a_running_log_iou():
    assert path_score(0.0, 0.5) == pytest.approx(math.log(0.5 + 1e-5))
    assert path_score(-1.0, 1.0) == pytest.approx(-1.0 + math.log(1.0 + 1e-5))
    assert path_score(0.0, 0.0) == pytest.approx(math.log(1e-5))  # no -inf
    assert path_score(0.0, -0.2) == pytest.approx(math.log(1e-5))  # unbounded heads' IoUs clamp at 0


def _cands(rows):
    return [PathCandidate(p, c, s, iou, present) for p, c, s, iou, present in rows]


def test_certain_object_keeps_the_best_scores():
    cands = _cands([(0, 0, -0.1, 0.9, True), (0, 1, -0.5, 0.9, True), (1, 0, -0.2, 0.8, True), (1, 1, -3.0, 0.1, True)])
    assert prune_pathways(cands, 3, certain=True) == [0, 2, 1]
    assert prune_pathways(cands, 2, certain=True) == [0, 2]


def test_uncertain_object_keeps_distinct_ious():
    cands = _cands(
        [
            (0, 0, -0.10, 0.901, True),
            (0, 1, -0.11, 0.899, True),  # rounds to 0.90 too: skipped
            (0, 2, -0.30, 0.70, True),
            (1, 0, -0.40, 0.70, False),  # absent: -0.70 differs from 0.70, kept
            (1, 1, -0.50, 0.20, True),
        ]
    )
    assert prune_pathways(cands, 3, certain=False) == [0, 2, 3]
    assert prune_pathways(cands, 3, certain=False, iou_decimals=3) == [0, 1, 2]


def test_uncertain_object_tops_up_with_unrepresented_pathways():
    # every candidate has the same IoU: one distinct value only, then the best of each other pathway
    cands = _cands([(0, 0, -0.1, 0.5, True), (0, 1, -0.2, 0.5, True), (1, 0, -0.3, 0.5, True), (2, 0, -0.9, 0.5, True), (2, 1, -0.4, 0.5, True)])
    assert prune_pathways(cands, 3, certain=False) == [0, 2, 4]
    assert prune_pathways(cands, 2, certain=False) == [0, 2]


@pytest.mark.parametrize(
    "quality, ok",
    [(None, True), (Quality(0.31, 0.5), True), (Quality(0.3, 0.5), False), (Quality(0.9, 0.0), False), (Quality(0.9, -3.0), False)],
)
def test_pathway_memory_rule(quality, ok):
    assert path_memory_ok(quality, MultipathConfig()) is ok


def _proposal(ious, logit, prior):
    m = len(ious)
    return Candidates(
        low_res_masks=torch.zeros(m, 4, 4), ious=torch.tensor(ious), obj_ptrs=torch.zeros(m, 2),
        object_score_logit=torch.tensor(logit), prior_score=prior,
    )


def test_decide_extends_and_prunes_pathways():
    strategy = MultipathMemory(MemoryPolicy(), MultipathConfig(pathways=2))
    # first tracked frame: one pathway, three candidates, certain
    keeps = strategy.decide(1, [_proposal([0.5, 0.9, 0.7], 5.0, 0.0)], None)
    assert [(k.parent, k.candidate) for k in keeps] == [(0, 1), (0, 2)]
    assert [k.score for k in keeps] == pytest.approx([math.log(0.9 + 1e-5), math.log(0.7 + 1e-5)])
    assert keeps[0].note == Quality(pytest.approx(0.9), 5.0)
    # two pathways: pathway 1's prior is better, so its best candidate leads even with a lower IoU
    keeps = strategy.decide(2, [_proposal([0.6, 0.9, 0.5], 3.0, -2.0), _proposal([0.8, 0.1, 0.1], 3.0, -0.1)], None)
    assert [(k.parent, k.candidate) for k in keeps] == [(1, 0), (0, 1)]
    assert keeps[0].score == pytest.approx(-0.1 + math.log(0.8 + 1e-5))
    # uncertain (|logit| <= 2 on every pathway): diversity
    keeps = strategy.decide(3, [_proposal([0.9, 0.9, 0.3], 1.0, 0.0), _proposal([0.9, 0.2, 0.1], -1.5, -0.01)], None)
    assert [(k.parent, k.candidate) for k in keeps] == [(0, 0), (1, 0)]  # (0, 1) repeats 0.90; (1, 0) is -0.90


def test_certain_pathways_collapses_while_certain_and_branches_when_not():
    strategy = MultipathMemory(MemoryPolicy(), MultipathConfig(pathways=3, certain_pathways=1))
    keeps = strategy.decide(1, [_proposal([0.5, 0.9, 0.7], 5.0, 0.0)], None)  # certain: the best only
    assert [(k.parent, k.candidate) for k in keeps] == [(0, 1)]
    keeps = strategy.decide(2, [_proposal([0.5, 0.9, 0.7], -4.0, -0.1)], None)  # certainly absent: still one
    assert [(k.parent, k.candidate) for k in keeps] == [(0, 1)]
    keeps = strategy.decide(3, [_proposal([0.5, 0.9, 0.7], 0.5, -0.2)], None)  # uncertain: three distinct IoUs
    assert [(k.parent, k.candidate) for k in keeps] == [(0, 1), (0, 2), (0, 0)]
    assert MultipathConfig(pathways=3).kept(True) == MultipathConfig(pathways=3).kept(False) == 3  # SAM2Long
    assert MultipathConfig(pathways=3, certain_pathways=2).kept(True) == 2
    with pytest.raises(ValueError, match="certain_pathways must be in 0..pathways \\(2\\), got 3"):
        MultipathConfig(pathways=2, certain_pathways=3)
