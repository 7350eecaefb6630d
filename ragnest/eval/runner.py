"""Evaluate a pipeline on a dataset: one ingest, then every setting of a sweep.

    >>> import tempfile
    >>> from ragnest import Pipeline
    >>> from ragnest.eval import Evaluator, known_item_set, parse_sweeps
    >>> with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": tempfile.mkdtemp()}) as rag:
    ...     ds = known_item_set(["examples/docs/nimbus3_handbook.pdf"], 5)
    ...     results = Evaluator(rag, ds, measures=["R@1", "R@5"], k=5).run(
    ...         parse_sweeps(["using=bm25,dense"]), progress=False)
    >>> [row["setting"] for row in results.rows]
    ['using=bm25', 'using=dense']

Each query runs alone (``Retriever.run``), so its latency is what a user waits; steps
come from the retriever's own timings (``embed``, ``search``, ``rerank``, ``ocr``), then
``retrieve`` (wall time of the retrieval, what the table and plots show), ``generate``
when answers are scored, and ``total`` (both).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from ragnest.errors import ConfigError
from ragnest.eval.answers import answer_scores, mean_answer_scores
from ragnest.eval.dataset import EvalDataset
from ragnest.eval.metrics import (
    DEFAULT_MEASURES,
    max_cutoff,
    percentiles,
    ranking_metrics,
    ranking_run,
)
from ragnest.eval.results import EvalResults
from ragnest.eval.sizes import bytes_per_page, sample_vector_bytes, setting_vectors
from ragnest.eval.sweep import Setting, restrict_levels
from ragnest.pipeline import Pipeline
from ragnest.retrieval import Retriever

__all__ = ["Evaluator", "Progress"]

logger = logging.getLogger(__name__)

#: progress callback: (done, total, what)
Progress = Callable[[int, int, str], None]


class Evaluator:
    """Runs settings of one pipeline over one dataset (see the module docs).

    ``measures``: ir-measures names; ``k``: hits per query (default: the largest
    ``@k`` of the measures); ``answers``: also generate and score answers (default:
    when the pipeline has a generator and the dataset has gold answers or boxes);
    ``workdir``: where corpus items are written as files (a temporary folder if not given).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        dataset: EvalDataset,
        *,
        measures: Sequence[str] = DEFAULT_MEASURES,
        k: int | None = None,
        answers: bool | None = None,
        workdir: str | Path | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.dataset = dataset
        self.measures = list(measures)
        self.k = k or max_cutoff(self.measures)
        has_gold = any(q.answers or q.boxes for q in dataset.queries)
        self.answers = bool(pipeline.generator) and has_gold if answers is None else answers
        if self.answers and pipeline.generator is None:
            raise ConfigError("answers=True needs a pipeline with a generator")
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ragnest-eval-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.ingest_info: dict[str, Any] | None = None
        self.vector_bytes: dict[str, float] = {}

    def ingest(self) -> dict[str, Any]:
        """Index the dataset once (a re-run on the same store adds nothing) and measure
        bytes per page on a sample; returns what the ingest did."""
        if self.ingest_info is not None:
            return self.ingest_info
        files = self.dataset.materialise(self.workdir)
        t0 = time.perf_counter()
        report = self.pipeline.ingest([str(f) for f in files], progress=False)
        seconds = time.perf_counter() - t0
        self.vector_bytes = sample_vector_bytes(self.pipeline, files)
        skipped = [{"path": s.path, "reason": s.reason} for s in report.skipped]
        if skipped:
            logger.warning("%d of %d dataset files were not indexed (first: %s: %s)",
                           len(skipped), len(files), skipped[0]["path"], skipped[0]["reason"])
        self.ingest_info = {"files": len(files), "pages": report.pages,
                            "chunks_added": report.chunks_added, "seconds": round(seconds, 3),
                            "skipped": len(skipped), "skipped_first": skipped[:20]}
        return self.ingest_info

    def _retriever(self, s: Setting) -> Retriever:
        rag = self.pipeline
        unknown = [f for f in s.retrieval if f not in {x.name for x in fields(rag.retrieval)}]
        if unknown:
            raise ConfigError(f"setting {s.label!r}: retrieval has no field {unknown[0]!r} "
                              f"(fields: {', '.join(x.name for x in fields(rag.retrieval))})")
        config = replace(rag.retrieval, **s.retrieval) if s.retrieval else rag.retrieval
        if "weights" in s.retrieval:
            config = replace(config, weights={**rag.retrieval.weights, **s.retrieval["weights"]})
        embedders = restrict_levels(rag.embedders, s.levels)
        rag.open()
        return Retriever(embedders, rag.store, config, reranker=rag.reranker)

    def run(self, settings: Sequence[Setting] | None = None, *,
            progress: bool | Progress = True) -> EvalResults:
        """Every setting over every query; the results table (rows in setting order)."""
        settings = list(settings or [Setting()])
        self.ingest()
        total = len(settings) * len(self.dataset)
        bar = _progress(progress, total)
        rows, per_query = [], {}
        done = [0]

        def tick(label: str) -> None:
            done[0] += 1
            bar(done[0], total, label)

        try:
            for s in settings:
                row, detail = self._run_setting(s, lambda label=s.label: tick(label))
                rows.append(row)
                per_query[s.label] = detail
        finally:
            bar(-1, 0, "")
        return EvalResults(rows=rows, per_query=per_query, measures=self.measures,
                           dataset=self.dataset.summary(), ingest=self.ingest_info or {},
                           vector_bytes=dict(self.vector_bytes), k=self.k)

    def _run_setting(self, s: Setting, tick: Callable[[], None]) -> tuple[dict[str, Any], dict]:
        rag = self.pipeline
        retriever = self._retriever(s)
        saved = {}
        if s.rerank:
            if rag.reranker is None:
                raise ConfigError(f"setting {s.label!r}: the pipeline has no reranker")
            for name, value in s.rerank.items():
                if not hasattr(rag.reranker, name):
                    raise ConfigError(f"setting {s.label!r}: the reranker has no parameter {name!r}")
                old = getattr(rag.reranker, name)
                if isinstance(old, (int, float)) and not isinstance(value, (int, float)):
                    raise ConfigError(f"setting {s.label!r}: rerank.{name} takes a number, "
                                      f"not {value!r}")
                saved[name] = old
                setattr(rag.reranker, name, value)
        ranked: dict[str, list[str]] = {}
        steps: dict[str, list[float]] = {}
        answer_rows, hits_kept = [], []
        boxes_by_q = {q.id: _boxes(q) for q in self.dataset.queries}
        try:
            for q in self.dataset.queries:
                t0 = time.perf_counter()
                result = retriever.run(q.to_query(), k=s.k or self.k, budgets=s.budgets or None,
                                       using=s.using, fusion=s.fusion)  # type: ignore[arg-type]
                timings = {**result.timings, "retrieve": time.perf_counter() - t0}
                if self.answers:
                    t1 = time.perf_counter()
                    answer = rag.answer(result.query, result.hits)
                    timings["generate"] = time.perf_counter() - t1
                    answer_rows.append(answer_scores(
                        answer, gold=self.dataset.qrels[q.id], unit=self.dataset.unit,
                        boxes=boxes_by_q[q.id], answers=q.answers))
                timings["total"] = time.perf_counter() - t0
                for step, sec in timings.items():
                    steps.setdefault(step, []).append(sec * 1000)
                ranked[q.id] = [u for h in result.hits
                                if (u := self.dataset.unit(h.chunk.source, h.chunk.page))]
                hits_kept.append(len(result.hits))
                tick()
        finally:
            for name, value in saved.items():
                setattr(rag.reranker, name, value)
            retriever.close()
        mean, per_q = ranking_metrics(self.dataset.qrels, ranking_run(ranked), self.measures)
        latency = {step: percentiles(v) for step, v in steps.items()}
        vectors = setting_vectors(rag.embedders, s.using, s.levels)
        row: dict[str, Any] = {
            "setting": s.label, "params": s.to_dict(), "queries": len(self.dataset),
            **mean,
            "latency_ms": latency,
            "bytes_per_page": bytes_per_page(self.vector_bytes, vectors),
            "vectors": vectors,
            "hits_mean": sum(hits_kept) / max(1, len(hits_kept)),
        }
        if self.answers:
            row["answers"] = mean_answer_scores(answer_rows)
        detail = {qid: {"ranked": ranked[qid][:self.k], **per_q[qid]} for qid in ranked}
        return row, detail

    def close(self) -> None:
        """Remove the temporary work folder (not the store)."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _boxes(q: Any) -> dict[str, list[tuple[float, float, float, float]]]:
    out: dict[str, list[tuple[float, float, float, float]]] = {}
    for b in q.boxes:
        out.setdefault(b.unit, []).append(b.box)
    return out


def _progress(progress: bool | Progress, total: int) -> Progress:
    """A callback: ``tqdm.auto`` when ``True``, nothing when ``False``; ``done=-1`` closes."""
    if callable(progress):
        return progress
    if not progress:
        return lambda done, total, what: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="eval", unit="query")

    def update(done: int, total_: int, what: str) -> None:
        if done < 0:
            bar.close()
            return
        bar.set_postfix_str(what[:40], refresh=False)
        bar.update(done - bar.n)

    return update
