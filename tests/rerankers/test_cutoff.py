"""The adaptive cut-off (ragnest.rerankers.cutoff)."""

from __future__ import annotations

import pytest

from ragnest.rerankers.cutoff import apply_cutoff, keep_count, sigmoid
from ragnest.types import Chunk, Hit


def _hits(n: int) -> list[Hit]:
    return [Hit(chunk=Chunk(id=f"c{i}", document_id="d", kind="page"), score=1.0,
                scores_by_stage={"dense-fine": 0.5}) for i in range(n)]


def test_threshold_drops_candidates_below_it_within_min_and_max():
    probs = [0.9, 0.8, 0.7, 0.4, 0.2]
    assert keep_count(probs, calibrated=True, threshold=0.5, min_k=1, max_k=8) == 3
    assert keep_count(probs, calibrated=True, threshold=0.5, min_k=4, max_k=8) == 4
    assert keep_count(probs, calibrated=True, threshold=0.5, min_k=1, max_k=2) == 2
    assert keep_count([0.4, 0.2], calibrated=True, threshold=0.5, min_k=3, max_k=8) == 0


def test_uncalibrated_scores_cut_at_the_largest_gap():
    assert keep_count([5.0, 4.8, 1.0, 0.9], calibrated=False, threshold=0.5, min_k=1, max_k=8) == 2
    assert keep_count([5.0, 1.0, 0.9], calibrated=False, threshold=0.5, min_k=2, max_k=8) == 2
    assert keep_count([3.0], calibrated=False, threshold=0.5, min_k=1, max_k=8) == 1
    with pytest.raises(ValueError):
        keep_count([1.0], calibrated=False, threshold=0.5, min_k=3, max_k=2)


def test_apply_cutoff_orders_scores_and_keeps_stage_scores():
    kept = apply_cutoff(_hits(4), [0.1, 3.0, -2.0, 1.0],
                        probabilities=[sigmoid(s) for s in (0.1, 3.0, -2.0, 1.0)])
    assert [h.chunk.id for h in kept] == ["c1", "c3", "c0"]  # sigmoid(-2) < 0.5 is dropped
    assert kept[0].scores_by_stage["dense-fine"] == 0.5 and kept[0].scores_by_stage["rerank"] == 3.0
    assert kept[0].score == 3.0 and 0.95 < kept[0].scores_by_stage["rerank_probability"] < 0.96
    assert apply_cutoff(_hits(2), [-3.0, -4.0], probabilities=[0.05, 0.02]) == []
    assert len(apply_cutoff(_hits(3), [2.0, 1.9, -5.0])) == 2  # no probabilities: largest gap


def test_sigmoid_is_stable():
    assert sigmoid(1000.0) == 1.0 and sigmoid(-1000.0) == 0.0 and sigmoid(0.0) == 0.5
