"""A pipeline run one step at a time, for notebooks: parse, embed, write, search, rerank, answer.

Each step returns a value a notebook displays (:mod:`ragnest.display`): the parsed
chunks with their regions on page thumbnails, the vectors per ladder level, the hits
with the score every stage gave them, the answer with its cited regions. The
:class:`~ragnest.pipeline.Pipeline` methods of the same names call these on the
pipeline's components::

    >>> import tempfile
    >>> from ragnest import Pipeline
    >>> with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": tempfile.mkdtemp()}) as rag:
    ...     chunks = rag.parse("examples/docs/nimbus3_handbook.pdf")   # look at them
    ...     points = rag.embed(chunks)                                  # vectors per level
    ...     report = rag.write(points)                                  # into the store
    ...     hits = rag.search("How often should I descale?", k=3)     # funnel + fusion
    ...     answer = rag.answer("How often should I descale?", hits)
    >>> report.status, hits[0].chunk.page, answer.citations[0].page
    ('added', 5, 5)

``Pipeline.ingest`` does parse + embed + write for many files at once, in parallel.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ragnest.config import RetrievalConfig
from ragnest.errors import ConfigError, ParseError, RagnestError
from ragnest.ingest import DocumentReport, embed_chunks, fit_embedders, needs_fit, parse_all
from ragnest.ingest.plan import pick_parser
from ragnest.ingest.writer import page_count
from ragnest.protocols import Embedder, Generator, PagedParser, Parser, Reranker, Store
from ragnest.retrieval import Retriever, as_query
from ragnest.types import (
    Answer,
    Chunk,
    Chunks,
    EmbeddedChunks,
    Fusion,
    Hit,
    Hits,
    Query,
    Source,
)

__all__ = ["answer", "embed", "parse", "rerank", "search", "write"]

logger = logging.getLogger(__name__)

#: Documents with more pages than this show a progress bar while they are parsed.
PROGRESS_PAGES = 20
#: Pages parsed between two progress bar updates.
_PAGE_STEP = 10


def _bar(total: int, desc: str, unit: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit)


def _source(document: str | os.PathLike[str] | Source) -> Source:
    if isinstance(document, Source):
        return document
    path = Path(document)
    if not path.is_file():
        raise ParseError(str(path), "no such file (parse() reads one file; ingest() reads "
                                    "folders)")
    return Source.from_path(path)


def parse(
    document: str | os.PathLike[str] | Source,
    parsers: Sequence[Parser],
    *,
    progress: bool = True,
) -> Chunks:
    """The chunks of one document, parsed in this process; nothing is stored.

    Raises :class:`~ragnest.errors.ParseError` naming the file when no parser reads it
    or it cannot be read. Long documents show a ``tqdm.auto`` bar over their pages.
    """
    source = _source(document)
    name = source.display_name
    empty = Path(source.path).stat().st_size == 0 if source.path else not source.data
    if empty:
        raise ParseError(name, "file is empty (0 bytes)")
    parser = pick_parser(source, parsers)
    if parser is None:
        raise ParseError(name, f"unsupported file type {source.suffix or '(no extension)'!r}; "
                               f"this pipeline's parsers read "
                               f"{', '.join(sorted({e for p in parsers for e in p.extensions}))}")
    pages = 0
    if progress and isinstance(parser, PagedParser):
        try:
            pages = parser.page_count(source)
        except Exception:  # the parse below reports what is wrong
            pages = 0
    if pages <= PROGRESS_PAGES:
        return Chunks(parse_all(parser, source), source=source)
    chunks: list[Chunk] = []
    bar = _bar(pages, f"parse {Path(name).name}", "page")
    try:
        for start in range(0, pages, _PAGE_STEP):
            stop = min(start + _PAGE_STEP, pages)
            chunks.extend(parse_all(parser, source, start, stop))
            bar.update(stop - start)
    finally:
        bar.close()
    return Chunks(chunks, source=source)


def embed(
    chunks: Sequence[Chunk],
    embedders: Mapping[str, Embedder],
    *,
    store: Store | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> EmbeddedChunks:
    """Every embedder's vectors for ``chunks``, under the store's vector names.

    Embedders that need corpus-fitted state and hold none are fitted on the first batch
    and their state saved in ``store``, as an ingest does (``Pipeline.fit`` fits on a
    sample of the whole corpus instead). More than one batch shows a progress bar.
    """
    source = getattr(chunks, "source", None)
    chunks = list(chunks)
    batch_size = max(1, int(batch_size))
    if chunks and needs_fit(embedders):
        if store is None:
            raise RagnestError("these embedders need fitted state: pass store= so it can be "
                               "fitted and saved, or call Pipeline.fit() first")
        fitted = fit_embedders(store, embedders, chunks[:batch_size])
        logger.warning("fitted %s on the first %d chunks; Pipeline.fit() fits on a sample of "
                       "the whole corpus instead", ", ".join(fitted) or "nothing",
                       min(batch_size, len(chunks)))
    batches = range(0, len(chunks), batch_size)
    bar = _bar(len(chunks), "embed", "chunk") if progress and len(batches) > 1 else None
    out = EmbeddedChunks(source=source)
    try:
        for start in batches:
            batch = chunks[start : start + batch_size]
            out.extend(embed_chunks(embedders, batch))
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    return out


def write(store: Store, points: EmbeddedChunks) -> DocumentReport:
    """Make the stored document equal these embedded chunks (the output of :func:`embed`
    for one parsed document): new chunks are added, unchanged ones kept, stale ones
    removed, and the document is committed with its content fingerprint."""
    source = getattr(points, "source", None)
    if source is None or not points:
        raise RagnestError("write() takes the EmbeddedChunks of one parsed document, as "
                           "embed(parse(path)) returns them (they name their source)")
    doc_id = source.document_id
    if any(p.chunk.document_id != doc_id for p in points):
        raise RagnestError(f"write(): every chunk must belong to {source.display_name}")
    existing = bool(store.chunk_ids(doc_id))
    with store.begin(doc_id, [p.chunk.id for p in points],
                     fingerprint=source.fingerprint()) as tx:
        missing = set(tx.missing)
        tx.add([p for p in points if p.chunk.id in missing])
        result = tx.commit()
    status = "updated" if existing else "added"
    if result.added == 0 and result.removed == 0:
        status = "unchanged"
    return DocumentReport(source.display_name, doc_id, page_count([p.chunk for p in points]),
                          result.added, result.unchanged, result.removed, status)


def search(
    query: str | Query,
    embedders: Mapping[str, Embedder],
    store: Store,
    config: RetrievalConfig,
    *,
    k: int | None = None,
    filters: Mapping[str, Any] | None = None,
    budgets: Mapping[str, int] | None = None,
    using: Sequence[str] | None = None,
    fusion: Fusion | None = None,
    pool: bool = False,
    explain: bool = True,
) -> Hits:
    """The funnel search and fusion of :meth:`Pipeline.retrieve`, without the reranker:
    ``k`` hits, each with the score every stage gave it (``explain=False``: only the
    routes' and the final scores, as ``retrieve`` gives by default). ``k`` defaults to
    ``config.k``, or with ``pool`` (a reranker follows) to its pool
    ``max(k, rerank_k)``."""
    if k is None and pool:
        k = max(config.k, config.rerank_k or 0)
    retriever = Retriever(embedders, store, config)
    try:
        result = retriever.run(as_query(query, filters), k=k, budgets=budgets, using=using,
                               fusion=fusion, explain=explain)
    finally:
        retriever.close()
    return Hits(result.hits, query=result.query, timings=result.timings)


def rerank(
    query: str | Query, hits: Sequence[Hit], reranker: Reranker | None, *, top_k: int | None = None
) -> Hits:
    """``hits`` re-scored by ``reranker``, best first (``top_k`` of them)."""
    if reranker is None:
        raise ConfigError("this pipeline has no reranker: name one in the YAML "
                          "(pipeline.reranker), or pass reranker= to rerank()")
    q = as_query(query)
    t0 = time.perf_counter()
    out = reranker.rerank(q, list(hits), top_k=top_k)
    return Hits(out, query=q, timings={"rerank": time.perf_counter() - t0})


def answer(query: str | Query, hits: Sequence[Hit], generator: Generator | None) -> Answer:
    """The generator's answer from ``hits``, with ``timings["generate"]``."""
    if generator is None:
        raise ConfigError("this pipeline has no generator: name one in the YAML "
                          "(pipeline.generator), or pass generator= to answer()")
    t0 = time.perf_counter()
    result = generator.generate(as_query(query), list(hits))
    timings = {**getattr(hits, "timings", {}), "generate": time.perf_counter() - t0}
    return replace(result, timings={**timings, **result.timings})
