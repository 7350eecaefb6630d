"""A plan's rows as hits, and client-side "relative" fusion (per-route min-max
normalisation, then a weighted sum).

>>> fused = relative_fusion([[("a", 3.0, {}), ("b", 1.0, {})], [("b", 0.9, {})]],
...                         names=["dense", "bm25"], weights=[1.0, 1.0], limit=2)
>>> [(pid, round(score, 2), raw) for pid, score, _, raw in fused]
[('a', 1.0, {'dense': 3.0}), ('b', 1.0, {'dense': 1.0, 'bm25': 0.9})]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ragnest.stores._backend import Row, to_chunk
from ragnest.stores._plan import QueryPlan
from ragnest.types import Hit

__all__ = ["Ranked", "hits_from_rows", "normalise", "rank_rows", "relative_fusion", "to_hits"]


def normalise(scores: Sequence[float]) -> list[float]:
    """Min-max into [0, 1]; a route whose scores are all equal maps them to 1.0."""
    if not scores:
        return []
    if _flat(scores):
        return [1.0] * len(scores)
    lo, hi = min(scores), max(scores)
    return [(s - lo) / (hi - lo) for s in scores]


def _flat(scores: Sequence[float]) -> bool:
    """Whether ``scores`` (at least one) are all equal: nothing to rank them by."""
    return max(scores) - min(scores) <= 1e-12


def relative_fusion(
    per_route: Sequence[Sequence[Row]],
    *,
    names: Sequence[str],
    weights: Sequence[float],
    limit: int,
    asked: Sequence[int] | None = None,
) -> list[tuple[str, float, dict[str, Any], dict[str, float]]]:
    """Fuse routes' rows: ``(id, fused score, payload, {route name: raw score})``, best first.

    A point a route did not return contributes 0 for that route. Ties break on the best
    rank a point reached (earlier routes first), then on id, so results are stable.
    ``asked``: the rows each route asked the engine for. A route that returned that many
    rows, all of one score, is left out (unless every route is): points of that score
    beyond its limit were cut in no fixed order (a query of numbers alone can tie every
    page), so which rows came back is chance and would change the hits from run to run.

    >>> tied = [("a", 1.0, {}), ("b", 1.0, {})]
    >>> other = [("c", 0.5, {}), ("b", 0.1, {})]
    >>> [pid for pid, *_ in relative_fusion([tied, other], names=["dense", "bm25"],
    ...                                     weights=[1.0, 1.0], limit=3, asked=[2, 2])]
    ['c', 'b']
    """
    fused: dict[str, float] = {}
    payloads: dict[str, dict[str, Any]] = {}
    raw: dict[str, dict[str, float]] = {}
    best: dict[str, tuple[int, int]] = {}
    tied = {r for r, rows in enumerate(per_route)
            if asked is not None and len(rows) >= asked[r] > 1
            and _flat([score for _, score, _ in rows])}
    for r, (rows, name, weight) in enumerate(zip(per_route, names, weights)):
        if r in tied and len(tied) < len(per_route):
            continue  # all tied at its limit: which rows came back is chance
        norm = normalise([score for _, score, _ in rows])
        for rank, ((pid, score, payload), n) in enumerate(zip(rows, norm)):
            fused[pid] = fused.get(pid, 0.0) + float(weight) * n
            payloads.setdefault(pid, payload)
            raw.setdefault(pid, {})[name] = score
            best[pid] = min(best.get(pid, (rank, r)), (rank, r))
    order = sorted(fused, key=lambda pid: (-fused[pid], best[pid], pid))
    return [(pid, fused[pid], payloads[pid], raw[pid]) for pid in order[:limit]]


#: A ranked result before its payload is fetched: (point id, score, scores by stage).
Ranked = tuple[str, float, dict[str, float]]


def rank_rows(plan: QueryPlan, results: Sequence[Sequence[Row]]) -> list[Ranked]:
    """The final ranking of ``plan`` from the rows its requests returned (in request
    order): ids and scores only, so payloads are fetched for these points alone.

    ``scores_by_stage`` holds ``final``, plus the route's own score for one route, or each
    route's raw score under ``relative`` fusion. Points of equal score are ordered by id
    (the engine returns ties in any order), so the same search gives the same hits.
    """
    results = [sorted(rows, key=_best_first) for rows in results]
    if plan.fusion == "relative":
        fused = relative_fusion(
            results,
            names=[r.name for r in plan.routes],
            weights=[r.weight for r in plan.routes],
            limit=plan.limit,
            asked=[node.limit for node in plan.requests],
        )
        return [(pid, score, {"final": score, **raw}) for pid, score, _, raw in fused]
    single = plan.routes[0].name if len(plan.routes) == 1 else None
    return [
        (pid, score, {"final": score, single: score} if single else {"final": score})
        for pid, score, _ in results[0]
    ]


def _best_first(row: Row) -> tuple[float, str]:
    return -row[1], row[0]


def to_hits(ranked: Sequence[Ranked], payloads: Mapping[str, Mapping[str, Any]]) -> list[Hit]:
    """``ranked`` as hits with their chunks (a point whose payload is missing, deleted
    between the search and the fetch, is left out)."""
    return [
        Hit(chunk=to_chunk(pid, payloads[pid]), score=score, scores_by_stage=stages)
        for pid, score, stages in ranked
        if pid in payloads
    ]


def hits_from_rows(plan: QueryPlan, results: Sequence[Sequence[Row]]) -> list[Hit]:
    """The hits of ``plan`` from rows that carry their payloads (see :func:`rank_rows`)."""
    payloads = {pid: payload for rows in results for pid, _, payload in rows}
    return to_hits(rank_rows(plan, results), payloads)
