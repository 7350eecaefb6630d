"""``ray_ingest``: the same pipeline YAML, ingested by a Ray Data job.

The driver plans every file against the store (unchanged and moved files are settled
there, as in the local path), makes sure corpus-fitted state (a PCA rotation) exists
once (fitted on a sample here when the store holds none, as ``ragnest fit`` does),
releases the store, and hands the rest to Ray: parsing on CPU tasks, embedding on an
actor pool (``gpus_per_actor`` each, the fitted state shipped to every actor), writing
through ragnest's own Datasink in per-document transactions. Re-running a killed job
skips the documents it committed and finishes the others; nothing is written twice.

    >>> from ragnest.distributed import ray_ingest
    >>> from ragnest.config import load_config
    >>> cfg = load_config("lite", profile="ray", env={"RAGNEST_STORE": "/tmp/rn"})
    >>> cfg.ingest.engine
    'ray'
    >>> report = ray_ingest(["examples/docs"], cfg)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from ragnest.collection import collection_identity, collection_specs, fitted_embedders
from ragnest.config import PipelineConfig
from ragnest.distributed.config import RayConfig
from ragnest.distributed.stages import DocTask, plan_tasks
from ragnest.errors import ConfigError, MissingDependencyError, StoreError
from ragnest.ingest import needs_fit
from ragnest.ingest.report import DocumentReport, IngestReport, SkippedFile
from ragnest.pipeline import Pipeline
from ragnest.protocols import StoreAdmin

__all__ = ["ray_ingest"]

logger = logging.getLogger(__name__)


def _prepare(paths: Iterable[Any], config: PipelineConfig,
             report: IngestReport) -> tuple[list[DocTask], dict[str, Any]]:
    """Plan on the driver, fit once if needed; returns the tasks and what the job
    needs (specs, identity, fitted states). The store is closed afterwards."""
    with Pipeline.from_config(config) as rag:
        rag.open(write=True)
        tasks = plan_tasks(paths, rag.parsers, rag.store, report)
        if tasks and needs_fit(rag.embedders):
            fitted = rag.fit([t.source.path for t in tasks if t.source.path])
            logger.warning("fitted %s on a sample of this ingest's files (no fitted state was "
                           "stored); `ragnest fit` fits on the whole corpus instead",
                           ", ".join(fitted))
        job = {
            "specs": collection_specs(rag.embedders),
            "identity": collection_identity(rag.embedders),
            "states": {k: e.fitted_state() for k, e in fitted_embedders(rag.embedders).items()},
        }
    return tasks, job


def _optimize(config: PipelineConfig, job: dict[str, Any]) -> None:
    """Build pending indexes once the job is over (as the local path does)."""
    with Pipeline.from_config(config) as rag:
        store = rag.store
        if isinstance(store, StoreAdmin):
            store.prepare_write()
            store.open(job["specs"], job["identity"])
            store.optimize()


def ray_ingest(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    config: PipelineConfig,
    *,
    ray_config: RayConfig | None = None,
    progress: bool | None = None,
) -> IngestReport:
    """Ingest files and folders with a Ray Data job (see the module docs) and return the
    same :class:`~ragnest.ingest.IngestReport` as :func:`ragnest.ingest.run_ingest`.

    ``ray_config`` defaults to the pipeline's ``ingest.ray`` mapping; ``progress``
    overrides its ``progress``. A broken store raises its
    :class:`~ragnest.errors.StoreError` with ``err.report`` (what was committed is in
    the store; a re-run finishes the rest). Needs ``pip install 'ragnest[ray]'``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    store = config.components[config.store].params
    if store.get("location") is not None:
        raise ConfigError("the ray engine writes from worker processes: use a store they can "
                          "reach (path= on this machine, or url= a Qdrant server), not "
                          f"location={store['location']!r}")
    cfg = ray_config or RayConfig.from_mapping(config.ingest.ray)
    if progress is not None:
        cfg.progress = progress
    try:
        from ragnest.distributed import _ray
    except ImportError as err:
        raise MissingDependencyError(
            "the ray engine needs Ray Data: pip install 'ragnest[ray]'") from err
    start = time.perf_counter()
    report = IngestReport()
    try:
        tasks, job = _prepare(list(paths), config, report)
        order = {t.document_id: i for i, t in enumerate(tasks)}
        rows = (_ray.run_job(tasks, config, cfg, job["specs"], job["identity"], job["states"])
                if tasks else [])
    except StoreError as err:
        report.seconds = time.perf_counter() - start
        report.error = f"{type(err).__name__}: {err}"
        err.report = report
        logger.error("ray ingest stopped: %s", err)
        raise
    done: list[DocumentReport] = []
    for row in rows:
        if "document" in row:
            done.append(row["document"])
        else:
            path, reason = row["skipped"]
            report.skipped.append(SkippedFile(path, reason))
    done.sort(key=lambda d: order.get(d.document_id, len(order)))
    report.documents.extend(done)
    if report.chunks_added:
        _optimize(config, job)
    report.seconds = time.perf_counter() - start
    return report
