"""Each final hit's score at every funnel stage, recomputed from its stored vectors.

Qdrant returns only the outermost score of a nested-prefetch query. To show what each
rung of the ladder thought of a hit, the store fetches the final hits' vectors (a
handful of points) and scores them here the way the engine does: dot or cosine for
dense vectors, MaxSim (sum over query rows of the best document row) for
multi-vectors::

    >>> import numpy as np
    >>> from ragnest.types import VectorSpec
    >>> spec = VectorSpec(name="mid", kind="multi", dim=2)
    >>> stage_score(spec, np.array([[1.0, 0.0], [0.0, 1.0]]), [[0.5, 0.5], [1.0, 0.0]])
    1.5

Sparse stages with the IDF modifier are left out: their weights depend on corpus
statistics only the engine holds; the route's own score shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ragnest.types import Hit, Route, VectorSpec

__all__ = ["scored_kinds", "stage_score", "with_stage_scores"]


def scored_kinds(spec: VectorSpec) -> bool:
    """Whether :func:`stage_score` can score vectors of ``spec``."""
    return spec.kind in ("dense", "multi")


def _rows(value: Any, spec: VectorSpec) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if spec.kind == "multi" and arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if spec.distance == "cosine":
        norms = np.linalg.norm(arr, axis=-1, keepdims=True)
        arr = arr / np.where(norms == 0, 1.0, norms)
    return arr


def stage_score(spec: VectorSpec, query: Any, stored: Any) -> float | None:
    """The engine's similarity of ``query`` and a ``stored`` vector, or ``None`` when
    the point has no such vector or the kind is not scored here."""
    if stored is None or not scored_kinds(spec):
        return None
    q, d = _rows(query, spec), _rows(stored, spec)
    if d.size == 0:
        return None
    if spec.kind == "dense":
        return float(q.ravel() @ d.ravel())
    return float((q @ d.T).max(axis=1).sum())


def with_stage_scores(
    hits: list[Hit],
    routes: Sequence[Route],
    specs: Mapping[str, VectorSpec],
    fetch: Callable[[Sequence[str], Sequence[str]], Mapping[str, Mapping[str, Any]]],
) -> list[Hit]:
    """``hits`` with each dense/multi stage's score added (by vector name).

    ``fetch(ids, names)`` returns ``{point id: {vector name: stored vector}}``.
    """
    stages = [st for r in routes for st in r.stages if scored_kinds(specs[st.vector])]
    if not hits or not stages:
        return hits
    stored = fetch([h.chunk.id for h in hits], sorted({st.vector for st in stages}))
    out = []
    for hit in hits:
        scores = dict(hit.scores_by_stage)
        vecs = stored.get(hit.chunk.id, {})
        for st in stages:
            value = stage_score(specs[st.vector], st.query, vecs.get(st.vector))
            if value is not None:
                scores[st.vector] = value
        out.append(Hit(chunk=hit.chunk, score=hit.score, scores_by_stage=scores))
    return out
