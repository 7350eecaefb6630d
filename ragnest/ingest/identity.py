"""Which stored document a file is: the one at its path, a moved one, or a new one.

Document ids are assigned once and then kept. A file first ingested at a path gets the
id :attr:`~ragnest.types.Source.document_id` derives from that path; when the file
moves, its document keeps its id and its chunk ids, and only the paths its chunks cite
are rewritten in place (payload ``source``, page and picture references): nothing is
re-embedded, and a later edit of the file still updates it chunk by chunk. The store,
not the path, says which document a path holds (the ``source`` payload field is
indexed). A new file at a path whose derived id still names a document that moved
away gets an id derived from the path and a counter, so ids never collide.

A file is recognised as moved when no document cites its path (or the one that does
holds other content), and a completely stored document has its content fingerprint
while every path that document cites is gone. A copy (the old path still exists) is a
new document::

    >>> from ragnest.ingest.identity import moved_path
    >>> moved_path("/old/report.docx::word/media/image1.png", "/old/report.docx",
    ...            "/new/report.docx")
    '/new/report.docx::word/media/image1.png'
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ragnest._paths import local_path
from ragnest.ingest.report import DocumentReport
from ragnest.media.resolve import MEMBER_SEPARATOR
from ragnest.protocols import DocumentCatalog, Store, StoreAdmin, StoredDocument
from ragnest.types import NAMESPACE, Chunk, ImageRef, Source

__all__ = [
    "Relocation",
    "apply_relocation",
    "files_gone",
    "has_catalog",
    "moved_path",
    "relocate",
    "relocated",
    "resolve_path",
    "stored_pages",
]

logger = logging.getLogger(__name__)

#: Chunks read and rewritten per store call when a document moves.
BATCH = 1024


@dataclass(frozen=True)
class Relocation:
    """A stored document to re-point at a file's path: the file moved, nothing to parse.

    ``previous``: the paths its chunks cited; ``replaces``: other documents citing the
    new path (an older file there), removed before the move.
    """

    source: Source
    document_id: str
    fingerprint: str
    previous: tuple[str, ...] = ()
    replaces: tuple[StoredDocument, ...] = ()

    @property
    def status(self) -> str:
        return "moved" if self.previous else "updated"


def stored_pages(store: Store, chunk_ids: set[str]) -> int:
    """Pages of a stored document, read back from one of its chunks (0 when unknown)."""
    if not chunk_ids or not isinstance(store, StoreAdmin):
        return 0
    chunks = store.get(sorted(chunk_ids)[:1])
    if chunks and chunks[0].metadata.get("page_count"):
        return int(chunks[0].metadata["page_count"])
    return len(chunk_ids) if chunks and chunks[0].kind == "page" else 0


def has_catalog(store: Store) -> bool:
    """Whether ``store`` can list documents by path and fingerprint and rewrite chunks."""
    return isinstance(store, DocumentCatalog) and isinstance(store, StoreAdmin)


def moved_path(value: str, old: str, new: str) -> str:
    """``value`` (a location a chunk cites) after its document moved from ``old`` to ``new``.

    The document itself and members of it (``old::member``) follow it; a file beside
    it (a picture an HTML page references) follows only when it is gone from the old
    folder and present in the new one.
    """
    if value == old:
        return new
    if value.startswith(old + MEMBER_SEPARATOR):
        return new + value[len(old):]
    old_dir, new_dir = os.path.dirname(old), os.path.dirname(new)
    if old_dir != new_dir and value.startswith(old_dir + os.sep):
        there = new_dir + value[len(old_dir):]
        if not os.path.lexists(local_path(value)) and os.path.lexists(local_path(there)):
            return there
    return value


def _ref(ref: ImageRef | None, old: str, new: str) -> ImageRef | None:
    if ref is None:
        return None
    return replace(ref, source=ref.source and moved_path(ref.source, old, new),
                   blob=ref.blob and moved_path(ref.blob, old, new))


def relocated(chunk: Chunk, new: str) -> Chunk:
    """``chunk`` citing ``new`` instead of its current source (image references too)."""
    old = chunk.source
    if not old or old == new:
        return chunk
    meta = {k: moved_path(v, old, new) if isinstance(v, str) else v
            for k, v in chunk.metadata.items()}
    return replace(
        chunk, source=new, image=_ref(chunk.image, old, new), metadata=meta,
        segments=tuple(replace(s, image=_ref(s.image, old, new)) for s in chunk.segments),
    )


def relocate(store: Store, document_id: str, new: str) -> int:
    """Re-point every chunk of ``document_id`` at the path ``new`` (payload only; ids and
    vectors stay). Chunks already citing ``new`` are left alone, so an interrupted move
    completes when run again. Returns the chunks rewritten."""
    if not has_catalog(store):
        raise TypeError(f"{type(store).__name__} cannot rewrite stored chunks")
    ids = sorted(store.chunk_ids(document_id))
    done = 0
    for start in range(0, len(ids), BATCH):
        fields: dict[str, Mapping[str, Any]] = {}
        for chunk in store.get(ids[start : start + BATCH]):  # type: ignore[attr-defined]
            if chunk.source == new:
                continue
            before, after = chunk.to_payload(), relocated(chunk, new).to_payload()
            fields[chunk.id] = {k: v for k, v in after.items() if before.get(k) != v}
        done += store.set_chunk_fields(document_id, fields)  # type: ignore[attr-defined]
    return done


def apply_relocation(store: Store, move: Relocation) -> DocumentReport:
    """Carry out a :class:`Relocation` and report it (status ``moved``)."""
    path = move.source.display_name
    removed = sum(store.delete_document(d.document_id) for d in move.replaces)
    n = relocate(store, move.document_id, path)
    ids = store.chunk_ids(move.document_id)
    if move.previous:
        logger.info("%s: moved here from %s (%d chunks re-pointed, nothing re-embedded)",
                    path, ", ".join(move.previous), n)
    return DocumentReport(path, move.document_id, stored_pages(store, ids), 0, len(ids),
                          removed, move.status, previous_path=_main(move.previous))


def _main(paths: Sequence[str]) -> str | None:
    return paths[0] if paths else None


def files_gone(doc: StoredDocument) -> bool:
    """Every path the document cites is an absolute path that no longer exists."""
    return bool(doc.sources) and all(
        os.path.isabs(p) and not os.path.lexists(local_path(p)) for p in doc.sources
    )


def _pick(here: Sequence[StoredDocument], fingerprint: str, derived: str) -> StoredDocument | None:
    """The document a path holds when several cite it (after an interrupted move)."""
    if not here:
        return None
    return min(here, key=lambda d: (d.fingerprint != fingerprint, d.document_id != derived,
                                    not d.complete, d.document_id))


def _new_id(store: Store, path: str, derived: str) -> str:
    """The id for a file no stored document cites: the derived id, unless a document
    that moved away holds it; then the first free id derived from the path and a counter.

    A document under the derived id whose chunks cite no absolute path (a parser that
    sets no ``chunk.source``) is this file's: it keeps the id.
    """
    held = store.catalog(document_id=derived)  # type: ignore[attr-defined]
    if not held or not any(os.path.isabs(p) for p in held[0].sources):
        return derived
    candidate, n = derived, 1
    while store.chunk_ids(candidate):
        n += 1
        candidate = str(uuid.uuid5(NAMESPACE, f"path:{path}#{n}"))
    return candidate


def resolve_path(
    source: Source, store: Store, fingerprint: str, claimed: set[str]
) -> Relocation | tuple[str, tuple[str, ...]]:
    """The stored identity of the file ``source`` (a path source; ``store`` has a catalog).

    A :class:`Relocation` when a stored document is to be re-pointed at this path (it
    moved here, or a move was interrupted); else ``(document id, stale ids)``: the id
    to write the file under (the document stored at this path, or a new id) and other
    documents citing this path, to remove once it is written. ``claimed`` holds the ids
    already moved in this run (so two copies of one moved file do not claim one
    document); a document claimed here is added to it.
    """
    path = source.display_name
    here = store.catalog(source=path)  # type: ignore[attr-defined]
    mine = _pick(here, fingerprint, source.document_id)
    others = tuple(d for d in here if d is not mine)
    if mine is not None and mine.fingerprint == fingerprint:
        if set(mine.sources) != {path} or others:
            claimed.add(mine.document_id)
            previous = tuple(sorted(set(mine.sources) - {path}, key=lambda p: -mine.sources[p]))
            return Relocation(source, mine.document_id, fingerprint, previous, others)
        return mine.document_id, ()
    taken = {d.document_id for d in here} | claimed
    for doc in store.catalog(fingerprint=fingerprint):  # type: ignore[attr-defined]
        if doc.document_id not in taken and doc.fingerprint == fingerprint and files_gone(doc):
            claimed.add(doc.document_id)
            previous = tuple(sorted(doc.sources, key=lambda p: -doc.sources[p]))
            return Relocation(source, doc.document_id, fingerprint, previous, tuple(here))
    if mine is not None:
        return mine.document_id, tuple(d.document_id for d in others)
    return _new_id(store, path, source.document_id), ()
