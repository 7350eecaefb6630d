"""Shared candidates (``Route.shared``, ``retrieval.candidates_from``): a funnel's last stage
also scores the candidates of other routes, on every backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from _storedata import IDENTITY, SPECS, dense_route, make_doc, sparse_route

from ragnest.config import RetrievalConfig
from ragnest.errors import ConfigError
from ragnest.retrieval.planner import check_weights, share_candidates
from ragnest.stores import QdrantStore
from ragnest.stores._plan import StageNode, build_plan
from ragnest.types import SearchRequest

Factory = Callable[..., QdrantStore]
SPEC_MAP = {s.name: s for s in SPECS}


def test_the_last_stage_prefetches_the_shared_routes_funnels() -> None:
    v = {"coarse": np.ones(16, np.float32), "mid": np.ones(32, np.float32),
         "fine": np.ones((2, 16), np.float32)}
    _, _, vecs = make_doc("a.pdf", 1, seed=1)
    v["bm25"] = next(iter(vecs.values()))["bm25"]
    bm25 = sparse_route(v, limit=7)
    dense = replace(dense_route(v, (50, 20, 9)), shared=(bm25,))
    plan = build_plan(SearchRequest(routes=(dense, bm25), limit=5, fusion="relative"),
                      SPEC_MAP, hnsw_ef=16, where="c")
    assert plan is not None
    fine = plan.requests[0]
    assert isinstance(fine, StageNode) and fine.vector == "fine"
    own, shared = fine.prefetch
    assert (own.vector, own.limit) == ("mid", 20)
    assert (shared.vector, shared.limit, shared.prefetch) == ("bm25", 7, ())
    # sized with the collection: at 30 points coarse (50) is left out, the shared route kept
    sized = build_plan(SearchRequest(routes=(dense,), limit=5), SPEC_MAP, hnsw_ef=16,
                       where="c", points=lambda conditions: 30)
    assert sized is not None
    assert [n.vector for n in sized.requests[0].prefetch] == ["mid", "bm25"]
    # a route left with one stage scores every point itself: nothing to share
    lone = build_plan(SearchRequest(routes=(dense,), limit=5), SPEC_MAP, hnsw_ef=16,
                      where="c", points=lambda conditions: 9)
    assert lone is not None and lone.requests[0].prefetch == ()


@pytest.fixture
def store(make_store: Factory) -> tuple[QdrantStore, dict[str, dict[str, Any]], list[Any]]:
    store = make_store()
    store.open(SPECS, IDENTITY)
    vectors: dict[str, dict[str, Any]] = {}
    chunks: list[Any] = []
    for i, name in enumerate(("a.pdf", "b.pdf")):
        doc_id, doc_chunks, vecs = make_doc(name, 10, seed=21 + i)
        store.write_document(doc_id, doc_chunks, vecs, fingerprint="f")
        vectors.update(vecs)
        chunks += doc_chunks
    return store, vectors, chunks


def test_the_fine_stage_finds_what_only_the_shared_route_proposed(store: Any) -> None:
    store, vectors, chunks = store
    target, decoy = chunks[3], chunks[14]
    # mid looks for the decoy and keeps one; fine and BM25 look for the target
    query = {**vectors[target.id], "mid": vectors[decoy.id]["mid"]}
    dense = dense_route(query, (100, 1, 5))
    alone = store.search(SearchRequest(routes=(dense,), limit=5))
    assert [h.chunk.id for h in alone] == [decoy.id]
    bm25 = sparse_route(vectors[target.id], limit=2)
    shared = store.search(SearchRequest(routes=(replace(dense, shared=(bm25,)),), limit=5))
    assert shared[0].chunk == target  # its own fine vectors: the best MaxSim score
    assert decoy.id in {h.chunk.id for h in shared}
    assert shared[0].score == pytest.approx(
        float(np.max(vectors[target.id]["fine"] @ vectors[target.id]["fine"].T, axis=1).sum()),
        rel=1e-2)


def test_candidates_from_in_the_planner_and_its_errors() -> None:
    v = {"coarse": np.ones(16, np.float32), "mid": np.ones(32, np.float32),
         "fine": np.ones((2, 16), np.float32)}
    dense = dense_route(v)
    routes = share_candidates([dense], {"dense": ["bm25"]})  # bm25 not asked (using=)
    assert routes == [dense] and routes[0].shared == ()
    config = RetrievalConfig(candidates_from={"dense": ["bm52"]})
    with pytest.raises(ConfigError, match="candidates_from.dense names 'bm52'.*'bm25'"):
        check_weights(config, ["dense", "bm25"])
    with pytest.raises(ConfigError, match="candidates_from names 'dens'"):
        check_weights(RetrievalConfig(candidates_from={"dens": ["bm25"]}), ["dense", "bm25"])
    with pytest.raises(ConfigError, match="names 'dense' itself"):
        check_weights(RetrievalConfig(candidates_from={"dense": ["dense"]}), ["dense", "bm25"])
    with pytest.raises(ConfigError, match="candidates_from"):
        RetrievalConfig(candidates_from={"dense": "bm25"})  # type: ignore[dict-item]
