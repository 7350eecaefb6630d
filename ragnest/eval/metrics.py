"""Metrics: ranking quality through ir-measures (pytrec_eval underneath, the one adapter
of that library), latency percentiles, and answer metrics.

Ranking measures are ir-measures names: ``nDCG@10``, ``R@5``, ``RR`` (MRR), ``RR@5``,
``AP`` (MAP), ``P@5``, ``Success@1``. A query with no hits scores 0 (it still counts)::

    >>> qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    >>> run = ranking_run({"q1": ["x", "a"], "q2": []})
    >>> ranking_metrics(qrels, run, ["RR", "R@1", "R@2"])[0]
    {'RR': 0.25, 'R@1': 0.0, 'R@2': 0.5}
    >>> percentiles([1.0, 2.0, 3.0, 4.0])
    {'p50': 2.5, 'p95': 3.85}
    >>> round(token_f1("the red valve", ["red valve"]), 3), exact_match("Red valve.", ["red valve"])
    (1.0, 1.0)
    >>> iou((0, 0, 2, 2), (1, 1, 3, 3))
    0.14285714285714285
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ragnest.errors import ConfigError, MissingDependencyError

__all__ = [
    "DEFAULT_MEASURES",
    "exact_match",
    "iou",
    "max_cutoff",
    "parse_measures",
    "percentiles",
    "ranking_metrics",
    "ranking_run",
    "token_f1",
]

DEFAULT_MEASURES = ("nDCG@10", "R@1", "R@5", "R@10", "RR@10", "AP@10")


def _ir_measures() -> Any:
    try:
        import ir_measures
    except ImportError as e:
        raise MissingDependencyError(
            "ranking metrics need ir-measures: pip install 'ragnest[eval]'") from e
    return ir_measures


def parse_measures(names: Iterable[str]) -> list[Any]:
    """ir-measures measure objects for names like ``nDCG@10``; an unknown name is a
    :class:`ConfigError`."""
    irm = _ir_measures()
    out = []
    for name in names:
        try:
            out.append(irm.parse_measure(name))
        except (ValueError, NameError, SyntaxError, TypeError):
            raise ConfigError(f"unknown measure {name!r} (ir-measures names: nDCG@10, R@5, RR, "
                              "RR@10, AP, P@5, Success@1)") from None
    return out


def max_cutoff(names: Iterable[str], default: int = 10) -> int:
    """The largest ``@k`` among measure names (how many hits a run needs).

    >>> max_cutoff(["nDCG@10", "R@100", "RR"])
    100
    """
    cuts = [int(m.group(1)) for n in names if (m := re.search(r"@(\d+)", n))]
    return max(cuts, default=default)


def ranking_run(ranked: Mapping[str, Sequence[str]]) -> dict[str, dict[str, float]]:
    """A run (``{query id: {unit: score}}``) from ranked unit lists, best first: strictly
    decreasing scores, so ties never reorder them; repeated units keep their first rank."""
    run: dict[str, dict[str, float]] = {}
    for qid, units in ranked.items():
        seen: dict[str, float] = {}
        for unit in units:
            if unit not in seen:
                seen[unit] = float(len(units) - len(seen))
        run[qid] = seen
    return run


def ranking_metrics(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    measures: Sequence[str] = DEFAULT_MEASURES,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """``(mean per measure, {query id: {measure: value}})`` over every query of ``qrels``
    (queries missing from ``run`` or without hits score 0)."""
    irm = _ir_measures()
    parsed = parse_measures(measures)
    names = {str(m): n for m, n in zip(parsed, measures)}
    per_query: dict[str, dict[str, float]] = {q: dict.fromkeys(measures, 0.0) for q in qrels}
    nonempty_run = {q: dict(d) for q, d in run.items() if d and q in qrels}
    if nonempty_run:
        for metric in irm.iter_calc(parsed, {q: dict(v) for q, v in qrels.items()}, nonempty_run):
            per_query[metric.query_id][names[str(metric.measure)]] = float(metric.value)
    n = max(1, len(per_query))
    mean = {name: sum(v[name] for v in per_query.values()) / n for name in measures}
    return mean, per_query


def percentiles(values: Sequence[float], qs: Sequence[int] = (50, 95)) -> dict[str, float]:
    """``{"p50": ..., "p95": ...}`` with linear interpolation (numpy's default)."""
    if not values:
        return {f"p{q}": math.nan for q in qs}
    s = sorted(values)
    out = {}
    for q in qs:
        pos = (len(s) - 1) * q / 100
        lo, hi = math.floor(pos), math.ceil(pos)
        out[f"p{q}"] = s[lo] + (s[hi] - s[lo]) * (pos - lo)
    return out


_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _normalise(text: str) -> list[str]:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    return _ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split()


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer."""
    pred = _normalise(prediction)
    return float(any(pred == _normalise(g) for g in golds))


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """Best SQuAD token F1 of the prediction against the gold answers."""
    pred = _normalise(prediction)
    best = 0.0
    for gold in golds:
        g = _normalise(gold)
        common = sum((Counter(pred) & Counter(g)).values())
        if not pred or not g or not common:
            continue
        p, r = common / len(pred), common / len(g)
        best = max(best, 2 * p * r / (p + r))
    return best


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    ax0, ay0, ax1, ay1 = (float(v) for v in a)
    bx0, by0, bx1, by1 = (float(v) for v in b)
    w = min(ax1, bx1) - max(ax0, bx0)
    h = min(ay1, by1) - max(ay0, by0)
    inter = max(0.0, w) * max(0.0, h)
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0
