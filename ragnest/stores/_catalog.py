"""The store's document catalog: which documents it holds, the paths they cite, their
fingerprints, and payload rewrites in place (what a moved file needs).

Built on the backend interface only, so every backend (Qdrant Edge, a server, local
mode) offers it. Lookups by path or fingerprint use the indexed ``source`` and
``doc_fingerprint`` fields and cost a few counts in the common case (one document per
path, one path per document); listing every document reads four small payload fields
per chunk::

    >>> import numpy as np
    >>> from ragnest.stores import QdrantStore
    >>> from ragnest.types import Chunk, VectorSpec, make_chunk_id
    >>> with QdrantStore(location=":memory:") as store:
    ...     store.open([VectorSpec(name="v", kind="dense", dim=2)], {"model": "m"})
    ...     cid = make_chunk_id("d", 0, "x")
    ...     chunk = Chunk(id=cid, document_id="d", kind="text", text="x", source="/a/x.md")
    ...     _ = store.write_document("d", [chunk], {cid: {"v": np.ones(2)}}, fingerprint="f1")
    ...     _ = store.set_chunk_fields("d", {cid: {"source": "/b/x.md"}})
    ...     [(d.document_id, dict(d.sources), d.fingerprint) for d in store.catalog()]
    [('d', {'/b/x.md': 1}, 'f1')]
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ragnest.protocols import StoredDocument
from ragnest.stores._backend import PENDING_KEY, RESERVED_KEYS, Backend
from ragnest.stores._filters import Condition
from ragnest.stores._write import document_filter

__all__ = [
    "SETTABLE_FIELDS", "catalog", "committed_fingerprint", "documents", "set_chunk_fields",
]

log = logging.getLogger(__name__)

#: Chunk payload fields that may be rewritten in place (``document_id`` may not: chunk
#: ids derive from it; nor the store's own markers).
SETTABLE_FIELDS = frozenset(
    {"kind", "text", "source", "segments", "page", "pages", "bbox", "image", "metadata"}
)

_KEYS = ["document_id", "source", *RESERVED_KEYS]
#: Chunks written by a document write that was not committed (a killed ingest).
_PENDING = Condition(PENDING_KEY, "match", 1)


def committed_fingerprint(backend: Backend, doc: str) -> str | None:
    """``doc``'s fingerprint when every chunk of that version is stored and committed
    (``QdrantStore.document_fingerprint``); ``None`` otherwise."""
    rows = backend.payloads_where(document_filter(doc), RESERVED_KEYS, limit=1)
    if not rows:
        return None
    fp, total = rows[0][1].get("doc_fingerprint"), rows[0][1].get("doc_chunks")
    if not isinstance(fp, str) or not isinstance(total, int):
        return None
    if backend.count(document_filter(doc)) != total:
        return None
    if backend.count([*document_filter(doc), Condition("doc_fingerprint", "match", fp)]) != total:
        return None
    return None if backend.count([*document_filter(doc), _PENDING]) else fp


def _summarise(rows: Iterable[tuple[str, Mapping[str, Any]]]) -> list[StoredDocument]:
    """Documents from their chunks' payloads (``document_id``, ``source`` and markers)."""
    sources: dict[str, Counter[str]] = {}
    prints: dict[str, Counter[Any]] = {}
    totals: dict[str, Counter[Any]] = {}
    pending: set[str] = set()
    for _, payload in rows:
        doc = str(payload.get("document_id"))
        sources.setdefault(doc, Counter())[str(payload.get("source") or "")] += 1
        prints.setdefault(doc, Counter())[payload.get("doc_fingerprint")] += 1
        totals.setdefault(doc, Counter())[payload.get("doc_chunks")] += 1
        if payload.get(PENDING_KEY):
            pending.add(doc)
    docs = []
    for doc, counts in sources.items():
        n = sum(counts.values())
        fps, tots = prints[doc], totals[doc]
        fp = next(iter(fps)) if len(fps) == 1 else None
        complete = (isinstance(fp, str) and len(tots) == 1 and next(iter(tots)) == n
                    and doc not in pending)
        docs.append(StoredDocument(doc, dict(counts), n, fp if complete else None))
    return _sorted(docs)


def _sorted(docs: Iterable[StoredDocument]) -> list[StoredDocument]:
    return sorted(docs, key=lambda d: (d.source, d.document_id))


def _document_ids(backend: Backend, conditions: Sequence[Condition]) -> list[str]:
    """Distinct ids of the documents with a chunk matching ``conditions``."""
    first = backend.payloads_where(conditions, ["document_id"], limit=1)
    if not first:
        return []
    doc = str(first[0][1].get("document_id"))
    if backend.count(conditions) == backend.count([*conditions, *document_filter(doc)]):
        return [doc]  # the common case: one document matches
    rows = backend.payloads_where(conditions, ["document_id"])
    return list(dict.fromkeys(str(p.get("document_id")) for _, p in rows))


def _describe(backend: Backend, doc: str) -> StoredDocument | None:
    """One stored document, described whole (``None`` when it has no chunk)."""
    rows = backend.payloads_where(document_filter(doc), _KEYS, limit=1)
    if not rows:
        return None
    payload = rows[0][1]
    total = backend.count(document_filter(doc))
    source = str(payload.get("source") or "")
    same_source = Condition("source", "match", source) if source else None
    fp, n = payload.get("doc_fingerprint"), payload.get("doc_chunks")
    marked = Condition("doc_fingerprint", "match", fp) if isinstance(fp, str) else None
    simple = (
        same_source is not None
        and backend.count([*document_filter(doc), same_source]) == total
        and (marked is None or backend.count([*document_filter(doc), marked]) == total)
    )
    if not simple:  # several paths (a move under way) or versions: read them all
        return _summarise(backend.payloads_where(document_filter(doc), _KEYS))[0]
    complete = (marked is not None and n == total
                and not backend.count([*document_filter(doc), _PENDING]))
    return StoredDocument(doc, {source: total}, total, fp if complete else None)


def catalog(
    backend: Backend,
    *,
    source: str | None = None,
    fingerprint: str | None = None,
    document_id: str | None = None,
) -> list[StoredDocument]:
    """Stored documents, all or those matching ``source`` / ``fingerprint`` /
    ``document_id`` (see ``QdrantStore.catalog``)."""
    conditions = [] if document_id is None else document_filter(document_id)
    if source is not None:
        conditions.append(Condition("source", "match", source))
    if fingerprint is not None:
        conditions.append(Condition("doc_fingerprint", "match", fingerprint))
    if not conditions:
        return _summarise(backend.payloads_where([], _KEYS))
    found = (_describe(backend, doc) for doc in _document_ids(backend, conditions))
    return _sorted(d for d in found if d is not None)


def set_chunk_fields(
    backend: Backend, document_id: str, fields: Mapping[str, Mapping[str, Any]], where: str
) -> int:
    """Set payload fields of stored chunks of ``document_id`` (see
    ``QdrantStore.set_chunk_fields``); chunks with the same new values share one call."""
    if not fields:
        return 0
    for cid, values in fields.items():
        bad = sorted(set(values) - SETTABLE_FIELDS)
        if bad:
            raise ValueError(
                f"chunk {cid}: payload field(s) {bad} cannot be set in place; "
                f"settable: {sorted(SETTABLE_FIELDS)}"
            )
    stored = set(backend.ids_where(document_filter(document_id)))
    foreign = [cid for cid in fields if cid not in stored]
    if foreign:
        raise ValueError(
            f"{where}: chunk(s) {foreign[:3]} are not stored chunks of document {document_id}"
        )
    groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for cid, values in fields.items():
        if not values:
            continue
        key = json.dumps(values, sort_keys=True, default=str)
        groups.setdefault(key, (dict(values), []))[1].append(cid)
    with backend.atomic():  # readers see the document re-pointed all together
        for values, ids in groups.values():
            backend.set_payload(ids, values)
        if groups:
            backend.flush()
    n = sum(len(ids) for _, ids in groups.values())
    log.info("%s: document %s: rewrote %d chunk payloads", where, document_id, n)
    return n


def documents(backend: Backend) -> list[dict[str, Any]]:
    """``QdrantStore.documents``: one ``{"document_id", "source", "chunks"}`` dict per
    stored document, sorted by source."""
    docs: dict[str, dict[str, Any]] = {}
    for _, payload in backend.payloads_where([], ["document_id", "source"]):
        doc_id = payload.get("document_id")
        entry = docs.setdefault(
            doc_id, {"document_id": doc_id, "source": payload.get("source") or "", "chunks": 0}
        )
        entry["chunks"] += 1
    return sorted(docs.values(), key=lambda d: (d["source"], str(d["document_id"])))
