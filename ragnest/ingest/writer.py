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

from ragnest.errors import ParseError
from ragnest.ingest.embed import embed_chunks, fit_embedders, needs_fit
from ragnest.ingest.report import DocumentReport
from ragnest.protocols import Embedder, Store
from ragnest.types import Chunk

__all__ = ["DocumentWriter", "page_count"]

logger = logging.getLogger(__name__)


def page_count(chunks: Sequence[Chunk]) -> int:
    """Distinct pages the chunks come from."""
    return len({p for c in chunks for p in (c.pages or ((c.page,) if c.page else ()))})


class DocumentWriter:
    """Embeds and writes parsed documents into an open store (``batch_size`` chunks at a
    time, so a 10,000-page document never holds all its vectors in memory).

    Before the first vectors are made, embedders that need corpus-fitted state and
    find none in the store are fitted on the first batch of new chunks, and the state
    is stored (``Pipeline.fit`` / ``ragnest fit`` fit on a chosen sample instead).
    """

    def __init__(
        self, store: Store, embedders: Mapping[str, Embedder], *, batch_size: int = 64
    ) -> None:
        self.store = store
        self.embedders = dict(embedders)
        self.batch_size = max(1, int(batch_size))

    def write(
        self, name: str, document_id: str, chunks: Sequence[Chunk], fingerprint: str
    ) -> DocumentReport:
        """Make the stored document ``document_id`` equal ``chunks`` and report what changed.

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
                tx.add(embed_chunks(self.embedders, batch))
            result = tx.commit()
        status = "updated" if existing else "added"
        if result.added == 0 and result.removed == 0:
            status = "unchanged"
        return DocumentReport(name, document_id, page_count(chunks), result.added,
                              result.unchanged, result.removed, status)
