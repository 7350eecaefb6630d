"""The ingest loop: discover -> plan -> parse (pool) -> embed + write -> report.

One bad document is skipped and reported; the ingest goes on. A broken store (a server
that does not answer, a full disk: :class:`~ragnest.errors.StoreError`) stops the
ingest at once: the error propagates with the report of what was committed before it
attached as ``err.report``, and no document is reported as ingested that was not
completely written::

    >>> import tempfile
    >>> from ragnest import Pipeline
    >>> from ragnest.ingest.run import run_ingest
    >>> with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": tempfile.mkdtemp()}) as rag:
    ...     rag.warm_up()
    ...     report = run_ingest(["examples/docs"], parsers=rag.parsers,
    ...                         embedders=rag.embedders, store=rag.store)
    >>> report.ok and report.files > 0
    True
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace

from ragnest.config import IngestConfig
from ragnest.errors import EmbeddingError, ParseError, RagnestError, StoreError
from ragnest.ingest.discover import discover
from ragnest.ingest.embed import needs_fit
from ragnest.ingest.plan import Planned, plan_source
from ragnest.ingest.pool import ParsePool, parse_all
from ragnest.ingest.report import DocumentReport, IngestReport, SkippedFile
from ragnest.ingest.writer import DocumentWriter
from ragnest.protocols import Embedder, Parser, Store, StoreAdmin
from ragnest.types import Source

__all__ = ["ProgressCallback", "ingest_source", "run_ingest"]

logger = logging.getLogger(__name__)

#: Called once per file with ``(path, status)``: added, updated, unchanged or skipped.
ProgressCallback = Callable[[str, str], None]


def ingest_source(
    source: Source,
    *,
    parsers: Sequence[Parser],
    embedders: Mapping[str, Embedder],
    store: Store,
    batch_size: int = 64,
) -> DocumentReport:
    """Ingest one source in this process (the store must be open); raises
    :class:`ParseError` naming the file when it cannot be read."""
    planned = plan_source(source, parsers, store)
    if isinstance(planned, DocumentReport):
        return planned
    chunks = parse_all(planned.parser, source)
    writer = DocumentWriter(store, embedders, batch_size=batch_size)
    return writer.write(source.display_name, source.document_id, chunks, planned.fingerprint)


def _reason(err: Exception) -> str:
    if isinstance(err, ParseError):
        return err.reason
    if isinstance(err, EmbeddingError):
        return f"embedding failed: {err}"
    return f"{type(err).__name__}: {err}"


def run_ingest(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    parsers: Sequence[Parser],
    embedders: Mapping[str, Embedder],
    store: Store,
    config: IngestConfig | None = None,
    workers: int | None = None,
    progress: bool = False,
    on_file: ProgressCallback | None = None,
) -> IngestReport:
    """Ingest files and folders into an open store (see the module docs).

    ``workers`` parser processes (default ``config.workers``; 0 = one per CPU) parse
    files, and page ranges of big PDFs, in parallel; embedding and writing stay in this
    process, in file order. ``progress`` shows a tqdm bar (when ``on_file`` is unset).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    config = config or IngestConfig()
    start = time.perf_counter()
    files, skipped = discover(paths)
    report = IngestReport(skipped=list(skipped))
    writer = DocumentWriter(store, embedders, batch_size=config.batch_size)
    bar = None
    if progress and on_file is None and files:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), desc="ingest", unit="file")

    def done(path: str, status: str) -> None:
        if on_file is not None:
            on_file(path, status)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(pages=report.pages, chunks=report.chunks_added, refresh=False)

    def skip(path: str, err: Exception) -> None:
        reason = _reason(err)
        report.skipped.append(SkippedFile(path, reason))
        unexpected = not isinstance(err, RagnestError)
        logger.warning("skipped %s: %s", path, reason, exc_info=unexpected)
        done(path, "skipped")

    def jobs() -> Iterator[tuple[Source, Parser]]:
        for path in files:
            source = Source.from_path(path)
            try:
                planned = plan_source(source, parsers, store)
            except (StoreError, KeyboardInterrupt):
                raise
            except Exception as err:
                skip(str(path), err)
                continue
            if isinstance(planned, DocumentReport):
                report.documents.append(planned)
                done(str(path), planned.status)
                continue
            plans[source.document_id] = planned
            yield source, planned.parser

    plans: dict[str, Planned] = {}
    store_failed = False
    pool = ParsePool(workers=config.workers if workers is None else workers,
                     split_pages=config.split_pages)
    try:
        for source, chunks, error in pool.map(jobs()):
            path = source.path or source.display_name
            planned = plans.pop(source.document_id)
            if error is not None:
                skip(path, error)
                continue
            try:
                doc = writer.write(source.display_name, source.document_id, chunks,
                                   planned.fingerprint)
            except (StoreError, KeyboardInterrupt):
                raise
            except EmbeddingError as err:
                if needs_fit(embedders):  # nothing can be embedded until it is fitted
                    raise
                skip(path, err)
            except Exception as err:
                skip(path, err)
            else:
                report.documents.append(replace(doc, warnings=pool.warnings(source)))
                done(path, doc.status)
    except StoreError as err:
        store_failed = True
        report.seconds = time.perf_counter() - start
        report.error = f"{type(err).__name__}: {err}"
        err.report = report
        logger.error("ingest stopped: %s (%d documents were committed before it)",
                     err, len(report.documents))
        raise
    finally:
        pool.close()
        if bar is not None:
            bar.close()
        if report.chunks_added and not store_failed and isinstance(store, StoreAdmin):
            store.optimize()  # also after an interrupt: what was committed gets its index
    report.seconds = time.perf_counter() - start
    return report
