"""The query planner: a query, budgets and filters in; a :class:`~ragnest.types.SearchRequest` out.

Each embedder that reads the query gives one route: its ladder levels coarse to fine,
each stage keeping a number of candidates. The last stage keeps what fusion and the
reranker need; an earlier stage keeps 4x the next one unless a budget names it (by
vector name, ``dense-coarse``, or level name, ``coarse``)::

    >>> from ragnest.config import RetrievalConfig
    >>> from ragnest.embedders.bm25 import Bm25Embedder
    >>> from ragnest.retrieval.planner import QueryPlanner
    >>> planner = QueryPlanner({"bm25": Bm25Embedder()}, RetrievalConfig(k=5))
    >>> request = planner.plan("descaling the espresso machine")
    >>> [(r.name, [s.limit for s in r.stages]) for r in request.routes], request.limit
    ([('bm25', [50])], 5)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ragnest._paths import is_readable, readable_path
from ragnest._validate import did_you_mean
from ragnest.config import RetrievalConfig
from ragnest.errors import ConfigError, RagnestError
from ragnest.ladder import vector_name
from ragnest.protocols import Embedder
from ragnest.retrieval.image import CropQuery
from ragnest.types import Fusion, Query, Route, SearchRequest, Stage, Vector, VectorSpec

__all__ = ["QueryPlanner", "as_query", "check_text", "check_weights", "route_weights",
           "share_candidates", "stage_limits"]


def as_query(query: str | Query, filters: Mapping[str, Any] | None = None) -> Query:
    """A :class:`Query` from text or a query, with ``filters`` (when given) replacing its own."""
    if isinstance(query, Query):
        return query if filters is None else replace(query, filters=dict(filters))
    if isinstance(query, str):
        return Query(text=query, filters=dict(filters) if filters else None)
    raise TypeError(f"query must be a str or a ragnest.Query, not {type(query).__name__}")


def check_text(text: str | None) -> None:
    """Raise :class:`ConfigError` for query text that is not valid Unicode: bytes that
    were not UTF-8, surrogate-escaped (as a command line hands them over).

    >>> check_text(b"caf\\xe9".decode("utf-8", "surrogateescape"))
    Traceback (most recent call last):
    ...
    ragnest.errors.ConfigError: the query is not valid UTF-8 text: 'caf\\xe9' holds bytes that are not UTF-8 (written \\xNN here); give the query in UTF-8
    """
    if text and not is_readable(text):
        raise ConfigError(f"the query is not valid UTF-8 text: '{readable_path(text)}' holds bytes "
                          "that are not UTF-8 (written \\xNN here); give the query in UTF-8")


def stage_limits(
    key: str, specs: Sequence[VectorSpec], last: int, budgets: Mapping[str, int]
) -> list[int]:
    """Candidates each stage of embedder ``key``'s funnel keeps, coarse to fine.

    >>> from ragnest.types import VectorSpec
    >>> specs = [VectorSpec(name=n, kind="dense", dim=4) for n in ("coarse", "mid", "fine")]
    >>> stage_limits("dense", specs, 50, {"dense-coarse": 2000})
    [2000, 200, 50]
    """
    limits = [0] * len(specs)
    nxt = last
    for i in range(len(specs) - 1, -1, -1):
        name = specs[i].name
        given = budgets.get(vector_name(key, name), budgets.get(name))
        default = last if i == len(specs) - 1 else nxt * 4
        limits[i] = max(int(given), 1) if given else default
        nxt = limits[i]
    return limits


def route_weights(query: Query, config: RetrievalConfig) -> dict[str, float]:
    """Route weights for ``query``: ``config.weights``, and for a screenshot read by
    :class:`~ragnest.retrieval.image.ImageQueryReader` (a ``CropQuery``) the
    ``config.image_weights`` of what the crop is (``text``, ``mixed``, ``graphics``) over them,
    for the routes they name (a route named nowhere weighs 1).

    >>> from ragnest.retrieval.image import CropQuery
    >>> from ragnest.types import ImageRef
    >>> config = RetrievalConfig(weights={"dense": 1.0, "visual": 3.0},
    ...                          image_weights={"text": {"visual": 0.5}})
    >>> crop = CropQuery(text="Descaling", image=ImageRef(blob="c.png"), kind="text")
    >>> route_weights(crop, config), route_weights(Query(text="descaling"), config)
    ({'dense': 1.0, 'visual': 0.5}, {'dense': 1.0, 'visual': 3.0})
    """
    if isinstance(query, CropQuery):
        return {**config.weights, **config.image_weights.get(query.kind, {})}
    return dict(config.weights)


def share_candidates(routes: Sequence[Route], sources: Mapping[str, Sequence[str]]) -> list[Route]:
    """``routes`` with each one's :attr:`~ragnest.types.Route.shared` set from ``sources``
    (``retrieval.candidates_from``: route name -> the routes whose candidates its last
    stage also scores; those not in ``routes``, say left out by ``using``, are skipped).

    >>> import numpy as np
    >>> v = np.ones(2, np.float32)
    >>> dense = Route(name="dense", stages=(Stage(vector="dense-mid", query=v, limit=50),
    ...                                     Stage(vector="dense-fine", query=v, limit=50)))
    >>> bm25 = Route(name="bm25", stages=(Stage(vector="bm25-sparse", query=v, limit=50),))
    >>> [(r.name, [o.name for o in r.shared])
    ...  for r in share_candidates([dense, bm25], {"dense": ["bm25", "visual"]})]
    [('dense', ['bm25']), ('bm25', [])]
    """
    if not sources:
        return list(routes)
    by_name = {r.name: r for r in routes}
    return [
        replace(r, shared=tuple(by_name[o] for o in sources.get(r.name, ()) if o in by_name))
        if sources.get(r.name) else r
        for r in routes
    ]


def check_weights(config: RetrievalConfig, embedders: Iterable[str]) -> None:
    """Raise :class:`ConfigError` for ``retrieval.weights``, ``retrieval.image_weights``
    or ``retrieval.candidates_from`` naming a route that is not an embedder (or a route
    taking candidates from itself).

    >>> check_weights(RetrievalConfig(image_weights={"text": {"visaul": 0.5}}), ["visual"])
    Traceback (most recent call last):
    ...
    ragnest.errors.ConfigError: retrieval.image_weights.text names 'visaul', which is not an embedder; did you mean 'visual'?
    """
    names = list(embedders)
    named: list[tuple[str, Iterable[str]]] = [
        ("weights", config.weights),
        *((f"image_weights.{k}", w) for k, w in config.image_weights.items()),
        ("candidates_from", config.candidates_from),
        *((f"candidates_from.{k}", others) for k, others in config.candidates_from.items()),
    ]
    for where, routes in named:
        for name in routes:
            if name not in names:
                raise ConfigError(f"retrieval.{where} names {name!r}, which is not an "
                                  f"embedder{did_you_mean(name, names)}")
    for name, others in config.candidates_from.items():
        if name in others:
            raise ConfigError(f"retrieval.candidates_from.{name} names {name!r} itself")


class QueryPlanner:
    """Turns queries into search requests for a set of embedders (see the module docs).

    ``reranking``: a reranker follows, so the request keeps ``max(k, rerank_k)`` hits.
    """

    def __init__(
        self,
        embedders: Mapping[str, Embedder],
        config: RetrievalConfig | None = None,
        *,
        reranking: bool = False,
    ) -> None:
        self.embedders = dict(embedders)
        self.config = config or RetrievalConfig()
        self.reranking = reranking

    def limits(self, k: int | None = None) -> tuple[int, int, int]:
        """``(k, pool, last)``: hits returned, hits the store returns (the reranker's
        pool), and candidates each route's last stage keeps.

        ``k`` (``None``: the configured ``retrieval.k``) must be an integer >= 1; anything
        else is a :class:`ConfigError` (``k=0`` never means "the default").
        """
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ConfigError(f"k={k!r}: the number of hits must be an integer >= 1")
        k = k or self.config.k
        pool = max(k, self.config.rerank_k or 0) if self.reranking else k
        return k, pool, max(pool, self.config.candidates)

    def plan(
        self,
        query: str | Query,
        *,
        k: int | None = None,
        budgets: Mapping[str, int] | None = None,
        using: Sequence[str] | None = None,
        fusion: Fusion | None = None,
        explain: bool = False,
    ) -> SearchRequest | None:
        """The request for one query (embeds it); ``None`` when no embedder reads it."""
        return self.plan_many([as_query(query)], k=k, budgets=budgets, using=using,
                              fusion=fusion, explain=explain)[0]

    def plan_many(
        self,
        queries: Sequence[Query],
        *,
        k: int | None = None,
        budgets: Mapping[str, int] | None = None,
        using: Sequence[str] | None = None,
        fusion: Fusion | None = None,
        explain: bool = False,
    ) -> list[SearchRequest | None]:
        """One request per query, embedding all queries in one batch per embedder.

        ``explain``: the requests ask the store for every hit's score at each stage
        (``SearchRequest.stage_scores``); off, the store does not compute them."""
        if using is not None:
            unknown = [u for u in using if u not in self.embedders]
            if unknown:
                raise RagnestError(
                    f"using={unknown}: not embedders of this pipeline "
                    f"(embedders: {', '.join(self.embedders)})"
                )
        _, pool, last = self.limits(k)
        for q in queries:
            check_text(q.text)
        self.check_budgets(self.config.budgets, where="retrieval.budgets")
        self.check_budgets(budgets or {}, where="budgets")
        merged = {**self.config.budgets, **(budgets or {})}
        per_embedder: dict[str, list[dict[str, Vector] | None]] = {}
        for key, emb in self.embedders.items():
            if using is None or key in using:
                per_embedder[key] = list(emb.embed_queries(queries))
        requests: list[SearchRequest | None] = []
        for i, q in enumerate(queries):
            weights = route_weights(q, self.config)
            routes = share_candidates([
                self._route(key, vecs[i], last, merged, weights)
                for key, vecs in per_embedder.items()
                if vecs[i]
            ], self.config.candidates_from)
            requests.append(
                SearchRequest(
                    routes=tuple(routes),
                    limit=pool,
                    filters=q.filters,
                    fusion=fusion or self.config.fusion,  # type: ignore[arg-type]
                    fusion_k=self.config.fusion_k,
                    stage_scores=explain,
                )
                if routes
                else None
            )
        return requests

    def stages(self) -> list[str]:
        """Every stage name a budget may use: vector names (``dense-coarse``) and level
        names (``coarse``, which sets that level in every embedder that has it)."""
        names: dict[str, None] = {}
        for key, emb in self.embedders.items():
            for spec in emb.vector_specs():
                names[vector_name(key, spec.name)] = None
                names[spec.name] = None
        return list(names)

    def check_budgets(self, budgets: Mapping[str, int], *, where: str = "budgets") -> None:
        """Raise :class:`ConfigError` for a budget on a stage no embedder has (with a
        "did you mean") or a limit that is not an integer >= 1.

        >>> from ragnest.embedders.bm25 import Bm25Embedder
        >>> QueryPlanner({"bm25": Bm25Embedder()}).check_budgets({"bm25-sparce": 50})
        Traceback (most recent call last):
        ...
        ragnest.errors.ConfigError: budgets: unknown stage 'bm25-sparce'; did you mean 'bm25-sparse' or 'sparse'? (stages: bm25-sparse, sparse)
        """
        if not budgets:
            return
        known = self.stages()
        for name, value in budgets.items():
            if name not in known:
                raise ConfigError(f"{where}: unknown stage {name!r}{did_you_mean(name, known)} "
                                  f"(stages: {', '.join(known)})")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{where}: {name}={value!r}: a stage keeps an integer >= 1 "
                                  "of candidates")

    def _route(
        self, key: str, qvecs: Mapping[str, Vector] | None, last: int, budgets: Mapping[str, int],
        weights: Mapping[str, float],
    ) -> Route:
        assert qvecs
        specs = [s for s in self.embedders[key].vector_specs() if s.name in qvecs]
        limits = stage_limits(key, specs, last, budgets)
        stages = tuple(
            Stage(vector=vector_name(key, s.name), query=qvecs[s.name], limit=lim)
            for s, lim in zip(specs, limits)
        )
        return Route(name=key, stages=stages, weight=weights.get(key, 1.0))
