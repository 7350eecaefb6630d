"""``RagnestVectorStore``: a LangChain ``VectorStore`` on ragnest's Qdrant store.

An app built on ``InMemoryVectorStore`` or ``QdrantVectorStore`` swaps it in and keeps
its own ``Embeddings``; ragnest adds BM25 fused with the embedding's ranking, payload
filters, and the embedded Qdrant engine::

    >>> from langchain_core.documents import Document
    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> store = RagnestVectorStore(DeterministicFakeEmbedding(size=16))  # was InMemoryVectorStore
    >>> store.add_documents([Document(page_content="Descale the machine every month.",
    ...                               metadata={"topic": "care"}),
    ...                      Document(page_content="The warranty lasts two years.")],
    ...                     ids=["care", "warranty"])
    ['care', 'warranty']
    >>> [d.id for d in store.similarity_search("how often to descale?", k=1)]
    ['care']
    >>> store.close()

How LangChain Documents map onto ragnest: each LangChain id is one ragnest document
holding one ``text`` chunk (its chunk id derives from the LangChain id and a hash of
text and metadata). So ``add_documents`` with an id that exists replaces that document
in one write transaction (the new version is written before the old one is removed),
re-adding an unchanged Document writes nothing, and ``delete(ids)`` is
``delete_document`` per id. Metadata is stored as given (it must be JSON-basic) and
comes back unchanged; filters (``filter={"topic": "care"}``, lists for "any of",
``{"gte": ...}`` ranges, or a callable as with ``InMemoryVectorStore``) read it.

Search runs ragnest's retriever: the embedding's HNSW search and, with ``bm25=True``
(default), Qdrant's BM25 on the same text, fused (``fusion="relative"`` by default).
``similarity_search_with_score`` ranks by that fusion and reports each Document's
cosine similarity to the query (the score ``InMemoryVectorStore`` reports);
:meth:`RagnestVectorStore.search_hits` gives the ragnest hits with every stage's score.

The store: ``path=`` (Qdrant Edge on disk, the embedded default), ``location=":memory:"``
(qdrant-client local mode, tests only), ``url=`` (a Qdrant server), ``store=`` (a
``QdrantStore`` you built); with none of them, a temporary on-disk Edge store that is
removed when the vector store is closed or collected (like ``InMemoryVectorStore``,
nothing outlives the process).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from ragnest.collection import open_collection
from ragnest.config import RetrievalConfig
from ragnest.embedders.bm25 import Bm25Embedder
from ragnest.errors import ConfigError
from ragnest.ingest import embed_chunks
from ragnest.ladder import vector_name
from ragnest.protocols import Embedder, Store, StoreAdmin
from ragnest.retrieval import Retriever
from ragnest.stores import QdrantStore
from ragnest.types import Chunk, Fusion, Hit, Query, Route, SearchRequest, Stage, make_chunk_id
from typing_extensions import Self

from langchain_ragnest.embeddings import LangChainEmbedder

__all__ = ["BM25_KEY", "EMBEDDING_KEY", "RagnestVectorStore"]

logger = logging.getLogger(__name__)

#: The ragnest embedder names: the store's vectors are ``embedding-dense`` and ``bm25-sparse``.
EMBEDDING_KEY = "embedding"
BM25_KEY = "bm25"

_METADATA = "metadata"  # the payload key holding a chunk's metadata (filters read under it)
_SEARCH_KWARGS = frozenset({"filter", "budgets", "fetch_k"})


class RagnestVectorStore(VectorStore):
    """A LangChain vector store on ragnest (see the module docs).

    Args:
        embedding: the app's LangChain ``Embeddings``; it becomes a one-level ragnest
            ladder embedder (:class:`~langchain_ragnest.embeddings.LangChainEmbedder`).
        path: a folder for an embedded Qdrant Edge store (persistent).
        location: ``":memory:"`` for qdrant-client local mode (tests only).
        url: a Qdrant server (the API key comes from ``$QDRANT_API_KEY``).
        store: a ragnest ``QdrantStore`` built by the caller (instead of the three above).
        collection_name: the collection (one per embedding model).
        bm25: fuse Qdrant's BM25 on the documents' text with the embedding's ranking.
        fusion: ``relative`` (normalised score sum), ``rrf`` or ``dbsf``.
        weights: per route, ``{"embedding": 1.0, "bm25": 1.0}`` by default.
        candidates: hits each route hands to fusion.
        dim: the embedding size (measured with one probe ``embed_query`` when omitted).
    """

    def __init__(
        self,
        embedding: Embeddings,
        *,
        path: str | None = None,
        location: str | None = None,
        url: str | None = None,
        store: Store | None = None,
        collection_name: str = "langchain",
        bm25: bool = True,
        fusion: Fusion = "relative",
        weights: Mapping[str, float] | None = None,
        candidates: int = 50,
        dim: int | None = None,
    ) -> None:
        self.embedding = embedding
        self._embedder = LangChainEmbedder(embeddings=embedding, dim=dim)
        self._embedders: dict[str, Embedder] = {EMBEDDING_KEY: self._embedder}
        if bm25:
            self._embedders[BM25_KEY] = Bm25Embedder()
        given = [n for n, v in (("path", path), ("location", location), ("url", url),
                                ("store", store)) if v is not None]
        if len(given) > 1:
            raise ConfigError(
                f"RagnestVectorStore: pass at most one of path=, location=, url=, store=; "
                f"got {', '.join(given)}"
            )
        self._tmpdir: str | None = None
        if store is None:
            if not given:
                self._tmpdir = tempfile.mkdtemp(prefix="ragnest-langchain-")
                path = self._tmpdir
            store = QdrantStore(path=path, location=location, url=url,
                                collection=collection_name)
        if not isinstance(store, StoreAdmin):
            raise ConfigError(
                f"RagnestVectorStore: store={type(store).__name__} cannot fetch chunks by id "
                "(get_by_ids needs ragnest.protocols.StoreAdmin); use a QdrantStore"
            )
        self.store: Store = store
        self.bm25 = bm25
        self.config = RetrievalConfig(
            k=4, candidates=candidates, fusion=fusion,
            weights=dict(weights) if weights is not None else {},
        )
        for key in self.config.weights:
            if key not in self._embedders:
                raise ConfigError(
                    f"RagnestVectorStore: weights names {key!r}; the routes are "
                    f"{', '.join(self._embedders)}"
                )
        self._lock = threading.RLock()
        self._retriever: Retriever | None = None
        self._finalizer = weakref.finalize(self, _release, store, self._tmpdir)

    # ------------------------------------------------------------------ lifecycle
    @property
    def embeddings(self) -> Embeddings:
        """The app's embeddings."""
        return self.embedding

    def _ready(self) -> Retriever:
        with self._lock:
            if self._retriever is None:
                open_collection(self.store, self._embedders)
                self._retriever = Retriever(self._embedders, self.store, self.config)
            return self._retriever

    def close(self) -> None:
        """Close the store (a temporary store is deleted); idempotent."""
        with self._lock:
            if self._retriever is not None:
                self._retriever.close()
                self._retriever = None
            self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writes
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Add or replace texts (see :meth:`add_documents`); ``metadatas`` and ``ids``,
        when given, must be as long as ``texts``."""
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(
                f"metadatas must be as long as texts: got {len(metadatas)} metadatas for "
                f"{len(texts)} texts"
            )
        if ids is not None and len(ids) != len(texts):
            raise ValueError(
                f"ids must be as long as texts: got {len(ids)} ids for {len(texts)} texts"
            )
        docs = [Document(page_content=t, metadata=dict(m) if m else {})
                for t, m in zip(texts, metadatas or [None] * len(texts))]
        return self.add_documents(docs, ids=ids, **kwargs)

    def add_documents(
        self, documents: list[Document], ids: list[str] | None = None, **kwargs: Any
    ) -> list[str]:
        """Add or replace Documents; returns their ids (``ids`` > ``Document.id`` > new uuid4).

        Each id is one ragnest document written in its own transaction; the embeddings
        are computed in one batch for the Documents whose content is not stored yet.
        """
        if kwargs:
            logger.debug("RagnestVectorStore.add_documents ignores %s", sorted(kwargs))
        if ids is not None and len(ids) != len(documents):
            raise ValueError(
                f"ids must be as long as documents: got {len(ids)} ids for "
                f"{len(documents)} documents"
            )
        doc_ids = [str(i) if i else (d.id or str(uuid.uuid4()))
                   for i, d in zip(ids or [None] * len(documents), documents)]
        if not documents:
            return []
        chunks = [_to_chunk(doc, doc_id) for doc, doc_id in zip(documents, doc_ids)]
        with self._lock:
            self._ready()
            stored = {c.id for c in self.store.get([c.id for c in chunks])}  # type: ignore[attr-defined]
            new = list({c.id: c for c in chunks if c.id not in stored}.values())
            points = {p.chunk.id: p for p in embed_chunks(self._embedders, new)}
            for chunk in chunks:
                fingerprint = chunk.id  # content-addressed: same text + metadata, same id
                with self.store.begin(chunk.document_id, [chunk.id],
                                      fingerprint=fingerprint) as tx:
                    tx.add([points[cid] for cid in tx.missing])
                    tx.commit()
        logger.debug("RagnestVectorStore: wrote %d documents (%d embedded)", len(chunks), len(new))
        return doc_ids

    def delete(self, ids: Sequence[str] | None = None, **kwargs: Any) -> bool:
        """Delete the Documents with these ids (missing ids are ignored; ``None`` deletes
        nothing, as in ``InMemoryVectorStore``)."""
        if not ids:
            return True
        with self._lock:
            self._ready()
            removed = sum(self.store.delete_document(str(i)) for i in dict.fromkeys(ids))
        logger.debug("RagnestVectorStore: deleted %d chunks for %d ids", removed, len(ids))
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The stored Documents for ``ids`` (missing ids skipped), in the order asked."""
        out: list[Document] = []
        with self._lock:
            self._ready()
            for doc_id in dict.fromkeys(str(i) for i in ids):
                chunk_ids = sorted(self.store.chunk_ids(doc_id))
                if chunk_ids:
                    out.extend(_to_document(c) for c in self.store.get(chunk_ids))  # type: ignore[attr-defined]
        return out

    # ------------------------------------------------------------------ search
    def search_hits(
        self,
        query: str,
        k: int = 4,
        *,
        filter: Mapping[str, Any] | Callable[[Document], bool] | None = None,
        budgets: Mapping[str, int] | None = None,
        fetch_k: int | None = None,
        explain: bool = False,
    ) -> list[Hit]:
        """The ragnest hits for ``query`` (fused score and each route's in
        ``hit.scores_by_stage``; ``explain=True``: every stage's score too);
        ``Document`` ids are ``hit.chunk.document_id``.

        ``filter``: a mapping on metadata keys (value, list = any of, ``{"gte": ..}``
        range) applied inside the engine, or a callable on Documents applied to the
        ``fetch_k`` best candidates (default ``max(4 k, 50)``).
        """
        if k < 1:
            return []
        predicate = filter if callable(filter) else None
        filters = _filters(filter) if filter is not None and predicate is None else None
        with self._lock:
            retriever = self._ready()
            want = max(k, fetch_k or max(4 * k, 50)) if predicate else k
            hits = retriever.retrieve(Query(text=query, filters=filters), k=want,
                                      budgets=budgets, explain=explain)
        if predicate is not None:
            hits = [h for h in hits if predicate(_to_document(h.chunk))]
        return hits[:k]

    def similarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents ranked by ragnest (embedding + BM25), each with its cosine similarity
        to the query. Keyword arguments: ``filter``, ``budgets``, ``fetch_k``."""
        hits = self.search_hits(query, k, **_search_kwargs(kwargs))
        return [(_to_document(h.chunk), self._similarity(h)) for h in hits]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """The ``k`` best Documents for ``query`` (see :meth:`similarity_search_with_score`)."""
        return [_to_document(h.chunk) for h in self.search_hits(query, k, **_search_kwargs(kwargs))]

    def _similarity(self, hit: Hit) -> float:
        stages = hit.scores_by_stage
        for key in (vector_name(EMBEDDING_KEY, self._embedder.level), EMBEDDING_KEY):
            if key in stages:
                return float(stages[key])
        return float(hit.score)

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Cosine similarity is the relevance (LangChain's ``1 - cosine distance``),
        negatives clipped to 0."""
        return lambda similarity: min(1.0, max(0.0, similarity))

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` Documents nearest to an embedding (the embedding's route alone:
        BM25 needs text). ``filter`` as in :meth:`search_hits` (mappings only)."""
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, **kwargs)]

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """:meth:`similarity_search_by_vector` with each Document's cosine similarity."""
        filter_ = _search_kwargs(kwargs).get("filter")
        if callable(filter_):
            raise ValueError("similarity_search_by_vector takes a mapping filter, not a callable")
        if k < 1:
            return []
        with self._lock:
            self._ready()
            vec = self._embedder.to_vectors([embedding], "the query vector")[0][self._embedder.level]
            name = vector_name(EMBEDDING_KEY, self._embedder.level)
            request = SearchRequest(
                routes=(Route(name=EMBEDDING_KEY, stages=(
                    Stage(vector=name, query=vec, limit=max(k, self.config.candidates)),)),),
                limit=k,
                filters=_filters(filter_) if filter_ else None,
            )
            hits = self.store.search(request)
        return [(_to_document(h.chunk), self._similarity(h)) for h in hits]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """``k`` Documents chosen for relevance and diversity among the ``fetch_k`` best.

        The candidates' texts are embedded again to compare them with each other (the
        store keeps vectors for search, not for the caller).
        """
        hits = self.search_hits(query, fetch_k, **_search_kwargs(kwargs))
        if not hits:
            return []
        query_vec = np.asarray(self.embedding.embed_query(query), dtype=np.float32)
        vectors = self.embedding.embed_documents([h.chunk.text for h in hits])
        chosen = maximal_marginal_relevance(query_vec, vectors, k=min(k, len(hits)),
                                            lambda_mult=lambda_mult)
        return [_to_document(hits[i].chunk) for i in chosen]

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR around an embedding (candidates from :meth:`similarity_search_by_vector`)."""
        docs = self.similarity_search_by_vector(embedding, fetch_k, **kwargs)
        if not docs:
            return []
        vectors = self.embedding.embed_documents([d.page_content for d in docs])
        chosen = maximal_marginal_relevance(np.asarray(embedding, dtype=np.float32), vectors,
                                            k=min(k, len(docs)), lambda_mult=lambda_mult)
        return [docs[i] for i in chosen]

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> RagnestVectorStore:
        """A store holding ``texts`` (keyword arguments go to the constructor)."""
        store = cls(embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    def from_existing_collection(cls, embedding: Embeddings, **kwargs: Any) -> RagnestVectorStore:
        """Reopen a collection (``path=``/``url=`` and ``collection_name=``), as
        ``QdrantVectorStore.from_existing_collection`` does."""
        return cls(embedding, **kwargs)


# ---------------------------------------------------------------------- helpers
def _release(store: Store, tmpdir: str | None) -> None:
    try:
        store.close()
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)


def _content_key(doc_id: str, text: str, metadata: Mapping[str, Any]) -> str:
    try:
        meta = json.dumps(metadata, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"Document {doc_id!r}: metadata must be JSON-basic (str, int, float, bool, None, "
            f"lists and dicts of those) to be stored; {err}"
        ) from err
    return hashlib.sha256(f"{meta}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()


def _to_chunk(doc: Document, doc_id: str) -> Chunk:
    metadata = dict(doc.metadata or {})
    source = metadata.get("source")
    return Chunk(
        id=make_chunk_id(doc_id, 0, _content_key(doc_id, doc.page_content, metadata)),
        document_id=doc_id,
        kind="text",
        text=doc.page_content,
        source=source if isinstance(source, str) else "",
        metadata=metadata,
    )


def _to_document(chunk: Chunk) -> Document:
    return Document(id=chunk.document_id, page_content=chunk.text, metadata=dict(chunk.metadata))


def _filters(filter: Any) -> dict[str, Any]:
    """A LangChain metadata filter as ragnest payload filters (keys under ``metadata``)."""
    if not isinstance(filter, Mapping):
        raise ValueError(
            f"filter must be a mapping of metadata key -> value, list or range dict, or a "
            f"callable on Documents; got {type(filter).__name__}"
        )
    return {f"{_METADATA}.{key}": value for key, value in filter.items()}


def _search_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(kwargs) - _SEARCH_KWARGS)
    if unknown:
        logger.warning("RagnestVectorStore search ignores %s (it takes %s)",
                       unknown, ", ".join(sorted(_SEARCH_KWARGS)))
    return {k: v for k, v in kwargs.items() if k in _SEARCH_KWARGS and v is not None}
