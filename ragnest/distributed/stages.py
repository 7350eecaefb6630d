"""The stages of a distributed ingest as plain functions on :class:`DocTask` rows: what
each Ray stage runs, without Ray (so each is tested, and reused, on its own).

A :class:`DocTask` is one document travelling through the job: planned on the driver
(:func:`plan_tasks`, which reuses :func:`ragnest.ingest.plan_source`, so unchanged and
moved files are settled there and never shipped), parsed on a CPU task
(:func:`parse_task`, page ranges of a big PDF in parallel when a ``map_range`` is
given), embedded on an actor (:func:`embed_task`: only the chunks the store lacks, in
the same batches as the local writer, so the vectors are the local path's), written by
the sink (:mod:`ragnest.distributed.write`). Rows cross process boundaries as pickled
bytes (:func:`pack` / :func:`unpack`)::

    >>> from ragnest.distributed.stages import DocTask, pack, unpack
    >>> from ragnest.types import Source
    >>> task = DocTask(source=Source.from_path("examples/docs/travel_faq.md"), parser=1,
    ...                fingerprint="f")
    >>> unpack(pack(task)).parser
    1
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ragnest import registry
from ragnest.config import PipelineConfig
from ragnest.errors import EmbeddingError, ParseError, RagnestError, StoreError
from ragnest.ingest import Planned, Relocation, discover, plan_source
from ragnest.ingest.embed import embed_missing
from ragnest.ingest.identity import apply_relocation
from ragnest.ingest.pool import page_ranges, parse_noted
from ragnest.ingest.report import DocumentReport, IngestReport, SkippedFile
from ragnest.protocols import Component, Embedder, FittedEmbedder, Parser, Store
from ragnest.types import Chunk, EmbeddedChunk, Source

__all__ = [
    "DocTask",
    "RangeParser",
    "build_components",
    "load_states",
    "embed_task",
    "error_reason",
    "pack",
    "parse_task",
    "plan_tasks",
    "unpack",
]

logger = logging.getLogger(__name__)

#: Parses pages ``start:stop`` of a source (``None, None``: all of it) somewhere and
#: returns a callable that waits for ``(chunks, warnings)``: how a Ray job fans the
#: ranges of one big PDF out over tasks.
RangeParser = Callable[[Parser, Source, "int | None", "int | None"],
                       Callable[[], "tuple[list[Chunk], tuple[str, ...]]"]]


@dataclass(frozen=True)
class DocTask:
    """One document on its way through a distributed ingest.

    ``parser`` indexes the pipeline's parsers; ``stored``: ids of the chunks the store
    held for this document when it was planned (they are not embedded again);
    ``replaces``: other documents citing the same path, removed once it is written.
    ``chunks`` / ``points`` fill in as the stages run; ``error`` skips the document;
    ``extra`` collects each stage's seconds (``parse_s``, ``embed_s``).
    """

    source: Source
    parser: int
    fingerprint: str
    stored: frozenset[str] = frozenset()
    replaces: tuple[str, ...] = ()
    chunks: tuple[Chunk, ...] | None = None
    points: tuple[EmbeddedChunk, ...] | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def document_id(self) -> str:
        return self.source.document_id

    @property
    def name(self) -> str:
        return self.source.path or self.source.display_name


def pack(task: DocTask) -> bytes:
    """A task as bytes for a Ray Data row."""
    return pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(data: bytes) -> DocTask:
    """The task :func:`pack` made."""
    task = pickle.loads(data)
    if not isinstance(task, DocTask):
        raise TypeError(f"expected a packed DocTask, got {type(task).__name__}")
    return task


def error_reason(err: BaseException) -> str:
    """What the ingest report says about a document that failed (as the local path)."""
    if isinstance(err, ParseError):
        return err.reason
    if isinstance(err, EmbeddingError):
        return f"embedding failed: {err}"
    return f"{type(err).__name__}: {err}"


def build_components(config: PipelineConfig, names: Iterable[str], *,
                     warm: bool = True) -> dict[str, Any]:
    """Build (and, with ``warm``, warm up) the named components of a pipeline config in
    this process: what a Ray task or actor does with the config the driver shipped."""
    built: dict[str, Any] = {}
    for name in names:
        comp = config.components[name]
        obj = registry.create(comp.type, comp.params, where=config.params_where(name))
        if warm and isinstance(obj, Component):
            obj.warm_up()
        built[name] = obj
    return built


def plan_tasks(
    paths: Iterable[str | os.PathLike[str]],
    parsers: Sequence[Parser],
    store: Store,
    report: IngestReport,
) -> list[DocTask]:
    """Plan every file on the driver: unchanged files are reported, moved files are
    re-pointed (nothing parsed), unreadable ones skipped with the reason (all into
    ``report``); the rest become tasks. Store errors propagate."""
    files, skipped = discover(paths)
    report.skipped.extend(skipped)
    claimed: set[str] = set()
    tasks: list[DocTask] = []
    for path in files:
        source = Source.from_path(path)
        try:
            planned = plan_source(source, parsers, store, claimed=claimed)
            if isinstance(planned, Relocation):
                planned = apply_relocation(store, planned)
        except (StoreError, KeyboardInterrupt):
            raise
        except Exception as err:
            report.skipped.append(SkippedFile(str(path), error_reason(err)))
            logger.warning("skipped %s: %s", path, error_reason(err),
                           exc_info=not isinstance(err, RagnestError))
            continue
        if isinstance(planned, DocumentReport):
            report.documents.append(planned)
            continue
        assert isinstance(planned, Planned)
        index = next(i for i, p in enumerate(parsers) if p is planned.parser)
        doc_id = planned.source.document_id
        tasks.append(DocTask(source=planned.source, parser=index,
                             fingerprint=planned.fingerprint,
                             stored=frozenset(store.chunk_ids(doc_id)),
                             replaces=tuple(planned.replaces)))
    return tasks


def _here(parser: Parser, source: Source, start: int | None,
          stop: int | None) -> Callable[[], tuple[list[Chunk], tuple[str, ...]]]:
    result = parse_noted(parser, source, start, stop)
    return lambda: result


def parse_task(task: DocTask, parsers: Sequence[Parser], *, split_pages: int = 100,
               map_range: RangeParser | None = None) -> DocTask:
    """Parse one document (a big PDF as page ranges, each through ``map_range``, which
    may run them elsewhere; by default here). A parse failure is kept as the task's
    ``error``, so the document is skipped and reported, never the job stopped."""
    if task.error is not None:
        return task
    parser = parsers[task.parser]
    run = map_range or _here
    start = time.perf_counter()
    try:
        ranges = page_ranges(task.source, parser, split_pages)
        waits = [run(parser, task.source, a, b) for a, b in ranges]
        chunks: list[Chunk] = []
        notes: list[str] = []
        for wait in waits:
            part, said = wait()
            chunks.extend(part)
            notes.extend(n for n in said if n not in notes)
    except Exception as err:
        if not isinstance(err, ParseError):
            err = ParseError(task.source.display_name,
                             f"parser process failed: {type(err).__name__}: {err}")
        return replace(task, error=error_reason(err))
    if not chunks:
        return replace(task, error=error_reason(
            ParseError(task.source.display_name, "no content could be extracted")))
    return replace(task, chunks=tuple(chunks), warnings=tuple(notes),
                   extra={**task.extra, "parse_s": time.perf_counter() - start})


def load_states(embedders: Mapping[str, Embedder],
                states: Mapping[str, Mapping[str, Any] | None]) -> None:
    """Give each fitted embedder the state the driver shipped; an embedder that still
    needs fitting afterwards is an error (state is fitted once, never per worker)."""
    for key, emb in embedders.items():
        if not isinstance(emb, FittedEmbedder):
            continue
        emb.load_fitted_state(states.get(key))
        if emb.needs_fit:
            raise EmbeddingError(
                f"embedder {key!r} has no fitted state: run `ragnest fit` first "
                "(workers never fit their own)")


def embed_task(task: DocTask, embedders: Mapping[str, Embedder], *,
               batch_size: int = 64) -> DocTask:
    """Embed the chunks of ``task`` the store lacks, ``batch_size`` at a time in document
    order (the local writer's batches). An embedder failure skips the document."""
    if task.error is not None or task.chunks is None:
        return task
    began = time.perf_counter()
    try:
        points = embed_missing(embedders, task.chunks, stored=task.stored,
                               batch_size=batch_size)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as err:
        logger.warning("skipped %s: %s", task.name, error_reason(err))
        return replace(task, error=error_reason(err))
    return replace(task, points=tuple(points),
                   extra={**task.extra, "embed_s": time.perf_counter() - began})
