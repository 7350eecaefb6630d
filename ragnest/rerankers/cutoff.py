"""The adaptive cut-off every reranker applies: how many reranked candidates to keep.

* calibrated scores (probabilities, e.g. ``sigmoid(logit_yes - logit_no)``): keep the
  candidates whose probability is at least ``threshold``, clamped to
  ``[min_k, max_k]``; when **none** clears the threshold nothing is kept, so the answer
  says the documents do not contain it instead of reading weak pages;
* uncalibrated scores (a reranker that could not read one side of its yes/no answer):
  cut at the largest gap between consecutive sorted scores, clamped to ``[min_k, max_k]``.

The reranked hits carry their score in ``scores_by_stage["rerank"]`` (and the
probability in ``"rerank_probability"`` when there is one)::

    >>> keep_count([0.95, 0.9, 0.2, 0.1], calibrated=True, threshold=0.5, min_k=1, max_k=8)
    2
    >>> keep_count([0.3, 0.2], calibrated=True, threshold=0.5, min_k=1, max_k=8)
    0
    >>> keep_count([9.0, 8.5, 8.1, 2.0, 1.9], calibrated=False, threshold=0.5, min_k=1, max_k=8)
    3
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from ragnest.types import Hit

__all__ = ["apply_cutoff", "keep_count", "sigmoid"]


def sigmoid(x: float) -> float:
    """``1 / (1 + e^-x)`` without overflow."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def keep_count(
    scores: Sequence[float], *, calibrated: bool, threshold: float, min_k: int, max_k: int
) -> int:
    """How many of ``scores`` (sorted best first) to keep (see the module docs)."""
    n = len(scores)
    if n == 0:
        return 0
    if min_k < 0 or max_k < 1 or min_k > max_k:
        raise ValueError(f"cut-off needs 0 <= min_k <= max_k and max_k >= 1, got {min_k}, {max_k}")
    if calibrated:
        above = sum(1 for s in scores if s >= threshold)
        if above == 0:
            return 0
        return min(n, max_k, max(above, min_k))
    if n == 1:
        return 1
    gaps = [scores[i] - scores[i + 1] for i in range(n - 1)]
    cut = max(range(len(gaps)), key=lambda i: gaps[i]) + 1  # first index of the weak tail
    return min(n, max_k, max(cut, min_k, 1))


def apply_cutoff(
    hits: Sequence[Hit],
    scores: Sequence[float],
    *,
    probabilities: Sequence[float] | None = None,
    threshold: float = 0.5,
    min_k: int = 1,
    max_k: int = 8,
) -> list[Hit]:
    """``hits`` re-ordered by ``scores`` (best first), each with its rerank score (and
    probability) in ``scores_by_stage``, cut to the adaptive count.

    ``probabilities`` given means the scores are calibrated: the threshold applies to
    them; without, the largest-gap rule applies to ``scores``.

    >>> from ragnest.types import Chunk
    >>> hits = [Hit(chunk=Chunk(id=str(i), document_id="d", kind="page"), score=0.0)
    ...         for i in range(3)]
    >>> kept = apply_cutoff(hits, [0.1, 2.0, 1.5], probabilities=[0.52, 0.88, 0.81])
    >>> [(h.chunk.id, h.scores_by_stage["rerank"]) for h in kept]
    [('1', 2.0), ('2', 1.5), ('0', 0.1)]
    """
    if len(scores) != len(hits) or (probabilities is not None and len(probabilities) != len(hits)):
        raise ValueError("one score (and probability) per hit")
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    calibrated = probabilities is not None
    ranked = [probabilities[i] for i in order] if calibrated else [scores[i] for i in order]
    n = keep_count(ranked, calibrated=calibrated, threshold=threshold, min_k=min_k, max_k=max_k)
    out = []
    for i in order[:n]:
        stage = {**hits[i].scores_by_stage, "rerank": float(scores[i])}
        if calibrated:
            stage["rerank_probability"] = float(probabilities[i])  # type: ignore[index]
        out.append(replace(hits[i], score=float(scores[i]), scores_by_stage=stage))
    return out
