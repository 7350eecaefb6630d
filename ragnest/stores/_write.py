"""Data-only writes: one document's write transaction, and the checks on what is written.

:class:`QdrantWrite` is what :meth:`ragnest.stores.QdrantStore.begin` returns. It never
calls an embedder: the caller embeds the chunks listed in ``missing`` (wherever it
likes: this process, a worker, another machine) and hands them over with their vectors::

    with store.begin(doc_id, [c.id for c in chunks], fingerprint=fp) as tx:
        new = [c for c in chunks if c.id in set(tx.missing)]
        tx.add([EmbeddedChunk(chunk=c, vectors=embed(c)) for c in new])
        result = tx.commit()

The guarantees: new points are written before anything is removed; a document's
fingerprint marks it as completely stored only after every chunk of the version is
present (``doc_chunks`` counts them); :meth:`QdrantWrite.abort` (or leaving the
``with`` block without committing, or a :meth:`QdrantWrite.commit` that failed before
the stale chunks were removed) removes what the transaction added and puts back the kept
chunks' old markers, so the stored document stays the previous version; a commit that
fails after that point leaves the new version, complete. Points sent in a call that failed count as
added (a timed-out upsert may still have been applied), so an abort removes them too.
A backend that fails raises :class:`ragnest.errors.StoreUnavailableError`; an abort
that fails while another error propagates is logged and never masks it.

New points carry ``doc_pending`` (:data:`~ragnest.stores._backend.PENDING_KEY`) until the
commit, which removes it from every chunk of the version in one atomic section
(``Backend.atomic``); a reader's copy of an Edge store drops the points that still carry
it, so readers see the last committed version of every document, even mid-write or after
a writer was killed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ragnest.errors import StoreError
from ragnest.stores._backend import PENDING_KEY, RESERVED_KEYS, Backend, PointData
from ragnest.stores._filters import Condition
from ragnest.types import EmbeddedChunk, SparseVector, VectorSpec, WriteResult

__all__ = [
    "QdrantWrite",
    "add_together",
    "append_points",
    "check_chunk_ids",
    "check_vectors",
    "commit_together",
    "document_filter",
]

log = logging.getLogger(__name__)


def document_filter(document_id: str) -> list[Condition]:
    """The condition selecting one document's points."""
    return [Condition("document_id", "match", document_id)]


def check_chunk_ids(document_id: str, ids: Sequence[str]) -> None:
    """Chunk ids must be unique canonical uuid strings (``make_chunk_id`` makes them)."""
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dupes = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
        raise ValueError(f"document {document_id}: duplicate chunk ids {dupes[:3]}")
    for cid in ids:
        try:
            canonical = str(uuid.UUID(cid))
        except (ValueError, AttributeError, TypeError):
            canonical = None
        if canonical != cid:
            raise ValueError(f"chunk id {cid!r} is not a canonical uuid string (use make_chunk_id)")


def check_vectors(
    chunk_id: str, named: Mapping[str, Any] | None, specs: Mapping[str, VectorSpec], where: str
) -> None:
    """Every vector of a new chunk names a known vector and has its shape."""
    if not named:
        raise ValueError(
            f"chunk {chunk_id} is not stored yet and came without vectors; "
            "pass vectors for every new chunk"
        )
    for name, vec in named.items():
        spec = specs.get(name)
        if spec is None:
            raise ValueError(f"chunk {chunk_id}: unknown vector {name!r}; {where} has {sorted(specs)}")
        _check_vector(chunk_id, spec, vec)


def _check_vector(chunk_id: str, spec: VectorSpec, vec: Any) -> None:
    if spec.kind == "sparse":
        if not isinstance(vec, SparseVector) and not (
            hasattr(vec, "indices") and hasattr(vec, "values")
        ):
            raise ValueError(
                f"chunk {chunk_id}: vector {spec.name!r} is sparse, got {type(vec).__name__}"
            )
        return
    shape = np.shape(vec)
    if spec.kind == "dense" and shape != (spec.dim,):
        raise ValueError(
            f"chunk {chunk_id}: vector {spec.name!r} is dense {spec.dim}-d, got shape {shape}"
        )
    if spec.kind == "multi" and (len(shape) != 2 or shape[0] == 0 or shape[1] != spec.dim):
        raise ValueError(
            f"chunk {chunk_id}: vector {spec.name!r} is multi (rows x {spec.dim}), "
            f"got shape {shape}"
        )


class QdrantWrite:
    """One document's write transaction on a store backend (see the module docs)."""

    def __init__(
        self,
        backend: Backend,
        specs: Mapping[str, VectorSpec],
        document_id: str,
        chunk_ids: Sequence[str],
        *,
        fingerprint: str,
        where: str,
    ) -> None:
        ids = list(chunk_ids)
        check_chunk_ids(document_id, ids)
        self._backend = backend
        self._specs = specs
        self._where = where
        self.document_id = document_id
        self.fingerprint = fingerprint
        stored = dict(backend.payloads_where(document_filter(document_id), RESERVED_KEYS))
        wanted = set(ids)
        self.missing: tuple[str, ...] = tuple(cid for cid in ids if cid not in stored)
        self._missing = set(self.missing)
        self._kept = [cid for cid in ids if cid in stored]
        self._stale = [cid for cid in stored if cid not in wanted]
        self._marker = {"doc_fingerprint": fingerprint, "doc_chunks": len(ids)}
        self._to_mark = [
            cid for cid in self._kept
            if any(stored[cid].get(k) != v for k, v in self._marker.items())
        ]
        # kept chunks an earlier, interrupted write left marked as not committed
        self._pending_kept = [cid for cid in self._kept if stored[cid].get(PENDING_KEY)]
        # the kept chunks' markers as they were, so an abort after commit began restores them
        self._old_marks = {cid: {k: stored[cid].get(k) for k in RESERVED_KEYS}
                           for cid in dict.fromkeys(self._to_mark + self._pending_kept)}
        self._written: list[str] = []  # added and acknowledged
        self._touched: list[str] = []  # sent to the backend (maybe written when a call failed)
        self._marked = False
        self._done = False

    def add(self, points: Sequence[EmbeddedChunk]) -> None:
        """Write new chunks (each must be in :attr:`missing` and not added before)."""
        self._check(points)
        if not points:
            return
        self._touched += [p.chunk.id for p in points]
        self._backend.upsert(self._points(points))
        self._written += [p.chunk.id for p in points]

    def _check(self, points: Sequence[EmbeddedChunk]) -> None:
        if self._done:
            raise StoreError(f"{self._where}: document {self.document_id}: transaction is over")
        added = set(self._written)
        for p in points:
            cid = p.chunk.id
            if p.chunk.document_id != self.document_id:
                raise ValueError(
                    f"chunk {cid} belongs to document {p.chunk.document_id}, "
                    f"not {self.document_id}"
                )
            if cid not in self._missing:
                raise ValueError(
                    f"chunk {cid} is not one this write of document {self.document_id} "
                    "still needs (it is stored already, or not part of the version)"
                )
            if cid in added:
                raise ValueError(f"chunk {cid} was added twice")
            added.add(cid)
            check_vectors(cid, p.vectors, self._specs, self._where)

    def _points(self, points: Sequence[EmbeddedChunk]) -> list[PointData]:
        return [PointData(id=p.chunk.id, vectors=p.vectors,
                          payload={**p.chunk.to_payload(), **self._marker, PENDING_KEY: 1})
                for p in points]

    def commit(self) -> WriteResult:
        """Mark kept chunks with the new fingerprint and every chunk of the version as
        committed, flush, remove stale ones, flush: one atomic section for readers.

        Until the stale chunks are gone a failure aborts (the previous version stays);
        once they are, the new version is the stored one and is kept even if the last
        flush fails (the error still propagates).
        """
        with self._backend.atomic():
            return self._commit()

    def _commit(self) -> WriteResult:
        self._mark()
        if self._written or self._old_marks:
            self._backend.flush()  # the new version is stored; the previous one is still whole
        return self._finish()

    def _mark(self) -> None:
        """Check every new chunk came, then mark kept chunks with the new fingerprint and
        every chunk of the version as committed (nothing flushed yet)."""
        if self._done:
            raise StoreError(f"{self._where}: document {self.document_id}: transaction is over")
        absent = self._missing - set(self._written)
        if absent:
            raise StoreError(
                f"{self._where}: document {self.document_id}: cannot commit, {len(absent)} of "
                f"its {len(self._missing)} new chunks were never added"
            )
        self._marked = bool(self._old_marks)
        self._backend.set_payload(self._to_mark, self._marker)
        self._backend.delete_payload(self._written + self._pending_kept, [PENDING_KEY])

    def _finish(self) -> WriteResult:
        """Remove the stale chunks (after the marks were flushed), flush: done."""
        if self._stale:
            self._backend.delete_ids(self._stale)
            self._done = True  # nothing left to undo: the stored document is the new version
            self._backend.flush()
        self._done = True
        result = WriteResult(
            added=len(self._written), unchanged=len(self._kept), removed=len(self._stale)
        )
        log.info("%s: document %s: +%d =%d -%d chunks", self._where, self.document_id,
                 result.added, result.unchanged, result.removed)
        return result

    def abort(self) -> None:
        """Remove the points this transaction wrote, and put back the kept chunks' old
        markers if a failed :meth:`commit` had changed them (idempotent)."""
        if self._done:
            return
        with self._backend.atomic():
            self._abort()

    def _abort(self) -> None:
        self._done = True
        if not self._touched and not self._marked:
            return
        log.warning("%s: document %s: write aborted after %d new chunks; removing them",
                    self._where, self.document_id, len(self._touched))
        backend = self._backend
        backend.delete_ids(self._touched)
        if self._marked:
            groups: dict[tuple[tuple[str, Any], ...], list[str]] = {}
            for cid, old in self._old_marks.items():
                groups.setdefault(tuple(sorted(old.items())), []).append(cid)
            for old_items, ids in groups.items():
                present = {k: v for k, v in old_items if v is not None}
                if present:
                    backend.set_payload(ids, present)
                backend.delete_payload(ids, [k for k, v in old_items if v is None])
        backend.flush()

    def __enter__(self) -> QdrantWrite:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._done:
            return
        try:
            self.abort()
        except Exception:
            if exc_type is None:
                raise
            log.warning("%s: document %s: removing the aborted write's points failed too",
                        self._where, self.document_id, exc_info=True)


def _one_backend(writes: Sequence[QdrantWrite]) -> Backend:
    backends = {id(w._backend) for w in writes}
    if len(backends) != 1:
        raise ValueError("writes done together must all be on one store")
    return writes[0]._backend


def add_together(writes: Sequence[QdrantWrite],
                 points: Sequence[Sequence[EmbeddedChunk]]) -> None:
    """:meth:`QdrantWrite.add` for several documents' transactions in one upsert call:
    ``points[i]`` are new chunks of ``writes[i]`` (each checked as ``add`` checks them)."""
    if len(writes) != len(points):
        raise ValueError("add_together needs one list of points per write")
    if not writes:
        return
    backend = _one_backend(writes)
    for write, pts in zip(writes, points):
        write._check(pts)
    data = [d for write, pts in zip(writes, points) for d in write._points(pts)]
    for write, pts in zip(writes, points):
        write._touched += [p.chunk.id for p in pts]
    if data:
        backend.upsert(data)
    for write, pts in zip(writes, points):
        write._written += [p.chunk.id for p in pts]


def commit_together(writes: Sequence[QdrantWrite]) -> list[WriteResult]:
    """:meth:`QdrantWrite.commit` for several documents with one flush for all (many
    small documents otherwise pay one flush each).

    Each document keeps its own guarantees: its chunks are marked committed only once all
    of them are written, and readers see each document's marks together (one atomic
    section for the group). A failure before the stale chunks go propagates, and each
    transaction's ``abort`` (leaving its ``with`` block) restores its previous version.
    """
    if not writes:
        return []
    backend = _one_backend(writes)
    with backend.atomic():
        for write in writes:
            write._mark()
        backend.flush()
        return [write._finish() for write in writes]


def append_points(
    backend: Backend,
    specs: Mapping[str, VectorSpec],
    document_id: str,
    points: Sequence[EmbeddedChunk],
    *,
    batch_size: int,
    where: str,
) -> WriteResult:
    """``QdrantStore.append``: add ``points`` to ``document_id`` without touching its other
    chunks; ids already stored are kept as they are (a retried append adds nothing twice);
    readers see the appended points all together."""
    ids = [p.chunk.id for p in points]
    check_chunk_ids(document_id, ids)
    for p in points:
        if p.chunk.document_id != document_id:
            raise ValueError(
                f"chunk {p.chunk.id} belongs to document {p.chunk.document_id}, not {document_id}"
            )
    stored = {pid for pid, _ in backend.retrieve(ids)} if ids else set()
    new = [p for p in points if p.chunk.id not in stored]
    for p in new:
        check_vectors(p.chunk.id, p.vectors, specs, where)
    with backend.atomic():
        for start in range(0, len(new), batch_size):
            backend.upsert([PointData(id=p.chunk.id, vectors=p.vectors,
                                      payload=p.chunk.to_payload())
                            for p in new[start : start + batch_size]])
        if new:
            backend.flush()
    return WriteResult(added=len(new), unchanged=len(points) - len(new), removed=0)
