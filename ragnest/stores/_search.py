"""Searches as the front door runs them: plans, one engine batch, payloads of the final hits.

:func:`run_searches` answers any number of :class:`~ragnest.types.SearchRequest` with
one batch query to the engine (every request's top-level queries together) that returns
ids and scores only; the requests' rankings are made from those (fusion included), and
then the payloads of the final hits alone (of every request) are fetched in one call.
Per-stage scores (``SearchRequest.stage_scores``) are computed only for requests that
ask for them (:mod:`ragnest.stores._stage_scores`).

Funnel budgets follow the collection's size: the points matching a request's filter
(the engine's estimate, cached by the backend until the data changes) bound what each
stage may keep (:func:`ragnest.stores._plan.sized_stages`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ragnest.stores._backend import Row
from ragnest.stores._fusion import Ranked, rank_rows, to_hits
from ragnest.stores._guard import GuardedBackend
from ragnest.stores._plan import QueryPlan, build_plan, exact_below
from ragnest.stores._stage_scores import with_stage_scores
from ragnest.types import Hit, SearchRequest, VectorSpec

__all__ = ["SearchSettings", "run_searches"]


@dataclass(frozen=True)
class SearchSettings:
    """The store's search knobs (see ``QdrantStore``)."""

    hnsw_ef: int
    exact_search_kb: int
    funnel_share: float
    where: str


def run_searches(
    backend: GuardedBackend,
    specs: Mapping[str, VectorSpec],
    requests: Sequence[SearchRequest],
    settings: SearchSettings,
) -> list[list[Hit]]:
    """The hits of each request, in order (see the module docs)."""
    exact = exact_below(settings.exact_search_kb, backend.estimate)
    plans: list[QueryPlan | None] = [
        build_plan(request, specs, hnsw_ef=settings.hnsw_ef, where=settings.where, exact=exact,
                   points=backend.estimate, share=settings.funnel_share)
        for request in requests
    ]
    batch = [node for plan in plans if plan is not None for node in plan.requests]
    results: list[list[Row]] = backend.query(batch) if batch else []
    ranked: list[list[Ranked]] = []
    at = 0
    for plan in plans:
        if plan is None:
            ranked.append([])
            continue
        ranked.append(rank_rows(plan, results[at : at + len(plan.requests)]))
        at += len(plan.requests)
    ids = list(dict.fromkeys(pid for rows in ranked for pid, _, _ in rows))
    payloads = dict(backend.retrieve(ids)) if ids else {}
    out = []
    for request, plan, rows in zip(requests, plans, ranked):
        hits = to_hits(rows, payloads)
        if plan is not None and request.stage_scores:  # every stage asked for, even one
            # the plan left out for keeping every point
            hits = with_stage_scores(hits, request.routes, specs, backend.vectors)
        out.append(hits)
    return out
