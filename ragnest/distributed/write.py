"""What ragnest's Ray Datasink does with each document: the store's own data-only
transaction (``store.begin`` -> ``add`` -> ``commit``), with upserts bounded in points
and bytes and split further when the server refuses one as too large.

Every named vector and multivector of every ladder level, the sparse BM25 vectors and
the payload travel in one point, so nothing here knows about levels: whatever
:func:`ragnest.ingest.embed_chunks` made is written. A document counts as ingested
only when all of its chunks are written and its commit marker is stored; a failure
part-way leaves the previous version intact (the transaction aborts), and a killed
job leaves uncommitted points that the next run's transaction takes over (point ids
are deterministic), so re-running never duplicates anything::

    >>> import numpy as np
    >>> from ragnest.distributed.write import request_batches
    >>> from ragnest.types import Chunk, EmbeddedChunk, make_chunk_id
    >>> pts = [EmbeddedChunk(chunk=Chunk(id=make_chunk_id("d", i, "x"), document_id="d",
    ...        kind="text", text="x"), vectors={"v": np.zeros(256, np.float32)})
    ...        for i in range(5)]
    >>> [len(b) for b in request_batches(pts, max_points=2, max_bytes=1 << 20)]
    [2, 2, 1]
    >>> [len(b) for b in request_batches(pts, max_points=10, max_bytes=2600)]
    [2, 2, 1]
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ragnest.distributed.stages import DocTask
from ragnest.errors import StoreError
from ragnest.ingest.report import DocumentReport
from ragnest.ingest.writer import page_count
from ragnest.protocols import DocumentWrite, Store
from ragnest.types import EmbeddedChunk

__all__ = ["point_bytes", "report_row", "request_batches", "write_task"]

logger = logging.getLogger(__name__)

_TOO_LARGE = ("larger than allowed", "too large", "http 413", "message length")


def point_bytes(point: EmbeddedChunk) -> int:
    """About what one point weighs in a request: its vectors' numbers (4 bytes each
    on the wire as float32, 8 per sparse entry) and its text."""
    size = 256 + len(point.chunk.text or "")
    for vec in point.vectors.values():
        if hasattr(vec, "indices") and hasattr(vec, "values"):
            size += 8 * len(vec.indices)
        else:
            size += 4 * int(np.size(vec))
    return size


def request_batches(points: Sequence[EmbeddedChunk], *, max_points: int,
                    max_bytes: int) -> Iterator[list[EmbeddedChunk]]:
    """Consecutive batches of at most ``max_points`` points and about ``max_bytes``
    (a single bigger point goes alone)."""
    batch: list[EmbeddedChunk] = []
    size = 0
    for p in points:
        n = point_bytes(p)
        if batch and (len(batch) >= max_points or size + n > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(p)
        size += n
    if batch:
        yield batch


def _too_large(err: BaseException) -> bool:
    text = str(err).lower()
    return any(t in text for t in _TOO_LARGE)


def _add(tx: DocumentWrite, batch: list[EmbeddedChunk]) -> int:
    """``tx.add(batch)``, halving the request while the server calls it too large;
    returns the number of requests sent."""
    try:
        tx.add(batch)
        return 1
    except (ValueError, StoreError) as err:
        if len(batch) < 2 or not _too_large(err):
            raise
        half = len(batch) // 2
        logger.info("request of %d points refused as too large; splitting it", len(batch))
        return _add(tx, batch[:half]) + _add(tx, batch[half:])


def write_task(store: Store, task: DocTask, *, max_points: int = 256,
               max_bytes: int = 16 << 20) -> DocumentReport:
    """Write one embedded document in a transaction on an open store and report it as
    the local path does. Raises the store's errors (a broken store stops the job) and
    ``ValueError`` for data it refuses; the caller reports a failed document."""
    if task.error is not None or task.chunks is None or task.points is None:
        raise ValueError(f"{task.name}: document was not parsed and embedded")
    doc_id = task.document_id
    existing = bool(store.chunk_ids(doc_id))
    embedded = {p.chunk.id: p for p in task.points}
    with store.begin(doc_id, [c.id for c in task.chunks], fingerprint=task.fingerprint) as tx:
        need = list(tx.missing)
        absent = [cid for cid in need if cid not in embedded]
        if absent:
            raise ValueError(
                f"{task.name}: {len(absent)} chunks the store lacks were not embedded (the "
                "stored document changed while the job ran); ingest it again")
        requests = 0
        for batch in request_batches([embedded[cid] for cid in need], max_points=max_points,
                                     max_bytes=max_bytes):
            requests += _add(tx, batch)
        result = tx.commit()
    removed = sum(store.delete_document(d) for d in task.replaces)
    status = "updated" if existing else "added"
    if result.added == 0 and result.removed == 0:
        status = "unchanged"
    logger.info("committed %s: %d chunks in %d requests", task.name, result.added, requests)
    return DocumentReport(task.name, doc_id, page_count(task.chunks), result.added,
                          result.unchanged, result.removed + removed, status,
                          warnings=task.warnings)


def report_row(report: DocumentReport | None = None, *, path: str = "",
               reason: str | None = None) -> dict[str, Any]:
    """What a write task returns for one document: its report, or why it was skipped."""
    if report is not None:
        return {"document": report}
    return {"skipped": (path, reason or "")}
