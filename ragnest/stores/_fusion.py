"""A plan's rows as hits, and client-side "relative" fusion (per-route min-max
normalisation, then a weighted sum).

>>> fused = relative_fusion([[("a", 3.0, {}), ("b", 1.0, {})], [("b", 0.9, {})]],
...                         names=["dense", "bm25"], weights=[1.0, 1.0], limit=2)
>>> [(pid, round(score, 2), raw) for pid, score, _, raw in fused]
[('a', 1.0, {'dense': 3.0}), ('b', 1.0, {'dense': 1.0, 'bm25': 0.9})]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ragnest.stores._backend import Row, to_chunk
from ragnest.stores._plan import QueryPlan
from ragnest.types import Hit

__all__ = ["hits_from_rows", "normalise", "relative_fusion"]


def normalise(scores: Sequence[float]) -> list[float]:
    """Min-max into [0, 1]; a route whose scores are all equal maps them to 1.0."""
    if not scores:
        return []
    lo, hi = min(scores), max(scores)
    if hi - lo <= 1e-12:
        return [1.0] * len(scores)
    return [(s - lo) / (hi - lo) for s in scores]


def relative_fusion(
    per_route: Sequence[Sequence[Row]],
    *,
    names: Sequence[str],
    weights: Sequence[float],
    limit: int,
) -> list[tuple[str, float, dict[str, Any], dict[str, float]]]:
    """Fuse routes' rows: ``(id, fused score, payload, {route name: raw score})``, best first.

    A point a route did not return contributes 0 for that route. Ties break on the best
    rank a point reached (earlier routes first), then on id, so results are stable.
    """
    fused: dict[str, float] = {}
    payloads: dict[str, dict[str, Any]] = {}
    raw: dict[str, dict[str, float]] = {}
    best: dict[str, tuple[int, int]] = {}
    for r, (rows, name, weight) in enumerate(zip(per_route, names, weights)):
        norm = normalise([score for _, score, _ in rows])
        for rank, ((pid, score, payload), n) in enumerate(zip(rows, norm)):
            fused[pid] = fused.get(pid, 0.0) + float(weight) * n
            payloads.setdefault(pid, payload)
            raw.setdefault(pid, {})[name] = score
            best[pid] = min(best.get(pid, (rank, r)), (rank, r))
    order = sorted(fused, key=lambda pid: (-fused[pid], best[pid], pid))
    return [(pid, fused[pid], payloads[pid], raw[pid]) for pid in order[:limit]]


def hits_from_rows(plan: QueryPlan, results: Sequence[Sequence[Row]]) -> list[Hit]:
    """The hits of ``plan`` from the rows its requests returned (in request order).

    ``scores_by_stage`` holds ``final``, plus the route's own score for one route, or each
    route's raw score under ``relative`` fusion.
    """
    if plan.fusion == "relative":
        fused = relative_fusion(
            results,
            names=[r.name for r in plan.routes],
            weights=[r.weight for r in plan.routes],
            limit=plan.limit,
        )
        return [
            Hit(chunk=to_chunk(pid, payload), score=score, scores_by_stage={"final": score, **raw})
            for pid, score, payload, raw in fused
        ]
    single = plan.routes[0].name if len(plan.routes) == 1 else None
    return [
        Hit(
            chunk=to_chunk(pid, payload),
            score=score,
            scores_by_stage={"final": score, **({single: score} if single else {})},
        )
        for pid, score, payload in results[0]
    ]
