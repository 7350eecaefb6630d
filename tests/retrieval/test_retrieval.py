"""The query planner and the retriever, called directly (as a server or an eval loop would)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ragnest import Pipeline
from ragnest.config import RetrievalConfig
from ragnest.embedders.bm25 import Bm25Embedder
from ragnest.errors import RagnestError
from ragnest.retrieval import QueryPlanner, Retriever, stage_limits
from ragnest.types import AnswerDelta, ImageRef, Query, VectorSpec

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples" / "docs"


def test_stage_limits_follow_budgets_by_vector_or_level_name():
    specs = [VectorSpec(name=n, kind="dense", dim=4) for n in ("coarse", "mid", "fine")]
    assert stage_limits("dense", specs, 50, {}) == [800, 200, 50]
    assert stage_limits("dense", specs, 50, {"mid": 300}) == [1200, 300, 50]
    assert stage_limits("dense", specs, 50, {"dense-coarse": 2000, "coarse": 7}) == [2000, 200, 50]
    assert stage_limits("dense", specs, 50, {"other-coarse": 9}) == [800, 200, 50]


def test_plan_keeps_the_reranker_pool_and_embeds_queries_in_one_batch():
    calls = []

    class Counting(Bm25Embedder):
        def embed_queries(self, queries):  # type: ignore[no-untyped-def]
            calls.append(len(queries))
            return super().embed_queries(queries)

    config = RetrievalConfig(k=3, candidates=20, rerank_k=12)
    planner = QueryPlanner({"bm25": Counting()}, config, reranking=True)
    requests = planner.plan_many([Query(text="descale"), Query(text="pump"),
                                  Query(image=ImageRef(blob="x.png"))])
    assert calls == [3]  # one batch for three queries
    assert requests[2] is None  # bm25 does not read images
    assert requests[0] is not None and requests[0].limit == 12
    assert [s.limit for s in requests[0].routes[0].stages] == [20]
    with pytest.raises(RagnestError, match="not embedders of this pipeline"):
        planner.plan("descale", using=["dense"])


def test_retriever_runs_like_the_pipeline_and_reports_timings(rag):
    retriever = Retriever(rag.embedders, rag.store, rag.retrieval)
    result = retriever.run("How often should I descale the espresso machine?", k=3)
    assert [h.chunk.id for h in result.hits] == [
        h.chunk.id for h in rag.retrieve("How often should I descale the espresso machine?", k=3)
    ]
    assert result.request is not None and {r.name for r in result.request.routes} >= {"dense"}
    assert set(result.timings) == {"embed", "search"} and all(v >= 0 for v in result.timings.values())
    many = retriever.run_many([Query(text="descale"), Query(text="eye wash station")], k=2)
    assert [len(r.hits) for r in many] == [2, 2]
    retriever.close()


def test_query_reports_timings_and_stream_ends_with_the_answer(rag):
    answer = rag.query("How often should I descale the espresso machine?")
    assert {"embed", "search", "generate"} <= set(answer.timings)
    deltas = list(rag.stream("How often should I descale the espresso machine?"))
    assert all(isinstance(d, AnswerDelta) for d in deltas) and deltas[-1].done
    final = deltas[-1].answer
    assert final is not None and final.text == answer.text
    assert "".join(d.text for d in deltas) == answer.text
    assert asyncio.run(rag.aquery("How often should I descale the espresso machine?")).text \
        == answer.text


class KeywordReranker:
    """A reranker that scores a hit by whether its text holds a keyword (pipeline wiring)."""

    def __init__(self, keyword: str) -> None:
        self.keyword = keyword

    def warm_up(self) -> None:
        pass

    def close(self) -> None:
        pass

    def rerank(self, query, hits, top_k=None):  # type: ignore[no-untyped-def]
        from ragnest.rerankers.cutoff import apply_cutoff, sigmoid

        scores = [4.0 if self.keyword in h.chunk.text.lower() else -4.0 for h in hits]
        return apply_cutoff(hits, scores, probabilities=[sigmoid(s) for s in scores],
                            max_k=top_k or 8)


def test_a_reranker_that_keeps_nothing_makes_the_answer_say_so(tmp_path):
    from ragnest.generators.evidence import NOT_FOUND
    from ragnest.protocols import Reranker

    base = Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(tmp_path / "db")})
    keep = KeywordReranker("descal")
    assert isinstance(keep, Reranker)
    rag = Pipeline(parsers=base.parsers, embedders=base.embedders, store=base.store,
                   generator=base.generator, reranker=keep, retrieval=base.retrieval)
    with rag:
        rag.ingest([EXAMPLES], progress=False)
        answer = rag.query("How often should I descale the espresso machine?")
        assert answer.found and answer.hits
        assert all("descal" in h.chunk.text.lower() for h in answer.hits)
        assert all(h.scores_by_stage["rerank"] == 4.0 for h in answer.hits)
        assert "rerank" in answer.timings
        rag.reranker = KeywordReranker("zeppelin")  # swapped: the next query uses it
        miss = rag.query("How often should I descale the espresso machine?")
        assert not miss.found and miss.text == NOT_FOUND and miss.hits == ()
        result = rag.retriever.run("How often should I descale the espresso machine?")
        assert result.hits == [] and len(result.candidates) > 0


QUESTIONS = [
    "How often should I descale the espresso machine?",
    "What does the red light mean?",
    "pump pressure",
    "Which filter basket for two cups?",
]


def test_retrieve_many_gives_exactly_the_hits_of_retrieve_one_by_one(rag):
    one_by_one = [rag.retrieve(q, k=4) for q in QUESTIONS]
    together = rag.retrieve_many(QUESTIONS, k=4)
    assert [list(h) for h in together] == [list(h) for h in one_by_one]
    assert [h.query.text for h in together] == QUESTIONS
    assert all(hits for hits in together)
    explained = rag.retrieve_many(QUESTIONS, k=4, explain=True)
    assert [[h.chunk.id for h in hs] for hs in explained] == [
        [h.chunk.id for h in hs] for hs in one_by_one]
    filtered = rag.retrieve_many(QUESTIONS[:2], k=2, filters={"kind": "page"})
    assert filtered == [rag.retrieve(q, k=2, filters={"kind": "page"}) for q in QUESTIONS[:2]]


def test_run_many_searches_in_one_store_batch(rag):
    calls = []
    real = rag.store.search_many

    def counting(requests):  # type: ignore[no-untyped-def]
        calls.append(len(requests))
        return real(requests)

    rag.store.search_many = counting
    try:
        results = Retriever(rag.embedders, rag.store, rag.retrieval).run_many(
            [Query(text=q) for q in QUESTIONS], k=3)
    finally:
        del rag.store.search_many
    assert calls == [len(QUESTIONS)]
    assert all(len(r.hits) == 3 and "search" in r.timings for r in results)


def test_stage_scores_are_computed_only_when_explained(rag):
    question = QUESTIONS[0]
    plain = rag.retrieve(question, k=3)
    stages = {"dense-coarse", "dense-mid", "dense-fine"}
    assert all(not stages & set(h.scores_by_stage) for h in plain)
    assert all({"final", "dense", "bm25"} <= set(h.scores_by_stage) for h in plain)
    explained = rag.retrieve(question, k=3, explain=True)
    assert [h.chunk.id for h in explained] == [h.chunk.id for h in plain]
    # the fine stage ranks the dense route: its recomputed score is the route's score
    for hit in explained:
        assert stages <= set(hit.scores_by_stage)
        assert hit.scores_by_stage["dense-fine"] == pytest.approx(
            hit.scores_by_stage["dense"], rel=1e-2, abs=1e-2)
    answer = rag.query(question, k=3, explain=True)
    assert stages <= set(answer.hits[0].scores_by_stage)
