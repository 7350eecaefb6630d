"""Evaluate a pipeline: datasets (BEIR, ViDoRe, a folder of PDFs, or an eval set made
from your own documents), ranking metrics through ir-measures, latency, bytes per page,
answer metrics, and sweeps of stage limits, ladder levels and rerank depth on one ingest.

In a notebook the results display as a table with the recall-vs-latency and
quality-vs-bytes plots::

    >>> import tempfile
    >>> from ragnest import Pipeline
    >>> from ragnest import eval as rev
    >>> with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": tempfile.mkdtemp()}) as rag:
    ...     ds = rev.known_item_set(["examples/docs/nimbus3_handbook.pdf"], 5)
    ...     results = rev.evaluate(rag, ds, sweep=["budget.coarse=20,200"], progress=False)
    >>> len(results.rows), "nDCG@10" in results.rows[0]
    (2, True)

Heavy parts load on use: ir-measures (metrics), pyarrow (ViDoRe), matplotlib (plots);
``pip install 'ragnest[eval]'`` installs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragnest.eval.answers import ANSWER_METRICS, answer_scores, mean_answer_scores
from ragnest.eval.dataset import CorpusItem, EvalDataset, EvalQuery, GoldBox, page_unit
from ragnest.eval.generate import crop_set, generated_set, known_item_set
from ragnest.eval.loaders import load_beir, load_dataset, load_pdf_folder, save_queries
from ragnest.eval.metrics import (
    DEFAULT_MEASURES,
    exact_match,
    iou,
    percentiles,
    ranking_metrics,
    ranking_run,
    token_f1,
)
from ragnest.eval.results import EvalResults, pareto_front
from ragnest.eval.runner import Evaluator
from ragnest.eval.sweep import Setting, parse_sweeps
from ragnest.eval.vidore import load_vidore

__all__ = [
    "ANSWER_METRICS",
    "DEFAULT_MEASURES",
    "CorpusItem",
    "EvalDataset",
    "EvalQuery",
    "EvalResults",
    "Evaluator",
    "GoldBox",
    "Setting",
    "answer_scores",
    "crop_set",
    "evaluate",
    "exact_match",
    "generated_set",
    "iou",
    "known_item_set",
    "load_beir",
    "load_dataset",
    "load_pdf_folder",
    "load_vidore",
    "mean_answer_scores",
    "page_unit",
    "pareto_front",
    "parse_sweeps",
    "percentiles",
    "ranking_metrics",
    "ranking_run",
    "save_queries",
    "token_f1",
]


def evaluate(
    pipeline: Any,
    dataset: EvalDataset | str | Path,
    *,
    sweep: Sequence[str] | Sequence[Setting] = (),
    measures: Sequence[str] = DEFAULT_MEASURES,
    k: int | None = None,
    answers: bool | None = None,
    progress: bool = True,
) -> EvalResults:
    """Ingest ``dataset`` (an :class:`EvalDataset` or a path for :func:`load_dataset`)
    into ``pipeline`` once and run every setting of ``sweep`` (``"KEY=V1,V2"`` specs or
    :class:`Setting` objects; none: the pipeline as configured)."""
    ds = dataset if isinstance(dataset, EvalDataset) else load_dataset(dataset)
    settings = [s for s in sweep if isinstance(s, Setting)] or parse_sweeps(
        [s for s in sweep if isinstance(s, str)])
    evaluator = Evaluator(pipeline, ds, measures=measures, k=k, answers=answers)
    try:
        return evaluator.run(settings, progress=progress)
    finally:
        evaluator.close()
