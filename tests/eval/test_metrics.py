"""Every metric against values computed by hand on rankings known in advance."""

from __future__ import annotations

import math

import pytest

from ragnest.errors import ConfigError
from ragnest.eval import (
    answer_scores,
    exact_match,
    iou,
    mean_answer_scores,
    percentiles,
    ranking_metrics,
    ranking_run,
    token_f1,
)
from ragnest.eval.metrics import max_cutoff, parse_measures
from ragnest.types import Answer, Citation

# Three queries with known rankings (best first) and graded qrels.
QRELS = {
    "q1": {"a": 1, "b": 2},        # two relevant, graded
    "q2": {"c": 1},                # one relevant, found at rank 3
    "q3": {"d": 1, "e": 1},        # nothing retrieved
}
RANKED = {
    "q1": ["a", "x", "b", "y"],
    "q2": ["x", "y", "c", "c"],    # a repeated unit keeps its first rank
    "q3": [],
}


def log2(n: float) -> float:
    return math.log(n, 2)


def hand() -> dict[str, dict[str, float]]:
    """The same measures computed by hand (trec_eval's definitions: linear gains)."""
    # q1: a (gain 1) at rank 1, b (gain 2) at rank 3
    dcg1 = 1 / log2(2) + 2 / log2(4)
    idcg1 = 2 / log2(2) + 1 / log2(3)
    # q2: c (gain 1) at rank 3
    dcg2, idcg2 = 1 / log2(4), 1.0
    return {
        "q1": {"nDCG@3": dcg1 / idcg1, "nDCG@1": 1 / 2, "R@1": 1 / 2, "R@2": 1 / 2, "R@3": 1.0,
               "RR": 1.0, "AP": (1 / 1 + 2 / 3) / 2, "P@2": 1 / 2},
        "q2": {"nDCG@3": dcg2 / idcg2, "nDCG@1": 0.0, "R@1": 0.0, "R@2": 0.0, "R@3": 1.0,
               "RR": 1 / 3, "AP": 1 / 3, "P@2": 0.0},
        "q3": dict.fromkeys(("nDCG@3", "nDCG@1", "R@1", "R@2", "R@3", "RR", "AP", "P@2"), 0.0),
    }


MEASURES = ["nDCG@3", "nDCG@1", "R@1", "R@2", "R@3", "RR", "AP", "P@2"]


def test_every_ranking_metric_equals_the_hand_computed_value():
    mean, per_query = ranking_metrics(QRELS, ranking_run(RANKED), MEASURES)
    expected = hand()
    for qid in QRELS:
        for m in MEASURES:
            assert per_query[qid][m] == pytest.approx(expected[qid][m], abs=1e-9), (qid, m)
    for m in MEASURES:
        assert mean[m] == pytest.approx(sum(expected[q][m] for q in QRELS) / 3, abs=1e-9), m


def test_rank_cutoffs_and_mrr_at_k():
    mean, per_query = ranking_metrics(QRELS, ranking_run(RANKED), ["RR@2", "RR@3", "AP@2"])
    assert per_query["q2"]["RR@2"] == 0.0 and per_query["q2"]["RR@3"] == pytest.approx(1 / 3)
    assert per_query["q1"]["AP@2"] == pytest.approx((1 / 1) / 2)  # only a within the top 2
    assert mean["RR@3"] == pytest.approx((1 + 1 / 3 + 0) / 3)


def test_run_scores_keep_rank_order_even_for_ids_that_sort_the_other_way():
    # pytrec_eval breaks score ties by id; strictly decreasing scores keep the ranking
    run = ranking_run({"q": ["z", "a"]})
    assert run["q"]["z"] > run["q"]["a"]
    _, per_query = ranking_metrics({"q": {"z": 1}}, run, ["RR"])
    assert per_query["q"]["RR"] == 1.0


def test_unknown_measure_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown measure 'nDGC@10'"):
        parse_measures(["nDGC@10"])
    assert max_cutoff(["RR", "R@100", "nDCG@5"]) == 100 and max_cutoff(["RR"]) == 10


def test_latency_percentiles_by_hand():
    values = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]
    p = percentiles(values)
    # p50 at position 4.5 between 50 and 60; p95 at 8.55 between 90 and 100
    assert p["p50"] == pytest.approx(55.0) and p["p95"] == pytest.approx(95.5)
    assert math.isnan(percentiles([])["p50"])


def test_answer_text_metrics_by_hand():
    assert exact_match("The Red  valve!", ["red valve"]) == 1.0
    assert exact_match("red valve now", ["red valve"]) == 0.0
    # prediction tokens: red, valve, now (3); gold: red, valve (2); common 2
    assert token_f1("red valve now", ["red valve", "blue"]) == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert token_f1("", ["x"]) == 0.0


def test_iou_by_hand():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0


def _cite(page, bbox=None, source="/docs/m.pdf"):
    return Citation(chunk_id="c", document_id="d", source=source, page=page, bbox=bbox)


def unit(source, page):
    return f"m.pdf#p{page}"


def test_citation_accuracy_region_iou_and_abstention_by_hand():
    gold = {"m.pdf#p2": 1}
    boxes = {"m.pdf#p2": [(0, 0, 100, 100), (200, 200, 300, 300)]}
    answer = Answer(text="The valve is red.", citations=(
        _cite(2, (0, 0, 100, 50)),        # IoU 0.5 with the first gold box
        _cite(2, (200, 200, 300, 300)),   # IoU 1 with the second
        _cite(3, (0, 0, 10, 10)),         # wrong page: no IoU (no gold box there)
        _cite(2),                          # right page, no region
    ))
    row = answer_scores(answer, gold=gold, unit=unit, boxes=boxes, answers=["the valve is red"])
    assert row["citation_accuracy"] == pytest.approx(3 / 4)
    assert row["region_iou"] == pytest.approx((0.5 + 1.0) / 2)
    assert row["region_hit"] == 1.0
    assert row["exact_match"] == 1.0 and row["token_f1"] == 1.0 and row["abstained"] == 0.0

    abstained = answer_scores(Answer(text="The documents do not say.", found=False), gold=gold,
                              unit=unit, boxes=boxes, answers=["red"])
    assert abstained == {"abstained": 1.0, "exact_match": 0.0, "token_f1": 0.0}
    means = mean_answer_scores([row, abstained])
    assert means["abstained"] == 0.5 and means["citation_accuracy"] == pytest.approx(3 / 4)
    assert means["exact_match"] == 0.5 and means["n_citation_accuracy"] == 1
