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


@pytest.fixture(scope="module")
def rag(tmp_path_factory):
    store = tmp_path_factory.mktemp("retrieval") / "db"
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}) as pipe:
        pipe.ingest([EXAMPLES], progress=False)
        yield pipe


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
