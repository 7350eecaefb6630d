"""The Python API: evaluate() and Evaluator on a real store, sweeps (levels, budgets,
rerank depth), eval sets made from documents, and the notebook view."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from ragnest import Pipeline
from ragnest.errors import ConfigError
from ragnest.eval import (
    Evaluator,
    crop_set,
    evaluate,
    generated_set,
    known_item_set,
    load_pdf_folder,
    parse_sweeps,
)
from ragnest.eval.sweep import restrict_levels
from ragnest.parsers.pdf import PdfParser
from ragnest.retrieval import QueryPlanner
from ragnest.types import Source
from tests._openai_server import FakeServer, user_texts
from tests.eval._fixtures import make_pdf_folder

ROOT = Path(__file__).resolve().parents[2]
HANDBOOK = ROOT / "examples" / "docs" / "nimbus3_handbook.pdf"


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    store = tmp_path_factory.mktemp("eval-store")
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}) as rag:
        yield rag


def hand_rr(ranked, gold):
    return next((1 / (i + 1) for i, u in enumerate(ranked) if u in gold), 0.0)


def hand_ndcg(ranked, gold, k):
    dcg = sum(gold.get(u, 0) / math.log2(i + 2) for i, u in enumerate(ranked[:k]))
    ideal = sorted(gold.values(), reverse=True)[:k]
    return dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))


def test_metrics_of_a_real_run_equal_hand_computed_values_on_its_rankings(lite, tmp_path):
    ds = known_item_set([HANDBOOK, ROOT / "examples" / "docs" / "lab_safety_guide.pdf"], 12)
    evaluator = Evaluator(lite, ds, measures=["nDCG@5", "R@1", "R@5", "RR"], k=5)
    results = evaluator.run(parse_sweeps(["using=bm25,dense"]), progress=False)
    for row in results.rows:
        detail = results.per_query[row["setting"]]
        hand = {"nDCG@5": [], "R@1": [], "R@5": [], "RR": []}
        for q in ds.queries:
            ranked, gold = detail[q.id]["ranked"], ds.qrels[q.id]
            assert len(ranked) == len(set(ranked)) <= 5
            hand["nDCG@5"].append(hand_ndcg(ranked, gold, 5))
            hand["R@1"].append(float(ranked[:1] == list(gold)))
            hand["R@5"].append(float(any(u in gold for u in ranked[:5])))
            hand["RR"].append(hand_rr(ranked, gold))
        for m, values in hand.items():
            assert row[m] == pytest.approx(sum(values) / len(values)), (row["setting"], m)
    assert results.rows[0]["vectors"] == ["bm25-sparse"]


def test_levels_restrict_the_funnel_and_bm25_stays(lite):
    lite.open()
    full = QueryPlanner(lite.embedders).plan("descale the machine")
    part = QueryPlanner(restrict_levels(lite.embedders, ["coarse", "mid"])).plan("descale the machine")
    stages = {r.name: [s.vector for s in r.stages] for r in part.routes}
    assert stages["dense"] == ["dense-coarse", "dense-mid"]
    assert stages["bm25"] == ["bm25-sparse"]
    assert len(next(r for r in full.routes if r.name == "dense").stages) == 3
    with pytest.raises(ConfigError, match="unknown level 'coarce'"):
        restrict_levels(lite.embedders, ["coarce"])


def test_sweep_spec_errors():
    with pytest.raises(ConfigError, match="unknown key"):
        parse_sweeps(["depth=1,2"])
    with pytest.raises(ConfigError, match="is not an integer"):
        parse_sweeps(["budget.coarse=many"])
    with pytest.raises(ConfigError, match="write STAGE:LIMIT"):
        parse_sweeps(["budgets=coarse"])
    with pytest.raises(ConfigError, match="'magic' is not one of rrf, dbsf, relative"):
        parse_sweeps(["fusion=magic"])
    s, = parse_sweeps(["budgets=coarse:10+mid:5"])
    assert dict(s.budgets) == {"coarse": 10, "mid": 5}
    s, = parse_sweeps(["weight.bm25=3", "retrieval.rerank_k=20", "rerank.max_k=2"])
    assert s.retrieval == {"weights": {"bm25": 3.0}, "rerank_k": 20} and s.rerank == {"max_k": 2}


def test_evaluate_html_view_and_answers_on_a_pdf_folder(lite, tmp_path):
    ds = load_pdf_folder(make_pdf_folder(tmp_path / "pdfs"))
    results = evaluate(lite, ds, sweep=["budget.coarse=5,100"], measures=["nDCG@3", "R@3"],
                       progress=False)
    assert [r["setting"] for r in results.rows] == ["budget.coarse=5", "budget.coarse=100"]
    assert all("answers" in r for r in results.rows)  # gold answers and boxes exist
    html = results._repr_html_()
    assert html.count("<tr>") == 1 + len(results.rows) and "budget.coarse=100" in html
    assert len(re.findall(r"<img src='data:image/png;base64,", html)) == 2
    assert results.table().row_count == 2


def test_known_item_queries_come_from_their_page():
    ds = known_item_set([HANDBOOK], 8, seed=3)
    again = known_item_set([HANDBOOK], 8, seed=3)
    assert [q.text for q in ds.queries] == [q.text for q in again.queries]
    pages = {c.page: [w for w in c.text.split() if any(ch.isalnum() for ch in w)]
             for c in PdfParser().parse(Source.from_path(HANDBOOK))}
    for q in ds.queries:
        (unit,) = ds.qrels[q.id]
        words = pages[int(unit.rsplit("#p", 1)[1])]
        query_words = q.text.split()
        assert 10 <= len(query_words) <= 11  # 14 words, 3 or 4 dropped
        # the query's words appear in this order within a 14-word window of the page
        assert any(_in_order(query_words, words[i:i + 14]) for i in range(len(words) - 13))


def _in_order(needle, hay):
    it = iter(hay)
    return all(any(w == h for h in it) for w in needle)


def test_crop_queries_find_their_page_through_ocr(lite):
    ds = crop_set([HANDBOOK], 3, min_side=40)
    assert ds.queries and all(q.image is not None and q.image.clip for q in ds.queries)
    assert all(q.boxes[0].unit == next(iter(ds.qrels[q.id])) for q in ds.queries)
    results = Evaluator(lite, ds, measures=["R@5"], k=5, answers=False).run(progress=False)
    assert results.rows[0]["R@5"] > 0 and "ocr" in results.rows[0]["latency_ms"]


def test_rerank_depth_sweep_and_generated_questions(tmp_path):
    pipeline = ROOT / "pipelines" / "openai.yaml"

    def answer(body):
        asks = " ".join(user_texts(body))
        return "How often should the machine be descaled?" if "Write one question" in asks \
            else "Descale it every 8 weeks [P1]."

    with FakeServer("vllm", relevance=lambda body: 0.9, answer=answer) as server:
        env = {"RAGNEST_STORE": str(tmp_path / "store"), "RAGNEST_OPENAI_BASE_URL": server.url,
               "RAGNEST_OPENAI_MODEL": server.model}
        with Pipeline.from_yaml(pipeline, env=env) as rag:
            ds = generated_set([HANDBOOK], 2, rag.generator)
            assert [q.text for q in ds.queries] == ["How often should the machine be descaled?"] * 2
            results = evaluate(rag, ds, sweep=["rerank.max_k=1,3"], measures=["R@5"],
                               answers=False, progress=False)
            assert rag.reranker.max_k == 5  # restored after the sweep
    kept = [r["hits_mean"] for r in results.rows]
    assert kept == [1.0, 3.0]  # every candidate relevant: the depth is what is kept
    assert all("rerank" in r["latency_ms"] for r in results.rows)


def test_settings_the_pipeline_cannot_take_are_clear_errors(lite):
    ds = known_item_set([HANDBOOK], 2)
    evaluator = Evaluator(lite, ds, measures=["R@1"])
    evaluator.vector_bytes, evaluator.ingest_info = {}, {"files": 0}  # no ingest needed to fail
    with pytest.raises(ConfigError, match="retrieval has no field 'candidatez'"):
        evaluator.run(parse_sweeps(["retrieval.candidatez=5"]), progress=False)
    with pytest.raises(ConfigError, match="the pipeline has no reranker"):
        evaluator.run(parse_sweeps(["rerank.max_k=2"]), progress=False)
    with pytest.raises(ConfigError, match="unknown stage 'coarce'"):
        evaluator.run(parse_sweeps(["budget.coarce=5"]), progress=False)
