"""Retrieval as a library call: plan -> search -> rerank, with what each step cost.

What ``Pipeline.retrieve`` runs, usable directly by a server or an evaluation loop on
an open store::

    >>> import tempfile
    >>> from ragnest import Pipeline
    >>> from ragnest.retrieval import Retriever
    >>> with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": tempfile.mkdtemp()}) as rag:
    ...     _ = rag.ingest(["examples/docs"], progress=False)
    ...     retriever = Retriever(rag.embedders, rag.store, rag.retrieval)
    ...     result = retriever.run("How often should the machine be descaled?", k=3)
    >>> len(result.hits), sorted(result.timings)
    (3, ['embed', 'search'])
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ragnest.config import RetrievalConfig
from ragnest.errors import RagnestError
from ragnest.protocols import Embedder, Reranker, Store
from ragnest.retrieval.image import ImageQueryReader
from ragnest.retrieval.planner import QueryPlanner, as_query
from ragnest.types import Fusion, Hit, Hits, Query, SearchRequest

__all__ = ["Retrieval", "Retriever", "search_all"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retrieval:
    """One query's result: the hits, the request the store ran (``None`` when no
    embedder read the query), seconds per step (``ocr``, ``embed``, ``search``,
    ``rerank``), and the store's candidates before the reranker cut them (empty hits
    with candidates: the reranker found none of them relevant)."""

    query: Query
    hits: list[Hit]
    request: SearchRequest | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    candidates: list[Hit] = field(default_factory=list)


def search_all(store: Store, requests: Sequence[SearchRequest]) -> list[list[Hit]]:
    """Each request's hits: one ``store.search_many`` batch where the store has it (the
    Qdrant store), else one ``search`` per request."""
    if not requests:
        return []
    many = getattr(store, "search_many", None)
    if callable(many):
        return list(many(list(requests)))
    return [store.search(r) for r in requests]


class Retriever:
    """Runs queries against an open store (see the module docs)."""

    def __init__(
        self,
        embedders: Mapping[str, Embedder],
        store: Store,
        config: RetrievalConfig | None = None,
        *,
        reranker: Reranker | None = None,
    ) -> None:
        self.embedders = dict(embedders)
        self.store = store
        self.config = config or RetrievalConfig()
        self.reranker = reranker
        self.planner = QueryPlanner(self.embedders, self.config, reranking=reranker is not None)
        self._images = ImageQueryReader(self.config)

    def close(self) -> None:
        """Release what queries loaded (the OCR engine for image queries)."""
        self._images.close()

    def _prepare(self, q: Query, timings: dict[str, float]) -> Query:
        if q.image is not None and not q.text and self.config.image_ocr:
            t0 = time.perf_counter()
            q = self._images.read(q)
            timings["ocr"] = time.perf_counter() - t0
        return q

    def run(
        self,
        query: str | Query,
        *,
        k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        budgets: Mapping[str, int] | None = None,
        using: Sequence[str] | None = None,
        fusion: Fusion | None = None,
        explain: bool = False,
    ) -> Retrieval:
        """Plan, search and rerank one query; ``k`` hits at most.

        ``explain``: every hit also reports its score at each dense/multi-vector stage
        (``Hit.scores_by_stage``; it costs a fetch of the hits' vectors, so it is off by
        default)."""
        return self.run_many([as_query(query, filters)], k=k, budgets=budgets, using=using,
                             fusion=fusion, explain=explain)[0]

    def run_many(
        self,
        queries: Sequence[Query],
        *,
        k: int | None = None,
        budgets: Mapping[str, int] | None = None,
        using: Sequence[str] | None = None,
        fusion: Fusion | None = None,
        explain: bool = False,
    ) -> list[Retrieval]:
        """:meth:`run` for many queries: embedded in one batch per embedder and searched
        in one store batch (``search_many``, where the store has it); the same results as
        :meth:`run` one query at a time. Timings are the batch's, shared out evenly."""
        k_final, _, _ = self.planner.limits(k)
        timings = [dict[str, float]() for _ in queries]
        prepared = [self._prepare(q, t) for q, t in zip(queries, timings)]
        t0 = time.perf_counter()
        requests = self.planner.plan_many(prepared, k=k, budgets=budgets, using=using,
                                          fusion=fusion, explain=explain)
        embed_each = (time.perf_counter() - t0) / max(1, len(queries))
        for q, request in zip(prepared, requests):
            if request is None:
                self._no_route(q)
        t0 = time.perf_counter()
        found = search_all(self.store, [r for r in requests if r is not None])
        search_each = (time.perf_counter() - t0) / max(1, len(found))
        out = []
        results = iter(found)
        for q, request, t in zip(prepared, requests, timings):
            t["embed"] = embed_each
            if request is None:
                out.append(Retrieval(q, [], None, t))
                continue
            candidates = next(results)
            t["search"] = search_each
            hits = candidates
            if self.reranker is not None and candidates:
                t0 = time.perf_counter()
                hits = self.reranker.rerank(q, candidates, top_k=k_final)
                t["rerank"] = time.perf_counter() - t0
            out.append(Retrieval(q, hits[:k_final], request, t, candidates))
        return out

    def retrieve(self, query: str | Query, **kwargs: Any) -> Hits:
        """The hits of :meth:`run` (a list that displays in notebooks, with the query and
        the seconds per step)."""
        result = self.run(query, **kwargs)
        return Hits(result.hits, query=result.query, timings=result.timings)

    def retrieve_many(
        self,
        queries: Sequence[str | Query],
        *,
        filters: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Hits]:
        """The hits of :meth:`run_many` for each query (``filters``, when given, for all
        of them; keywords as :meth:`run`)."""
        results = self.run_many([as_query(q, filters) for q in queries], **kwargs)
        return [Hits(r.hits, query=r.query, timings=r.timings) for r in results]

    def _no_route(self, q: Query) -> None:
        """No embedder read the query: an image with no text in it gives no hits (when
        image queries are read by OCR); anything else is an error."""
        if q.image is not None and not q.text:
            logger.info("image query: no text found in it and no embedder reads its pixels")
            if self.config.image_ocr:
                return
        what = "image" if q.image is not None and not q.text else "this"
        raise RagnestError(
            f"no embedder in this pipeline reads {what} query "
            f"(embedders: {', '.join(self.embedders)})"
        )
