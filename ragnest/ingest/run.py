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
from ragnest.ingest.identity import Relocation, apply_relocation
from ragnest.ingest.plan import Planned, plan_source
from ragnest.ingest.pool import ParsePool, parse_all
from ragnest.ingest.report import DocumentReport, IngestReport, SkippedFile
from ragnest.ingest.signals import sigterm_unwinds
from ragnest.ingest.writer import DocumentWriter, Parsed
from ragnest.protocols import Embedder, Parser, Store, StoreAdmin
from ragnest.types import Chunk, Source

__all__ = ["ProgressCallback", "ingest_source", "run_ingest"]

logger = logging.getLogger(__name__)

#: At most this many small documents are written together (one upsert round, one flush).
_GROUP_DOCS = 32

#: Called once per file with ``(path, status)``: added, updated, moved, unchanged or
#: skipped (and removed, once per document a sync removes).
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
    if isinstance(planned, Relocation):
        return apply_relocation(store, planned)
    chunks = parse_all(planned.parser, planned.source)
    writer = DocumentWriter(store, embedders, batch_size=batch_size)
    return _write(writer, store, planned, chunks)


def _write(writer: DocumentWriter, store: Store, planned: Planned,
           chunks: Sequence[Chunk]) -> DocumentReport:
    """Write a parsed document, then remove the documents it replaces."""
    source = planned.source
    doc = writer.write(source.display_name, source.document_id, chunks, planned.fingerprint)
    return _drop_replaced(store, planned, doc)


def _drop_replaced(store: Store, planned: Planned, doc: DocumentReport) -> DocumentReport:
    """Once a document is written, remove the documents it replaces."""
    removed = sum(store.delete_document(d) for d in planned.replaces)
    return replace(doc, removed=doc.removed + removed) if removed else doc


def _would_move(move: Relocation, store: Store) -> DocumentReport:
    """What a dry run reports for a document it would re-point at a new path."""
    n = len(store.chunk_ids(move.document_id))
    removed = sum(d.chunks for d in move.replaces)
    return DocumentReport(move.source.display_name, move.document_id, 0, 0, n, removed,
                          move.status, move.previous[0] if move.previous else None)


def _would(planned: Planned, store: Store) -> DocumentReport:
    """What a dry run reports for a document it would parse and write."""
    source = planned.source
    ids = store.chunk_ids(source.document_id)
    return DocumentReport(source.display_name, source.document_id, 0, 0, 0, 0,
                          "updated" if ids else "added")


def _reason(err: Exception) -> str:
    if isinstance(err, ParseError):
        return err.reason
    if isinstance(err, EmbeddingError):
        return f"embedding failed: {err}"
    return f"{type(err).__name__}: {err}"


@sigterm_unwinds()  # a SIGTERM anywhere in the ingest unwinds it (exit status 143)
def run_ingest(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    parsers: Sequence[Parser],
    embedders: Mapping[str, Embedder],
    store: Store,
    config: IngestConfig | None = None,
    workers: int | str | None = None,
    progress: bool = False,
    on_file: ProgressCallback | None = None,
    dry_run: bool = False,
    claimed: set[str] | None = None,
) -> IngestReport:
    """Ingest files and folders into an open store (see the module docs).

    ``workers`` parser processes (default ``config.workers``; 0 = one per CPU;
    ``"auto"`` decides from the corpus, see :func:`~ragnest.ingest.pool.auto_workers`)
    parse and embed files, and page ranges of big PDFs, in parallel; writing stays in
    this process, in file order. ``progress`` shows a tqdm bar (when ``on_file`` is unset).

    A file whose content a stored document holds while that document's file is gone
    is recognised as moved: the document is re-pointed at the new path (status
    ``moved``), nothing is parsed or embedded. ``dry_run`` plans only: every file is
    read and fingerprinted, nothing is parsed, embedded or changed, and the report
    says what would be done (``added`` / ``updated`` documents show no chunk counts).
    ``claimed`` collects the ids of the documents this run moves.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    config = config or IngestConfig()
    claimed = set() if claimed is None else claimed
    start = time.perf_counter()
    files, skipped = discover(paths)
    report = IngestReport(skipped=list(skipped), dry_run=dry_run)
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
                planned = plan_source(source, parsers, store, claimed=claimed)
                if isinstance(planned, Relocation):
                    planned = (_would_move(planned, store) if dry_run
                               else apply_relocation(store, planned))
                elif dry_run and isinstance(planned, Planned):
                    planned = _would(planned, store)
            except (StoreError, KeyboardInterrupt):
                raise
            except Exception as err:
                skip(str(path), err)
                continue
            if isinstance(planned, DocumentReport):
                report.documents.append(planned)
                done(str(path), planned.status)
                continue
            plans[planned.source.document_id] = planned
            yield planned.source, planned.parser

    plans: dict[str, Planned] = {}
    store_failed = False
    pool = ParsePool(workers=config.workers if workers is None else workers,
                     split_pages=config.split_pages, files=files,
                     embedders=None if dry_run else embedders, stored=store.chunk_ids,
                     embed=config.embed_in_workers)
    group: list[tuple[Source, Planned, list[Chunk]]] = []

    def write_group() -> None:
        """Write the parsed documents waiting in ``group`` together, report each."""
        items = list(group)
        group.clear()
        results = writer.write_many([
            Parsed(p.source.display_name, p.source.document_id, chunks, p.fingerprint,
                   pool.vectors(p.source))
            for _, p, chunks in items])
        for (source, planned, _), result in zip(items, results):
            path = source.path or source.display_name
            if isinstance(result, Exception):
                if isinstance(result, EmbeddingError) and needs_fit(embedders):
                    raise result  # nothing can be embedded until it is fitted
                skip(path, result)
                continue
            doc = _drop_replaced(store, planned, result)
            report.documents.append(replace(doc, warnings=pool.warnings(source)))
            done(path, doc.status)

    try:
        for source, chunks, error in pool.map(jobs()):
            path = source.path or source.display_name
            planned = plans.pop(source.document_id)
            if error is not None:
                skip(path, error)
                continue
            # Small documents are written together (one upsert and one flush for many).
            group.append((source, planned, chunks))
            if (sum(len(c) for _, _, c in group) >= config.batch_size
                    or len(group) >= _GROUP_DOCS):
                write_group()
        write_group()
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
