"""The one module that imports Ray: the Ray Data job of a distributed ingest.

``from_items(planned tasks) -> map_batches(parse, CPU tasks; a big PDF's page ranges as
nested tasks) -> map_batches(_Embed, an actor pool, num_gpus per actor) ->
write_datasink(RagnestDatasink)``. Rows are ``{"document_id": str, "task": bytes}`` (a
pickled :class:`~ragnest.distributed.stages.DocTask`), one per document, so a
document's chunks stay together up to its write transaction.

:class:`RagnestDatasink` writes every named vector of every ladder level, the sparse
vectors and the payload of each document through the store's own transaction
(:func:`ragnest.distributed.write.write_task`), and returns one report per document;
the driver assembles the same :class:`~ragnest.ingest.IngestReport` as the local path.
Imported only by :func:`ragnest.distributed.ray_ingest` (and tests), never by
``import ragnest``.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import ray
import ray.data
from ray.data import ActorPoolStrategy, DataContext, Datasink
from ray.data.block import Block, BlockAccessor

from ragnest import registry
from ragnest.config import ComponentConfig, PipelineConfig
from ragnest.distributed.config import RayConfig
from ragnest.distributed.stages import (
    DocTask,
    build_components,
    embed_task,
    error_reason,
    load_states,
    pack,
    parse_task,
    unpack,
)
from ragnest.distributed.write import report_row, write_task
from ragnest.errors import StoreError
from ragnest.ingest.pool import parse_noted
from ragnest.protocols import Component
from ragnest.types import VectorSpec

__all__ = ["RagnestDatasink", "connect", "run_job"]

logger = logging.getLogger(__name__)

_PARSERS: dict[str, list[Any]] = {}  # per worker process: parsers built from a config


def connect(cfg: RayConfig) -> bool:
    """Join or start Ray as ``cfg`` says; returns whether this call started it (then the
    caller shuts it down). A Ray already initialised in this process is reused."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
    if cfg.address is None:
        if cfg.num_cpus is not None:
            kwargs["num_cpus"] = cfg.num_cpus
        if cfg.num_gpus is not None:
            kwargs["num_gpus"] = cfg.num_gpus
    ray.init(address=cfg.address, **kwargs)
    return True


def _parsers(config: PipelineConfig) -> list[Any]:
    """The pipeline's parsers, built once per worker process and not warmed up (as in the
    local pool: OCR and unstructured load on first need, not in every worker)."""
    key = hashlib.sha256(pickle.dumps([config.components[n] for n in config.parsers])).hexdigest()
    if key not in _PARSERS:
        built = build_components(config, config.parsers, warm=False)
        _PARSERS[key] = [built[n] for n in config.parsers]
    return _PARSERS[key]


def _parse_range(config: PipelineConfig, index: int, source: Any, start: int | None,
                 stop: int | None) -> tuple[list[Any], tuple[str, ...]]:
    return parse_noted(_parsers(config)[index], source, start, stop)


_parse_range_task = ray.remote(num_cpus=1, max_retries=1)(_parse_range)


def _spread() -> dict[str, Any]:
    """Parse tasks go wherever CPUs are free (spread over the cluster's nodes)."""
    return {"scheduling_strategy": "SPREAD"}


def _rows(tasks: Iterable[DocTask]) -> dict[str, np.ndarray]:
    tasks = list(tasks)
    ids = np.array([t.document_id for t in tasks], dtype=object)
    return {"document_id": ids, "task": np.array([pack(t) for t in tasks], dtype=object)}


def _parse_batch(batch: Mapping[str, Any], *, config: PipelineConfig) -> dict[str, np.ndarray]:
    """A parse task: each document in this process, a big PDF's page ranges spread over
    nested tasks (as the local pool spreads them over processes)."""
    parsers = _parsers(config)
    out: list[DocTask] = []
    for data in batch["task"]:
        task = unpack(data)

        def map_range(parser: Any, source: Any, start: int | None, stop: int | None,
                      index: int = task.parser) -> Any:
            if start is None:
                result = parse_noted(parser, source)
                return lambda: result
            ref = _parse_range_task.remote(config, index, source, start, stop)
            return lambda: ray.get(ref)

        out.append(parse_task(task, parsers, split_pages=config.ingest.split_pages,
                              map_range=map_range))
    return _rows(out)


class _Embed:
    """An embedding actor: the embedders built and warmed up once, the driver's fitted
    state loaded (never fitted here)."""

    def __init__(self, config: PipelineConfig, states: Mapping[str, Any]) -> None:
        built = build_components(config, config.embedders)
        self.embedders = {n: built[n] for n in config.embedders}
        load_states(self.embedders, states)
        self.batch_size = config.ingest.batch_size

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return _rows(embed_task(unpack(d), self.embedders, batch_size=self.batch_size)
                     for d in batch["task"])


class RagnestDatasink(Datasink[list[dict[str, Any]]]):
    """Writes embedded documents into a ragnest store (any backend) with the store's
    transaction; one report (or skip reason) per document comes back to the driver.

    ``store``: the store component's config, rebuilt in each write task; ``specs`` and
    ``identity``: the collection it must hold (a different one is refused). The
    embedded store (``path=``) is written from the driver's node, one task at a time
    (its writer lock admits one process); a server takes parallel writers.
    """

    def __init__(self, store: ComponentConfig, specs: Sequence[VectorSpec],
                 identity: Mapping[str, Any], *, max_points: int = 256,
                 max_bytes: int = 16 << 20) -> None:
        self.store = store
        self.specs = tuple(specs)
        self.identity = dict(identity)
        self.max_points = max_points
        self.max_bytes = max_bytes
        self.results: list[dict[str, Any]] = []

    @property
    def local(self) -> bool:
        """Whether the store is a directory on the driver's machine (Qdrant Edge)."""
        return self.store.params.get("path") is not None

    @property
    def supports_distributed_writes(self) -> bool:
        return not self.local

    def _open(self) -> Any:
        params = dict(self.store.params)
        if self.local:
            params["mode"] = "write"
        store = registry.create(self.store.type, params, where="ray sink store")
        try:
            store.open(self.specs, self.identity)
        except BaseException:
            store.close()
            raise
        return store

    def write(self, blocks: Iterable[Block], ctx: Any) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        store = self._open()
        try:
            for block in blocks:
                for row in BlockAccessor.for_block(block).iter_rows(public_row_format=True):
                    task = unpack(row["task"])
                    if task.error is not None:
                        results.append(report_row(path=task.name, reason=task.error))
                        continue
                    start = time.perf_counter()
                    try:
                        doc = write_task(store, task, max_points=self.max_points,
                                         max_bytes=self.max_bytes)
                    except (StoreError, KeyboardInterrupt):
                        raise
                    except Exception as err:
                        logger.warning("skipped %s: %s", task.name, error_reason(err))
                        results.append(report_row(path=task.name, reason=error_reason(err)))
                    else:
                        seconds = {**task.extra, "write_s": time.perf_counter() - start}
                        results.append({**report_row(doc), "seconds": seconds})
        finally:
            if isinstance(store, Component):
                store.close()
        return results

    def on_write_complete(self, write_result: Any) -> None:
        self.results = [r for part in write_result.write_returns for r in part]


def _store_error(err: BaseException) -> StoreError | None:
    """The store error a failed Ray job carries (Ray wraps a task's exception)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [err]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, StoreError):
            return e
        stack += [getattr(e, "cause", None), e.__cause__, e.__context__]
    return None


def run_job(tasks: Sequence[DocTask], config: PipelineConfig, cfg: RayConfig,
            specs: Sequence[VectorSpec], identity: Mapping[str, Any],
            states: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Run parse -> embed -> write for ``tasks`` on Ray; returns the sink's per-document
    results. A broken store raises its :class:`StoreError`."""
    started = connect(cfg)
    try:
        ctx = DataContext.get_current()
        ctx.enable_progress_bars = cfg.progress
        ds = ray.data.from_items([{"document_id": t.document_id, "task": pack(t)}
                                  for t in tasks], override_num_blocks=min(len(tasks), 10_000))
        # a ray_remote_args_fn keeps Ray Data from fusing parsing into the embedding
        # actors (it fuses ops whose resources match): parsing stays on CPU tasks
        ds = ds.map_batches(_parse_batch, batch_size=1, fn_kwargs={"config": config},
                            num_cpus=1, concurrency=cfg.parse_concurrency,
                            ray_remote_args_fn=_spread)
        ds = ds.map_batches(_Embed, batch_size=int(cfg.embed_batch_size),
                            fn_constructor_kwargs={"config": config, "states": dict(states)},
                            compute=ActorPoolStrategy(size=cfg.actors),
                            num_gpus=cfg.gpus_per_actor or None, num_cpus=cfg.cpus_per_actor)
        sink = RagnestDatasink(config.components[config.store], specs, identity,
                               max_points=cfg.write_batch_points,
                               max_bytes=cfg.max_request_bytes)
        concurrency = cfg.write_concurrency or (1 if sink.local else None)
        try:
            ds.write_datasink(sink, concurrency=concurrency)
        except Exception as err:
            cause = _store_error(err)
            if cause is not None:
                raise type(cause)(str(cause)) from err
            raise
        return sink.results
    finally:
        if started:
            ray.shutdown()
