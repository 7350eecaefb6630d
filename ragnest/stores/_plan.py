"""One query plan for every backend: what a :class:`~ragnest.types.SearchRequest` asks
the engine to do, as library-neutral nodes.

:func:`build_plan` validates the request (vector names, limits, fusion, filters) and
builds the plan once; each backend adapter only translates the nodes into its
library's types (one small recursive translator in ``_edge`` and in ``_client``).

The plan is a list of top-level requests, each a tree:

* a :class:`StageNode` scores one named vector over the candidates of its ``prefetch``
  (or over the whole collection when it has none) and keeps ``limit`` of them: a
  funnel ``coarse -> mid -> fine`` is ``fine(prefetch=mid(prefetch=coarse))``, the
  coarsest stage innermost;
* a :class:`FusionNode` fuses its prefetches (``rrf`` with ``k`` and weights, or
  ``dbsf``) inside the engine.

One route -> one request (its last stage on top, ``limit`` = the request's limit).
Several routes with ``rrf``/``dbsf`` -> one request, a fusion node over one funnel per
route. ``relative`` -> one request per route, run as one batch and fused client-side
(:func:`ragnest.stores._fusion.relative_fusion`). The filter is on every node, so each
stage (the innermost first) only ever sees matching points::

    >>> import numpy as np
    >>> from ragnest.types import Route, SearchRequest, Stage, VectorSpec
    >>> specs = {"coarse": VectorSpec(name="coarse", kind="dense", dim=2, index="hnsw"),
    ...          "fine": VectorSpec(name="fine", kind="multi", dim=2)}
    >>> v = np.ones(2, np.float32)
    >>> route = Route(name="dense", stages=(Stage(vector="coarse", query=v, limit=50),
    ...                                     Stage(vector="fine", query=v[None], limit=10)))
    >>> plan = build_plan(SearchRequest(routes=(route,), limit=5), specs, hnsw_ef=128,
    ...                   where="collection 'demo'")
    >>> top = plan.requests[0]
    >>> (top.vector, top.limit, top.hnsw_ef), (top.prefetch[0].vector, top.prefetch[0].limit)
    (('fine', 5, None), ('coarse', 50))
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Union

from ragnest.errors import ConfigError
from ragnest.stores._filters import Condition, parse_filters
from ragnest.types import FUSIONS, Route, SearchRequest, Stage, Vector, VectorSpec

__all__ = [
    "ExactSearch",
    "FusionNode",
    "PlanNode",
    "QueryPlan",
    "StageNode",
    "build_plan",
    "exact_below",
    "sized_stages",
]

log = logging.getLogger(__name__)

#: The fusions a request may ask for.


@dataclass(frozen=True, kw_only=True)
class StageNode:
    """Score ``vector`` with ``query`` over ``prefetch``'s candidates; keep ``limit``.

    ``hnsw_ef``: the HNSW search parameter, set only on a graph-indexed vector (``None``:
    no search params), never below ``limit``. ``exact``: search every (matching) point
    instead of walking the graph. ``conditions``: the filter (all must hold).
    """

    vector: str
    kind: Literal["dense", "multi", "sparse"]
    query: Vector = field(repr=False)
    limit: int
    hnsw_ef: int | None
    conditions: tuple[Condition, ...]
    prefetch: tuple[PlanNode, ...] = ()
    exact: bool = False


@dataclass(frozen=True, kw_only=True)
class FusionNode:
    """Fuse the candidates of ``prefetch`` inside the engine; keep ``limit``.

    ``method`` ``rrf`` uses ``k`` and ``weights`` (one per prefetch); ``dbsf`` neither.
    """

    method: Literal["rrf", "dbsf"]
    k: int
    weights: tuple[float, ...]
    limit: int
    conditions: tuple[Condition, ...]
    prefetch: tuple[PlanNode, ...]


#: A node of a plan's tree.
PlanNode = Union[StageNode, FusionNode]


@dataclass(frozen=True, kw_only=True)
class QueryPlan:
    """The top-level ``requests`` (run as one batch) and how to read their results.

    ``fusion``: ``"engine"`` (one request; its rows are the hits), or ``"relative"``
    (one request per route; the store fuses their rows). ``routes`` are the request's
    routes (names, weights and stages, for per-stage scores), ``limit`` its limit.
    """

    requests: tuple[PlanNode, ...]
    fusion: Literal["engine", "relative"]
    routes: tuple[Route, ...]
    limit: int


#: Decides whether a route's first, graph-indexed stage searches exactly: called with
#: the stage's vector spec and the request's filter conditions.
ExactSearch = Callable[[VectorSpec, tuple[Condition, ...]], bool]

#: Points matching a filter (an estimate is enough): called with the filter's conditions.
PointCount = Callable[[tuple[Condition, ...]], int]

#: Bytes a stored value takes, by datatype (float32 otherwise).
_WIDTH = {"float16": 2.0, "uint8": 1.0, "turbo4": 0.5, "turbo8": 1.0, "turbo16": 2.0}


def exact_below(
    limit_kb: int, count: Callable[[tuple[Condition, ...]], int]
) -> ExactSearch | None:
    """Exact search where the points matching the filter (``count(conditions)``, asked
    once a request) hold at most ``limit_kb`` KB of the stage's vector; ``0``: never.

    >>> from ragnest.types import VectorSpec
    >>> exact = exact_below(1000, lambda conditions: 2000)
    >>> exact(VectorSpec(name="c", kind="dense", dim=256), ())  # 2000 x 1 KB: the graph
    False
    >>> exact(VectorSpec(name="c", kind="dense", dim=64), ())  # 2000 x 0.25 KB: a scan
    True
    """
    if not limit_kb:
        return None
    counts: dict[int, int] = {}  # a plan shares one conditions tuple

    def exact(spec: VectorSpec, conditions: tuple[Condition, ...]) -> bool:
        if id(conditions) not in counts:
            counts[id(conditions)] = count(conditions)
        kb = (spec.dim or 0) * _WIDTH.get(spec.datatype, 4.0) / 1024
        return counts[id(conditions)] * kb <= limit_kb

    return exact


def sized_stages(stages: Sequence[Stage], points: int, share: float = 1.0) -> tuple[Stage, ...]:
    """A route's stages with budgets that follow the collection's size.

    A stage before the last keeps at most ``share`` of the candidates it scores (the
    ``points`` matching the filter, for the first stage); a stage that would keep all of
    them discards nothing and is left out: the next stage scores those candidates itself,
    so leaving it out never changes which points reach the next stage. The last stage
    is always kept (it ranks the route's output). ``share`` 1.0 (the default) only
    leaves out such stages; below 1.0 it also trims the budgets (faster on small
    collections, at some recall: measure it on your data).

    >>> import numpy as np
    >>> from ragnest.types import Stage
    >>> v = np.ones(2, np.float32)
    >>> funnel = [Stage(vector=n, query=v, limit=lim)
    ...           for n, lim in (("coarse", 1000), ("mid", 200), ("fine", 50))]
    >>> [(s.vector, s.limit) for s in sized_stages(funnel, 700)]   # coarse would keep all
    [('mid', 200), ('fine', 50)]
    >>> [(s.vector, s.limit) for s in sized_stages(funnel, 100_000)]
    [('coarse', 1000), ('mid', 200), ('fine', 50)]
    >>> [(s.vector, s.limit) for s in sized_stages(funnel, 700, share=0.5)]
    [('coarse', 350), ('mid', 175), ('fine', 50)]
    """
    if not 0.0 < share <= 1.0:
        raise ConfigError(f"funnel share {share!r}: expected a number in (0, 1]")
    out: list[Stage] = []
    available = max(0, int(points))
    last = len(stages) - 1
    for i, stage in enumerate(stages):
        if i == last:
            out.append(stage)
            break
        # never fewer than the route's output (what its last stage keeps)
        floor = stages[last].limit
        cap = max(floor, math.ceil(share * available)) if share < 1.0 else available
        keep = min(stage.limit, cap)
        if keep >= available:
            continue  # keeps every candidate: nothing to discard
        out.append(stage if keep == stage.limit else replace(stage, limit=keep))
        available = keep
    return tuple(out)


def build_plan(
    request: SearchRequest,
    specs: Mapping[str, VectorSpec],
    *,
    hnsw_ef: int,
    where: str,
    exact: ExactSearch | None = None,
    points: PointCount | None = None,
    share: float = 1.0,
) -> QueryPlan | None:
    """Validate ``request`` against the collection's ``specs`` and plan it.

    A graph-indexed (HNSW) stage searches with ``ef = max(hnsw_ef, its limit)``; the
    first stage of a route (the one that searches the whole collection) searches exactly
    where ``exact(spec, conditions)`` says so (a small collection, a narrow filter).
    With ``points`` (the points matching the filter), each route's budgets follow the
    collection's size (:func:`sized_stages`, with ``share``).
    Returns ``None`` for a request that asks for nothing (no routes, ``limit <= 0``).
    Raises :class:`ConfigError` naming the route, stage or filter that is wrong.
    """
    routes = tuple(request.routes)
    if not routes or request.limit <= 0:
        return None
    if request.fusion not in FUSIONS:
        raise ConfigError(f"unknown fusion {request.fusion!r}; use one of {', '.join(FUSIONS)}")
    for route in routes:
        _check_route(route, specs, where)
        for other in route.shared:
            _check_route(other, specs, where)
    if len(routes) > 1 and request.fusion == "rrf":
        k = request.fusion_k
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ConfigError(f"fusion_k={k!r}: expected an integer >= 0")
    conditions = tuple(parse_filters(request.filters))
    limit = request.limit
    if points is not None:
        n = points(conditions)

        def sized(route: Route) -> Route:
            return replace(route, stages=sized_stages(route.stages, n, share),
                           shared=tuple(sized(o) for o in route.shared))

        routes = tuple(sized(r) for r in routes)

    def funnel(route: Route, top_limit: int) -> StageNode:
        """``route``'s stages nested coarse (innermost) to fine, the outermost keeping
        ``top_limit``; its shared routes' funnels are extra prefetches of the outermost."""
        node: StageNode | None = None
        stages = route.stages
        for i, stage in enumerate(stages):
            spec = specs[stage.vector]
            last = i == len(stages) - 1
            stage_limit = top_limit if last else stage.limit
            graph = spec.index == "hnsw" and spec.kind != "sparse"
            inner: tuple[PlanNode, ...] = (node,) if node is not None else ()
            if last and inner and route.shared:
                inner += tuple(funnel(o, o.stages[-1].limit) for o in route.shared)
            node = StageNode(
                vector=stage.vector,
                kind=spec.kind,
                query=stage.query,
                limit=stage_limit,
                hnsw_ef=max(hnsw_ef, stage_limit) if graph else None,
                conditions=conditions,
                prefetch=inner,
                exact=bool(graph and i == 0 and exact is not None and exact(spec, conditions)),
            )
        assert node is not None
        return node

    if len(routes) == 1:
        return QueryPlan(requests=(funnel(routes[0], limit),), fusion="engine",
                         routes=routes, limit=limit)
    # Each route hands fusion its last stage's candidates, at least ``limit`` of them.
    tops = tuple(funnel(r, max(r.stages[-1].limit, limit)) for r in routes)
    if request.fusion == "relative":
        return QueryPlan(requests=tops, fusion="relative", routes=routes, limit=limit)
    method: Literal["rrf", "dbsf"] = "dbsf" if request.fusion == "dbsf" else "rrf"
    if method == "dbsf" and any(r.weight != 1.0 for r in routes):
        log.debug("dbsf fusion ignores route weights %s", [r.weight for r in routes])
    fused = FusionNode(
        method=method,
        k=request.fusion_k,
        weights=tuple(float(r.weight) for r in routes),
        limit=limit,
        conditions=conditions,
        prefetch=tops,
    )
    return QueryPlan(requests=(fused,), fusion="engine", routes=routes, limit=limit)


def _check_route(route: Route, specs: Mapping[str, VectorSpec], where: str) -> None:
    if not route.stages:
        raise ConfigError(f"route {route.name!r} has no stages")
    weight = route.weight
    try:
        finite = not isinstance(weight, bool) and math.isfinite(float(weight))
    except (TypeError, ValueError):
        finite = False
    if not finite:
        raise ConfigError(f"route {route.name!r}: weight must be a finite number, got {weight!r}")
    for stage in route.stages:
        if stage.vector not in specs:
            raise ConfigError(
                f"route {route.name!r}: unknown vector {stage.vector!r}; "
                f"{where} has {sorted(specs)}"
            )
        if stage.limit <= 0:
            raise ConfigError(f"route {route.name!r}: stage {stage.vector!r} limit must be > 0")
