"""Writing one parsed document: embed the chunks the store lacks, batch by batch, in a
write transaction that leaves the previous version intact on any failure.

    >>> import tempfile
    >>> from ragnest.collection import open_collection
    >>> from ragnest.embedders.bm25 import Bm25Embedder
    >>> from ragnest.ingest.writer import DocumentWriter
    >>> from ragnest.stores import QdrantStore
    >>> from ragnest.types import Chunk, make_chunk_id
    >>> embedders = {"bm25": Bm25Embedder()}
    >>> store = QdrantStore(path=tempfile.mkdtemp())
    >>> open_collection(store, embedders)
    >>> chunk = Chunk(id=make_chunk_id("d", 0, "x"), document_id="d", kind="text", text="x y")
    >>> DocumentWriter(store, embedders).write("notes.txt", "d", [chunk], "fp1").status
    'added'
    >>> store.close()
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

from ragnest.errors import ParseError, StoreError
from ragnest.ingest.embed import embed_chunks, fit_embedders, needs_fit
from ragnest.ingest.report import DocumentReport
from ragnest.protocols import Embedder, Store
from ragnest.stores._write import QdrantWrite, add_together, commit_together
from ragnest.types import Chunk, EmbeddedChunk, Vector

__all__ = ["DocumentWriter", "Parsed", "page_count"]

logger = logging.getLogger(__name__)


def page_count(chunks: Sequence[Chunk]) -> int:
    """Distinct pages the chunks come from."""
    return len({p for c in chunks for p in (c.pages or ((c.page,) if c.page else ()))})


@dataclass(frozen=True)
class Parsed:
    """One parsed document waiting to be written: its display ``name``, stored
    ``document_id``, ``chunks``, content ``fingerprint`` and the ``vectors`` already
    made for some chunks (by chunk id; e.g. by a parser worker): the others are
    embedded by the writer."""

    name: str
    document_id: str
    chunks: Sequence[Chunk]
    fingerprint: str
    vectors: Mapping[str, Mapping[str, Vector]] = field(default_factory=dict)


class DocumentWriter:
    """Embeds and writes parsed documents into an open store (``batch_size`` chunks at a
    time, so a 10,000-page document never holds all its vectors in memory).

    Before the first vectors are made, embedders that need corpus-fitted state and
    find none in the store are fitted on the first batch of new chunks, and the state
    is stored (``Pipeline.fit`` / ``ragnest fit`` fit on a chosen sample instead).

    :meth:`write_many` writes several small documents together (one embedding round,
    one upsert and one flush for the group), each still committed whole or not at all.
    """

    def __init__(
        self, store: Store, embedders: Mapping[str, Embedder], *, batch_size: int = 64
    ) -> None:
        self.store = store
        self.embedders = dict(embedders)
        self.batch_size = max(1, int(batch_size))

    def write(
        self, name: str, document_id: str, chunks: Sequence[Chunk], fingerprint: str,
        vectors: Mapping[str, Mapping[str, Vector]] | None = None,
    ) -> DocumentReport:
        """Make the stored document ``document_id`` equal ``chunks`` and report what changed.

        ``vectors`` made elsewhere (by chunk id) are used as they are; the chunks without
        are embedded here.

        Raises :class:`ParseError` for a document without content, the embedders'
        :class:`~ragnest.errors.EmbeddingError`, and the store's errors; in every case
        the transaction is aborted first.
        """
        if not chunks:
            raise ParseError(name, "no content could be extracted")
        existing = bool(self.store.chunk_ids(document_id))
        with self.store.begin(document_id, [c.id for c in chunks], fingerprint=fingerprint) as tx:
            need = set(tx.missing)
            new = [c for c in chunks if c.id in need]
            for start in range(0, len(new), self.batch_size):
                batch = new[start : start + self.batch_size]
                if start == 0 and needs_fit(self.embedders):
                    fitted = fit_embedders(self.store, self.embedders, batch)
                    logger.warning(
                        "fitted %s on the first %d chunks of %s (no fitted state was stored); "
                        "`ragnest fit` fits on a sample of the whole corpus instead",
                        ", ".join(repr(k) for k in fitted) or "nothing", len(batch), name,
                    )
                tx.add(self._embed(batch, vectors))
            result = tx.commit()
        status = "updated" if existing else "added"
        if result.added == 0 and result.removed == 0:
            status = "unchanged"
        return DocumentReport(name, document_id, page_count(chunks), result.added,
                              result.unchanged, result.removed, status)

    def write_many(self, docs: Sequence[Parsed]) -> list[DocumentReport | Exception]:
        """Write several parsed documents together and report each (in order).

        Their new chunks are embedded ``batch_size`` at a time across documents, written
        in one upsert per batch, and committed with one flush for the group (see
        :func:`ragnest.stores._write.commit_together`): a document counts as stored only
        once all of its chunks are written and its commit is flushed. When anything but
        the store fails (an embedder error, a document without content), the group is
        undone and its documents are written one by one, so only the bad one fails: its
        entry is the exception. Store errors propagate (nothing of the group is reported).
        """
        if len(docs) > 1 and not needs_fit(self.embedders) and all(d.chunks for d in docs):
            try:
                return list(self._together(docs))
            except (StoreError, KeyboardInterrupt):
                raise
            except _NotTogether:
                pass
            except Exception as err:  # find the document that failed, write the others
                logger.info("writing %d documents together failed (%s); one by one",
                            len(docs), err)
        out: list[DocumentReport | Exception] = []
        for d in docs:
            try:
                out.append(self.write(d.name, d.document_id, d.chunks, d.fingerprint,
                                      d.vectors))
            except (StoreError, KeyboardInterrupt):
                raise
            except Exception as err:
                out.append(err)
        return out

    def _together(self, docs: Sequence[Parsed]) -> list[DocumentReport]:
        existing = [bool(self.store.chunk_ids(d.document_id)) for d in docs]
        with ExitStack() as stack:
            writes = []
            for d in docs:
                tx = stack.enter_context(
                    self.store.begin(d.document_id, [c.id for c in d.chunks],
                                     fingerprint=d.fingerprint))
                if not isinstance(tx, QdrantWrite):
                    raise _NotTogether
                writes.append(tx)
            slot = {d.document_id: i for i, d in enumerate(docs)}
            if len(slot) != len(docs):
                raise _NotTogether
            new = []
            ready: dict[str, Mapping[str, Vector]] = {}
            for d, tx in zip(docs, writes):
                need = set(tx.missing)
                new += [c for c in d.chunks if c.id in need]
                ready.update(d.vectors)
            for start in range(0, len(new), self.batch_size):
                per_doc: list[list] = [[] for _ in docs]
                for point in self._embed(new[start : start + self.batch_size], ready):
                    per_doc[slot[point.chunk.document_id]].append(point)
                add_together(writes, per_doc)
            results = commit_together(writes)
        reports = []
        for d, had, result in zip(docs, existing, results):
            status = "updated" if had else "added"
            if result.added == 0 and result.removed == 0:
                status = "unchanged"
            reports.append(DocumentReport(d.name, d.document_id, page_count(d.chunks),
                                          result.added, result.unchanged, result.removed,
                                          status))
        return reports


    def _embed(self, chunks: Sequence[Chunk],
               ready: Mapping[str, Mapping[str, Vector]] | None) -> list[EmbeddedChunk]:
        """The chunks with their vectors: those in ``ready`` as given, the rest embedded."""
        if not ready or needs_fit(self.embedders):
            return embed_chunks(self.embedders, chunks)
        todo = [c for c in chunks if c.id not in ready]
        made = iter(embed_chunks(self.embedders, todo) if todo else ())
        return [EmbeddedChunk(chunk=c, vectors=dict(ready[c.id])) if c.id in ready
                else next(made) for c in chunks]


class _NotTogether(Exception):
    """The store's transactions cannot be grouped: write one by one."""
