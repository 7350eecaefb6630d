"""Answer metrics for one query and their means over a run.

* ``citation_accuracy``: the share of an answer's citations whose page is a gold page;
* ``region_iou``: for each citation with a region on a page that has gold boxes, the
  best IoU with one of them, averaged; ``region_hit``: the share of those at IoU >= 0.5;
* ``exact_match`` / ``token_f1`` where the query has gold answer strings;
* ``abstained``: the generator said the documents do not contain the answer.

A metric a query cannot have (no citations, no boxes, no gold strings) is left out of
its mean rather than counted as 0::

    >>> from ragnest.types import Answer, Citation
    >>> cite = Citation(chunk_id="c", document_id="d", source="/docs/a.pdf", page=2,
    ...                 bbox=(0, 0, 10, 10))
    >>> row = answer_scores(Answer(text="The red valve.", citations=(cite,)),
    ...                     gold={"a.pdf#p2": 1}, unit=lambda s, p: f"a.pdf#p{p}",
    ...                     boxes={"a.pdf#p2": [(0, 0, 10, 20)]}, answers=["red valve"])
    >>> row["citation_accuracy"], row["region_iou"], row["exact_match"], row["abstained"]
    (1.0, 0.5, 1.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ragnest.eval.metrics import exact_match, iou, token_f1
from ragnest.types import Answer

__all__ = ["ANSWER_METRICS", "answer_scores", "mean_answer_scores"]

ANSWER_METRICS = ("citation_accuracy", "region_iou", "region_hit", "exact_match", "token_f1",
                  "abstained")


def answer_scores(
    answer: Answer,
    *,
    gold: Mapping[str, int],
    unit: Callable[[str, int | None], str | None],
    boxes: Mapping[str, Sequence[Sequence[float]]] | None = None,
    answers: Sequence[str] = (),
) -> dict[str, Any]:
    """The answer metrics of one query (see the module docs)."""
    row: dict[str, Any] = {"abstained": 0.0 if answer.found else 1.0}
    cited = [(unit(c.source, c.page), c.bbox) for c in answer.citations]
    if cited:
        row["citation_accuracy"] = sum(gold.get(u or "", 0) > 0 for u, _ in cited) / len(cited)
    ious = [max(iou(b, g) for g in boxes[u]) for u, b in cited
            if b is not None and u is not None and boxes and boxes.get(u)]
    if ious:
        row["region_iou"] = sum(ious) / len(ious)
        row["region_hit"] = sum(v >= 0.5 for v in ious) / len(ious)
    if answers:  # an abstention scores 0
        text = answer.text if answer.found else ""
        row["exact_match"] = exact_match(text, answers)
        row["token_f1"] = token_f1(text, answers)
    return row


def mean_answer_scores(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Each metric's mean over the queries that have it (with ``n_<metric>`` counts)."""
    out: dict[str, float] = {}
    for name in ANSWER_METRICS:
        values = [r[name] for r in rows if name in r]
        if values:
            out[name] = sum(values) / len(values)
            out[f"n_{name}"] = len(values)
    return out
