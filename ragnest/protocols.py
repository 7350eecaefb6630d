"""Component protocols, optional capabilities, and the component contract.

A ragnest component is a keyword-only dataclass whose fields are JSON-basic
(str, int, float, bool, None, lists and dicts of those). It follows a contract
rather than a base class:

* ``__init__`` is cheap: no disk, no network, no model loading;
* ``warm_up()`` loads heavy state (models, files) and is idempotent;
* ``close()`` releases it; the component can be warmed up again afterwards;
* its parameters round-trip: ``type(c)(**dataclasses.asdict(c))`` is equivalent to ``c``.

Each role below is a :class:`typing.Protocol`: any object with these methods fits,
no inheritance needed. What only some components can do is a protocol of its own
(:class:`PagedParser`, :class:`FittedEmbedder`, :class:`StreamingGenerator`,
:class:`StoreAdmin`, :class:`EmbedderAware`), checked with ``isinstance``. ``ragnest.testing.contracts``
checks the contract::

    >>> from ragnest.protocols import Generator, StreamingGenerator
    >>> from ragnest.generators.extractive import ExtractiveGenerator
    >>> isinstance(ExtractiveGenerator(), Generator)
    True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ragnest.types import (
    Answer,
    AnswerDelta,
    Chunk,
    EmbeddedChunk,
    Hit,
    Query,
    SearchRequest,
    Source,
    Vector,
    VectorSpec,
    WriteResult,
)

__all__ = [
    "Component",
    "Parser",
    "PagedParser",
    "Embedder",
    "FittedEmbedder",
    "Store",
    "DocumentWrite",
    "StoreAdmin",
    "DocumentCatalog",
    "StoredDocument",
    "Reranker",
    "Generator",
    "StreamingGenerator",
    "EmbedderAware",
]


@runtime_checkable
class Component(Protocol):
    """The lifecycle every component offers."""

    def warm_up(self) -> None:
        """Load heavy state (idempotent)."""

    def close(self) -> None:
        """Release heavy state (idempotent)."""


@runtime_checkable
class Parser(Component, Protocol):
    """Turns a :class:`Source` into chunks.

    ``extensions`` lists the lower-case file suffixes it accepts (``(".pdf",)``).
    ``parse`` raises :class:`ragnest.errors.ParseError` naming the file and the problem.
    """

    extensions: tuple[str, ...]

    def parse(self, source: Source) -> Iterator[Chunk]:
        """Yield the chunks of one document, in order."""
        ...


@runtime_checkable
class PagedParser(Parser, Protocol):
    """A parser that can parse a page range on its own (big PDFs are split across
    worker processes). ``parse_pages(s, a, b)`` over consecutive ranges yields exactly
    the chunks of ``parse(s)``."""

    def page_count(self, source: Source) -> int:
        """Pages in the document (cheap: no page is parsed)."""
        ...

    def parse_pages(self, source: Source, start: int, stop: int | None) -> Iterator[Chunk]:
        """The chunks of pages ``start`` (0-based, inclusive) to ``stop`` (exclusive)."""
        ...


@runtime_checkable
class Embedder(Component, Protocol):
    """Turns chunks and queries into named vectors, one per ladder level.

    Level names are local to the embedder (``coarse``, ``mid``, ``fine``); the pipeline
    prefixes them with the component's name to form the store's vector names
    (:func:`ragnest.ladder.vector_name`). ``vector_specs()`` is ordered coarse to
    fine: that order is the funnel.
    """

    def vector_specs(self) -> list[VectorSpec]:
        """The named vectors this embedder produces, coarse to fine."""
        ...

    def identity(self) -> dict[str, Any]:
        """What must not change for stored vectors to stay valid (model, ladder, version)."""
        ...

    def embed_documents(self, chunks: Sequence[Chunk]) -> list[dict[str, Vector]]:
        """One ``{level name: vector}`` mapping per chunk."""
        ...

    def embed_query(self, query: Query) -> dict[str, Vector] | None:
        """The query's vectors, or ``None`` when the query has no modality this embedder reads."""
        ...

    def embed_queries(self, queries: Sequence[Query]) -> list[dict[str, Vector] | None]:
        """:meth:`embed_query` for many queries at once (batched where the model allows)."""
        ...


@runtime_checkable
class FittedEmbedder(Embedder, Protocol):
    """An embedder with state fitted on the corpus (e.g. a PCA rotation of its ladder).

    The state is fitted once, explicitly (``Pipeline.fit(sample)``, ``ragnest fit``, or
    by the first ingest into a collection that has none), stored with the collection,
    and loaded by every later pipeline, worker or process: nobody fits their own.
    """

    @property
    def needs_fit(self) -> bool:
        """True while the embedder asks for fitted state and has none (fitted or loaded)."""
        ...

    def fit(self, chunks: Sequence[Chunk]) -> None:
        """Fit the state on a sample of the corpus (replaces any state held in memory)."""
        ...

    def fitted_state(self) -> dict[str, Any] | None:
        """JSON-ready fitted state, or ``None`` when nothing is fitted (yet)."""
        ...

    def load_fitted_state(self, state: Mapping[str, Any] | None) -> None:
        """Restore state read back from the store (``None``: nothing stored yet)."""
        ...


@runtime_checkable
class DocumentWrite(Protocol):
    """One document's write transaction (see :meth:`Store.begin`).

    ``missing`` lists the chunk ids that are not stored yet: the caller embeds exactly
    those and hands them to :meth:`add` (in as many batches as it likes). :meth:`commit`
    makes the stored document equal the new version: kept chunks get the new
    fingerprint, stale ones are removed, and only then does the fingerprint mark the
    document as completely stored. :meth:`abort` removes what this transaction added,
    so the previous version stays intact. As a context manager, leaving the block
    without :meth:`commit` aborts.
    """

    missing: tuple[str, ...]

    def add(self, points: Sequence[EmbeddedChunk]) -> None:
        """Write new chunks with their vectors (ids must be among :attr:`missing`)."""
        ...

    def commit(self) -> WriteResult:
        """Finish the document (every missing chunk must have been added)."""
        ...

    def abort(self) -> None:
        """Remove what :meth:`add` wrote; the stored document stays the previous version."""
        ...

    def __enter__(self) -> DocumentWrite: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Store(Component, Protocol):
    """Holds chunks and their vectors; runs funnel searches.

    Writes are data-only: the store receives chunks with their vectors
    (:class:`~ragnest.types.EmbeddedChunk`) and never calls an embedder.
    """

    def open(self, specs: Sequence[VectorSpec], identity: Mapping[str, Any]) -> None:
        """Create or reopen the collection; a different ladder or identity is an error."""
        ...

    def chunk_ids(self, document_id: str) -> set[str]:
        """Ids of the chunks stored for a document."""
        ...

    def fitted_state(self, key: str) -> dict[str, Any] | None:
        """State an embedder fitted on the corpus, stored with the collection."""
        ...

    def save_fitted_state(self, key: str, state: Mapping[str, Any]) -> None:
        """Store fitted state once (a different state under ``key`` is an error)."""
        ...

    def document_fingerprint(self, document_id: str) -> str | None:
        """The content fingerprint of a completely stored document, else ``None``."""
        ...

    def begin(
        self, document_id: str, chunk_ids: Sequence[str], *, fingerprint: str
    ) -> DocumentWrite:
        """Start replacing a document by the version made of ``chunk_ids`` (in order)."""
        ...

    def append(self, document_id: str, points: Sequence[EmbeddedChunk]) -> WriteResult:
        """Add chunks to a document without replacing it (ids already stored are kept)."""
        ...

    def delete_document(self, document_id: str) -> int:
        """Remove every chunk of a document; returns how many were removed."""
        ...

    def search(self, request: SearchRequest) -> list[Hit]:
        """Run the routes' funnels, fuse them, return the top hits."""
        ...

    def stats(self) -> dict[str, Any]:
        """At least ``{"chunks": int, "documents": int}``."""
        ...


@runtime_checkable
class StoreAdmin(Protocol):
    """What a store offers beyond reads and writes: fetching chunks, listing
    documents, building indexes, dropping the collection."""

    def get(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        """The stored chunks for ``chunk_ids``, in that order (missing ids skipped)."""
        ...

    def documents(self) -> list[dict[str, Any]]:
        """One ``{"document_id", "source", "chunks"}`` dict per stored document."""
        ...

    def optimize(self) -> bool:
        """Build pending indexes; returns whether anything was done."""
        ...

    def prepare_write(self) -> None:
        """Become the writer now (take the store's writer lock), before the first write."""
        ...

    def drop(self) -> None:
        """Delete the whole collection."""
        ...


@dataclass(frozen=True)
class StoredDocument:
    """A document as the store holds it (what ``QdrantStore.catalog`` lists).

    ``sources`` maps each path (or name) its chunks cite to how many chunks cite it:
    one entry, except while a move is being applied. ``fingerprint`` is the content
    fingerprint when every chunk of that version is stored, else ``None``.

    >>> doc = StoredDocument("id", {"/docs/a.pdf": 3}, 3, "f1")
    >>> doc.source, doc.complete
    ('/docs/a.pdf', True)
    """

    document_id: str
    sources: Mapping[str, int]
    chunks: int
    fingerprint: str | None = None

    @property
    def source(self) -> str:
        """The path most of its chunks cite (``""`` when none)."""
        return max(self.sources.items(), key=lambda kv: (kv[1], kv[0]))[0] if self.sources else ""

    @property
    def complete(self) -> bool:
        """Whether a whole file version is stored (an ingest committed it)."""
        return self.fingerprint is not None


@runtime_checkable
class DocumentCatalog(Protocol):
    """What a store offers for the document lifecycle (``ragnest sync``, moved files,
    ``ragnest delete PATH``): finding documents by the path they cite or by content
    fingerprint, and rewriting stored chunks' payload fields in place."""

    def catalog(
        self,
        *,
        source: str | None = None,
        fingerprint: str | None = None,
        document_id: str | None = None,
    ) -> list[StoredDocument]:
        """Stored documents (all, or those with a chunk citing ``source`` / carrying
        ``fingerprint`` / of that id), each described whole."""
        ...

    def set_chunk_fields(
        self, document_id: str, fields: Mapping[str, Mapping[str, Any]]
    ) -> int:
        """Set payload fields (``{chunk id: {field: value}}``) of a document's stored
        chunks; ids and vectors stay as they are. Returns the chunks updated."""
        ...


@runtime_checkable
class Reranker(Component, Protocol):
    """Re-scores hits for a query (pointwise), best first."""

    def rerank(self, query: Query, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        ...


@runtime_checkable
class Generator(Component, Protocol):
    """Answers a query from hits, citing document and page."""

    def generate(self, query: Query, hits: Sequence[Hit]) -> Answer:
        ...


@runtime_checkable
class StreamingGenerator(Generator, Protocol):
    """A generator that yields its answer as it is produced.

    The deltas' texts joined are the answer's text; the last delta has ``done=True``
    and carries the complete :class:`~ragnest.types.Answer`, usage included.
    """

    def stream(self, query: Query, hits: Sequence[Hit]) -> Iterator[AnswerDelta]:
        ...


@runtime_checkable
class EmbedderAware(Protocol):
    """A component that reads text with one of the pipeline's embedders (the extractive
    generator scores sentences with the dense ladder's vectors).

    ``uses_embedder`` names the pipeline embedder it asks for (``None``: it needs none);
    the pipeline hands that embedder over with ``bind_embedder`` before the component
    answers (binding again is cheap and replaces the previous one; ``None`` unbinds)::

        >>> from ragnest.generators.extractive import ExtractiveGenerator
        >>> gen = ExtractiveGenerator(embedder="dense")
        >>> isinstance(gen, EmbedderAware), gen.uses_embedder
        (True, 'dense')

    The component must keep working unbound (e.g. on lexical evidence alone).
    """

    @property
    def uses_embedder(self) -> str | None:
        """The name of the pipeline embedder this component asks for, or ``None``."""
        ...

    def bind_embedder(self, embedder: Embedder | None) -> None:
        """Use ``embedder`` from now on (``None``: none)."""
        ...
