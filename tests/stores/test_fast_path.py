"""The search fast path on every backend: ids and scores from the engine, payloads for the
final hits only, per-stage scores on request, budgets that follow the collection's size,
a cached point count, and many requests in one engine batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from _storedata import IDENTITY, SPECS, dense_route, make_doc, sparse_route

from ragnest.errors import ConfigError
from ragnest.stores import QdrantStore
from ragnest.stores._plan import StageNode, sized_stages
from ragnest.types import SearchRequest, Stage

Factory = Callable[..., QdrantStore]


@pytest.fixture
def filled(make_store: Factory) -> tuple[QdrantStore, dict[str, dict[str, Any]]]:
    """A store of 30 chunks (three documents of ten); their vectors by chunk id."""
    store = make_store()
    store.open(SPECS, IDENTITY)
    vectors: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(("a.pdf", "b.pdf", "c.pdf")):
        doc_id, chunks, vecs = make_doc(name, 10, seed=11 + i)
        store.write_document(doc_id, chunks, vecs, fingerprint="f")
        vectors.update(vecs)
    return store, vectors


def spy(store: QdrantStore, name: str) -> list[Any]:
    """Record the arguments of the store's backend method ``name``."""
    backend = store._require()
    calls: list[Any] = []
    real = getattr(backend, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    setattr(backend, name, wrapped)
    return calls


def queries(vectors: dict[str, dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return [vectors[cid] for cid in sorted(vectors)[:n]]


def test_payloads_are_fetched_for_the_final_hits_only(filled: Any) -> None:
    store, vectors = filled
    v = queries(vectors, 1)[0]
    retrieved, sent = spy(store, "retrieve"), spy(store, "query")
    request = SearchRequest(routes=(dense_route(v, (20, 15, 12)), sparse_route(v, limit=12)),
                            limit=3, fusion="relative")
    hits = store.search(request)
    # the engine ranked 12 candidates per route; one fetch asked for the 3 final hits
    assert len(sent) == 1 and len(sent[0][0]) == 2  # one batch of both routes
    assert len(retrieved) == 1 and list(retrieved[0][0]) == [h.chunk.id for h in hits]
    assert len(hits) == 3 and all(h.chunk.text for h in hits)
    assert set(hits[0].scores_by_stage) == {"final", "dense", "bm25"}


def test_stage_scores_only_on_request_and_the_same_hits(filled: Any) -> None:
    store, vectors = filled
    v = queries(vectors, 1)[0]
    fetched = spy(store, "vectors")
    route = dense_route(v, (20, 15, 12))
    plain = store.search(SearchRequest(routes=(route,), limit=4))
    assert fetched == [] and set(plain[0].scores_by_stage) == {"final", "dense"}
    explained = store.search(SearchRequest(routes=(route,), limit=4, stage_scores=True))
    assert len(fetched) == 1
    assert [(h.chunk.id, h.score) for h in explained] == [(h.chunk.id, h.score) for h in plain]
    for hit in explained:
        assert hit.scores_by_stage["fine"] == pytest.approx(hit.score, rel=1e-2, abs=1e-2)
        assert {"coarse", "mid"} <= set(hit.scores_by_stage)


def test_a_stage_that_would_keep_every_point_is_left_out(filled: Any) -> None:
    store, vectors = filled
    v = queries(vectors, 1)[0]
    sent = spy(store, "query")
    wide = store.search(SearchRequest(routes=(dense_route(v, (1000, 15, 12)),), limit=5))
    (top,) = sent[-1][0]
    assert [n.vector for n in _chain(top)] == ["fine", "mid"]  # coarse would keep all 30
    narrow = store.search(SearchRequest(routes=(dense_route(v, (25, 15, 12)),), limit=5))
    (top,) = sent[-1][0]
    assert [n.vector for n in _chain(top)] == ["fine", "mid", "coarse"]
    assert wide[0].chunk.id == narrow[0].chunk.id
    # a filter narrows what the first stage searches: 10 points, so coarse=25 is left out
    store.search(SearchRequest(routes=(dense_route(v, (25, 8, 5)),), limit=5,
                               filters={"source": "a.pdf"}))
    (top,) = sent[-1][0]
    assert [(n.vector, n.limit) for n in _chain(top)] == [("fine", 5), ("mid", 8)]


def test_funnel_share_trims_budgets_on_small_collections(make_store: Factory) -> None:
    store = make_store(funnel_share=0.5)
    store.open(SPECS, IDENTITY)
    doc_id, chunks, vecs = make_doc("a.pdf", 30, seed=4)
    store.write_document(doc_id, chunks, vecs, fingerprint="f")
    sent = spy(store, "query")
    hits = store.search(SearchRequest(routes=(dense_route(vecs[chunks[3].id], (25, 20, 4)),),
                                      limit=4))
    (top,) = sent[-1][0]
    # coarse keeps half of 30 (15), mid half of those, but never fewer than fine's 4
    assert [(n.vector, n.limit) for n in _chain(top)] == [("fine", 4), ("mid", 8),
                                                            ("coarse", 15)]
    assert hits[0].chunk == chunks[3]
    with pytest.raises(ConfigError, match="funnel_share"):
        QdrantStore(location=":memory:", funnel_share=0)


def test_the_point_count_is_asked_once_until_the_data_changes(filled: Any) -> None:
    store, vectors = filled
    counted = spy(store, "count")
    v = queries(vectors, 1)[0]
    for _ in range(3):
        store.search(SearchRequest(routes=(dense_route(v),), limit=2))
    assert len(counted) == 1
    doc_id, chunks, vecs = make_doc("d.pdf", 40, seed=9)
    store.write_document(doc_id, chunks, vecs, fingerprint="f")
    sent = spy(store, "query")
    store.search(SearchRequest(routes=(dense_route(v, (60, 15, 12)),), limit=2))
    assert len(counted) >= 2  # the write made it count again: 70 points now
    (top,) = sent[-1][0]
    assert [n.vector for n in _chain(top)] == ["fine", "mid", "coarse"]


@pytest.mark.parametrize("fusion", ["relative", "rrf", "dbsf"])
def test_search_many_is_one_batch_with_the_hits_of_each_search(filled: Any, fusion: str) -> None:
    store, vectors = filled
    requests = [SearchRequest(routes=(dense_route(v, (20, 15, 12)), sparse_route(v, limit=12)),
                              limit=4, fusion=fusion, stage_scores=i == 1)
                for i, v in enumerate(queries(vectors, 6))]
    one_by_one = [store.search(r) for r in requests]
    sent, retrieved = spy(store, "query"), spy(store, "retrieve")
    together = store.search_many(requests)
    assert len(sent) == 1 and len(retrieved) == 1
    assert together == one_by_one
    assert store.search_many([]) == []


def test_sized_stages_rules() -> None:
    v = np.ones(2, np.float32)
    funnel = [Stage(vector=n, query=v, limit=lim) for n, lim in (("c", 100), ("m", 40), ("f", 9))]
    assert [s.limit for s in sized_stages(funnel, 1000)] == [100, 40, 9]
    assert [s.vector for s in sized_stages(funnel, 100)] == ["m", "f"]
    assert [s.vector for s in sized_stages(funnel, 40)] == ["f"]  # the last one stays
    assert [s.vector for s in sized_stages(funnel, 0)] == ["f"]
    assert [s.limit for s in sized_stages(funnel, 60, share=0.5)] == [30, 15, 9]
    with pytest.raises(ConfigError):
        sized_stages(funnel, 10, share=1.5)


def _chain(node: StageNode) -> list[StageNode]:
    out = [node]
    while node.prefetch:
        node = node.prefetch[0]  # type: ignore[assignment]
        out.append(node)
    return out
