"""Component protocols and the component contract.

A ragnest component is a keyword-only dataclass whose fields are JSON-basic
(str, int, float, bool, None, lists and dicts of those). It follows a contract
rather than a base class:

* ``__init__`` is cheap: no disk, no network, no model loading;
* ``warm_up()`` loads heavy state (models, files) and is idempotent;
* ``close()`` releases it; the component can be warmed up again afterwards;
* its parameters round-trip: ``type(c)(**dataclasses.asdict(c))`` is equivalent to ``c``.

Each role below is a :class:`typing.Protocol`: any object with these methods fits,
no inheritance needed. ``ragnest.testing.contracts`` checks the contract::

    >>> from ragnest.protocols import Generator
    >>> from ragnest.generators.extractive import ExtractiveGenerator
    >>> isinstance(ExtractiveGenerator(), Generator)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ragnest.types import Answer, Chunk, Hit, Query, SearchRequest, Source, Vector, VectorSpec

__all__ = [
    "Component",
    "Parser",
    "Embedder",
    "FittedEmbedder",
    "Store",
    "Reranker",
    "Generator",
    "WriteResult",
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
class Embedder(Component, Protocol):
    """Turns chunks and queries into named vectors, one per ladder level.

    Level names are local to the embedder (``coarse``, ``mid``, ``fine``); the pipeline
    prefixes them with the component's name to form the store's vector names.
    ``vector_specs()`` is ordered coarse to fine: that order is the funnel.
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


@runtime_checkable
class FittedEmbedder(Embedder, Protocol):
    """An embedder with state fitted on the corpus (e.g. a PCA rotation of its ladder).

    The pipeline loads the stored state after opening the store, and stores the state
    the first ``embed_documents`` call fitted before any vector made with it is written.
    """

    def fitted_state(self) -> dict[str, Any] | None:
        """JSON-ready fitted state, or ``None`` when nothing is fitted (yet)."""
        ...

    def load_fitted_state(self, state: Mapping[str, Any] | None) -> None:
        """Restore state read back from the store (``None``: nothing stored yet)."""
        ...


class WriteResult(Protocol):
    added: int
    unchanged: int
    removed: int


@runtime_checkable
class Store(Component, Protocol):
    """Holds chunks and their vectors; runs funnel searches."""

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

    def write_document(
        self,
        document_id: str,
        chunks: Sequence[Chunk],
        vectors: Mapping[str, Mapping[str, Vector]]
        | Callable[[Sequence[Chunk]], Mapping[str, Mapping[str, Vector]]],
        *,
        fingerprint: str,
    ) -> WriteResult:
        """Make the stored document equal ``chunks``: add new ones, drop stale ones.

        ``vectors`` holds the new chunks' vectors, or is a callable embedding a batch
        of new chunks (the store calls it batch by batch). A failure part-way leaves
        the previously stored version intact.
        """
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
class Reranker(Component, Protocol):
    """Re-scores hits for a query (pointwise), best first."""

    def rerank(self, query: Query, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        ...


@runtime_checkable
class Generator(Component, Protocol):
    """Answers a query from hits, citing document and page."""

    def generate(self, query: Query, hits: Sequence[Hit]) -> Answer:
        ...
