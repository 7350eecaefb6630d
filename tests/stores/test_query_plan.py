"""The one query plan: built once from a SearchRequest, the same for every backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _storedata import SPECS, dense_route, sparse_route

from ragnest.errors import ConfigError
from ragnest.stores._filters import Condition
from ragnest.stores._fusion import rank_rows, relative_fusion
from ragnest.stores._plan import FusionNode, StageNode, build_plan
from ragnest.types import Route, SearchRequest, SparseVector, Stage

SPEC_MAP = {s.name: s for s in SPECS}
V = {
    "coarse": np.ones(16, np.float32),
    "mid": np.ones(32, np.float32),
    "fine": np.ones((2, 16), np.float32),
    "bm25": SparseVector(indices=(1, 2, 3), values=(1.0, 1.0, 1.0)),
}


def plan(**kwargs: Any) -> Any:
    return build_plan(SearchRequest(**kwargs), SPEC_MAP, hnsw_ef=77, where="collection 'c'")


def chain(node: StageNode) -> list[tuple[str, int, int | None]]:
    """A funnel from the top down: (vector, limit, hnsw_ef) per stage."""
    out = []
    while True:
        out.append((node.vector, node.limit, node.hnsw_ef))
        if not node.prefetch:
            return out
        assert len(node.prefetch) == 1
        node = node.prefetch[0]


def nodes(node: Any) -> list[Any]:
    return [node, *(n for p in node.prefetch for n in nodes(p))]


def test_one_route_is_one_funnel_coarse_innermost() -> None:
    p = plan(routes=(dense_route(V, (50, 20, 9)),), limit=4, filters={"page": 3})
    assert p.fusion == "engine" and len(p.requests) == 1 and p.limit == 4
    # the top keeps the request's limit; inner stages keep their own; only the
    # HNSW-indexed vector gets search params
    assert chain(p.requests[0]) == [("fine", 4, None), ("mid", 20, None), ("coarse", 50, 77)]
    assert [n.kind for n in nodes(p.requests[0])] == ["multi", "dense", "dense"]
    assert all(n.conditions == (Condition("page", "match", 3),) for n in nodes(p.requests[0]))


@pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
def test_engine_fusion_is_one_request_over_one_funnel_per_route(fusion: str) -> None:
    routes = (dense_route(V, (50, 20, 9), weight=2.0), sparse_route(V, limit=3, weight=0.5))
    p = plan(routes=routes, limit=5, fusion=fusion, fusion_k=11, filters={"kind": ["page"]})
    (top,) = p.requests
    assert isinstance(top, FusionNode) and p.fusion == "engine"
    assert (top.method, top.k, top.weights, top.limit) == (fusion, 11, (2.0, 0.5), 5)
    dense, sparse = top.prefetch
    # each route hands fusion its last stage's candidates, at least the request's limit
    assert chain(dense) == [("fine", 9, None), ("mid", 20, None), ("coarse", 50, 77)]
    assert chain(sparse) == [("bm25", 5, None)]
    assert sparse.kind == "sparse"
    assert all(n.conditions == (Condition("kind", "any", ["page"]),) for n in nodes(top))


def test_relative_fusion_is_a_batch_of_route_requests() -> None:
    routes = (dense_route(V, (50, 20, 2)), sparse_route(V, limit=8))
    p = plan(routes=routes, limit=5, fusion="relative")
    assert p.fusion == "relative" and p.routes == routes
    assert [chain(r) for r in p.requests] == [
        [("fine", 5, None), ("mid", 20, None), ("coarse", 50, 77)],
        [("bm25", 8, None)],
    ]


def test_a_route_tied_at_its_limit_is_left_out_of_relative_fusion() -> None:
    """A query of numbers alone can tie every page on the dense route: the engine then
    returns an arbitrary 50 of them, which must not decide the hits run to run."""
    bm25 = [("c", 4.0, {}), ("d", 2.0, {}), ("a", 1.0, {})]

    def fused(tied_ids: list[str], asked: list[int]) -> list[str]:
        tied = [(pid, 0.9, {}) for pid in tied_ids]
        rows = relative_fusion([tied, bm25], names=["dense", "bm25"], weights=[1.0, 1.0],
                               limit=3, asked=asked)
        return [pid for pid, *_ in rows]

    # a full route of equal scores: the same hits whichever tied rows came back
    assert fused(["a", "b"], [2, 3]) == fused(["e", "f"], [2, 3]) == ["c", "d", "a"]
    # fewer tied rows than asked: all of them are there, so they count (1.0 each)
    assert fused(["a", "b"], [5, 3]) == ["a", "c", "b"]
    # every route tied at its limit: fused as before rather than no hits at all
    rows = relative_fusion([[("x", 1.0, {}), ("y", 1.0, {})]] * 2, names=["a", "b"],
                           weights=[1.0, 1.0], limit=2, asked=[2, 2])
    assert [pid for pid, *_ in rows] == ["x", "y"]
    # rank_rows passes each request's limit
    routes = (dense_route(V, (50, 20, 2)), sparse_route(V, limit=3))
    p = plan(routes=routes, limit=3, fusion="relative")
    tied = [(pid, 0.9, {}) for pid in ("e", "f", "g")]
    assert [pid for pid, *_ in rank_rows(p, [tied, bm25])] == ["c", "d", "a"]


def test_nothing_to_do_and_bad_requests() -> None:
    assert plan(routes=()) is None
    assert plan(routes=(dense_route(V),), limit=0) is None
    bad: Any = "max"
    with pytest.raises(ConfigError, match="unknown fusion 'max'"):
        plan(routes=(dense_route(V), dense_route(V)), fusion=bad)
    with pytest.raises(ConfigError, match="route 'r' has no stages"):
        plan(routes=(Route(name="r", stages=()),))
    with pytest.raises(ConfigError, match=r"unknown vector 'nope'; collection 'c' has \['bm25'"):
        plan(routes=(Route(name="r", stages=(Stage(vector="nope", query=V["mid"], limit=3),)),))
    with pytest.raises(ConfigError, match="stage 'mid' limit must be > 0"):
        plan(routes=(Route(name="r", stages=(Stage(vector="mid", query=V["mid"], limit=0),)),))
    with pytest.raises(ConfigError, match="weight must be a finite number"):
        plan(routes=(dense_route(V, weight=float("nan")), sparse_route(V)))
    with pytest.raises(ConfigError, match="fusion_k=-1"):
        plan(routes=(dense_route(V), sparse_route(V)), fusion_k=-1)
    with pytest.raises(ConfigError, match="filter 'page'"):
        plan(routes=(dense_route(V),), filters={"page": {"between": 3}})


def test_a_graph_stage_searches_with_an_ef_that_covers_its_limit() -> None:
    p = plan(routes=(dense_route(V, (500, 20, 9)),), limit=4)
    assert chain(p.requests[0]) == [("fine", 4, None), ("mid", 20, None), ("coarse", 500, 500)]
    assert not any(n.exact for n in nodes(p.requests[0]))  # nobody asked for exact search


def test_exact_search_is_decided_for_each_routes_first_graph_stage() -> None:
    asked: list[tuple[str, tuple[Condition, ...]]] = []

    def exact(spec: Any, conditions: tuple[Condition, ...]) -> bool:
        asked.append((spec.name, conditions))
        return True

    request = SearchRequest(routes=(dense_route(V, (50, 20, 9)), sparse_route(V, limit=3)),
                            limit=5, filters={"page": 3})
    p = build_plan(request, SPEC_MAP, hnsw_ef=77, where="collection 'c'", exact=exact)
    # only the coarse HNSW stage searches the whole collection on a graph; the sparse
    # route (an inverted index) and the rescoring stages are exact anyway
    assert asked == [("coarse", (Condition("page", "match", 3),))]
    exact_nodes = [n.vector for n in nodes(p.requests[0]) if getattr(n, "exact", False)]
    assert exact_nodes == ["coarse"]


@pytest.mark.parametrize(("kb", "filters", "expected"), [
    (100_000, None, True),  # the defaults: a small collection is scanned exactly
    (0, None, False),  # 0: always the graph
    (1, None, False),  # 30 points x 16-d float32 = 1.9 KB > 1 KB: the graph
    (1, {"source": "a.pdf"}, True),  # a narrow filter: 10 points = 0.6 KB, scanned
])
def test_the_store_searches_exactly_within_exact_search_kb(
    tmp_path: Any, kb: int, filters: Any, expected: bool
) -> None:
    from _storedata import IDENTITY, make_doc

    from ragnest.stores import QdrantStore

    with QdrantStore(path=str(tmp_path / "db"), exact_search_kb=kb) as store:
        store.open(SPECS, IDENTITY)
        for name in ("a.pdf", "b.pdf", "c.pdf"):
            doc_id, chunks, vectors = make_doc(name, 10, seed=len(name))
            store.write_document(doc_id, chunks, vectors, fingerprint="f")
        sent: list[Any] = []
        backend = store._require()
        real = backend.query

        def spy(requests: Any) -> Any:
            sent.extend(requests)
            return real(requests)

        backend.query = spy  # type: ignore[method-assign]
        # coarse keeps 8: fewer than the points it searches (10 with the filter), so it
        # stays in the funnel (a stage that would keep them all is left out)
        hits = store.search(SearchRequest(routes=(dense_route(V, (8, 6, 5)),), limit=3,
                                          filters=filters))
        assert hits
        (coarse,) = [n for n in nodes(sent[0]) if n.vector == "coarse"]
        assert coarse.exact is expected
        assert coarse.hnsw_ef == 128  # the store's hnsw_ef, above the stage limit (8)
