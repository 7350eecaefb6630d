"""Any LangChain ``Embeddings`` as a ragnest embedder: a one-level ladder.

The embedder produces one dense vector per chunk (level ``dense``, cosine, with an
HNSW index), so an app keeps its own embedding model while ragnest adds BM25 fusion,
filters and its store. It fits wherever ragnest takes an embedder::

    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> from ragnest.types import Query
    >>> emb = LangChainEmbedder(embeddings=DeterministicFakeEmbedding(size=8))
    >>> [(s.name, s.kind, s.dim, s.distance) for s in emb.vector_specs()]
    [('dense', 'dense', 8, 'cosine')]
    >>> emb.embed_query(Query(text="descaling"))["dense"].shape
    (8,)

In a pipeline: ``Pipeline(parsers=[...], embedders={"dense": LangChainEmbedder(
embeddings=OpenAIEmbeddings()), "bm25": Bm25Embedder()}, store=...)``. The
embeddings object is not JSON-basic, so such a pipeline is built in Python, not YAML.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from ragnest.errors import ConfigError, EmbeddingError
from ragnest.multimodal import chunk_text
from ragnest.types import Chunk, Query, Vector, VectorSpec

__all__ = ["LangChainEmbedder"]

logger = logging.getLogger(__name__)

_PROBE = "ragnest dimension probe"


@dataclass(kw_only=True)
class LangChainEmbedder:
    """A LangChain ``Embeddings`` (``embed_documents`` / ``embed_query``) as a ragnest
    embedder with one ladder level.

    ``dim``: the embedding size; left ``None``, it is measured once by embedding a short
    probe text when the collection is opened. ``level`` names the level (the store's
    vector is ``<embedder name>-<level>``). ``distance``: ``cosine`` (any model) or
    ``dot`` (unit-normalised models only). ``batch_size`` texts go to
    ``embed_documents`` at a time.
    """

    embeddings: Any
    dim: int | None = None
    level: str = "dense"
    distance: Literal["cosine", "dot"] = "cosine"
    batch_size: int = 256

    def __post_init__(self) -> None:
        missing = [m for m in ("embed_documents", "embed_query")
                   if not callable(getattr(self.embeddings, m, None))]
        if missing:
            raise ConfigError(
                f"LangChainEmbedder: embeddings={type(self.embeddings).__name__} lacks "
                f"{', '.join(missing)}; pass a langchain_core.embeddings.Embeddings"
            )
        if self.dim is not None and (isinstance(self.dim, bool) or self.dim < 1):
            raise ConfigError(f"LangChainEmbedder: dim={self.dim!r}: expected a positive integer")
        if self.distance not in ("cosine", "dot"):
            raise ConfigError(
                f"LangChainEmbedder: distance={self.distance!r}: use 'cosine' or 'dot'"
            )
        if not self.level or "-" in self.level:
            raise ConfigError(f"LangChainEmbedder: level={self.level!r}: a name without '-'")
        if self.batch_size < 1:
            raise ConfigError("LangChainEmbedder: batch_size must be positive")

    # -- lifecycle -----------------------------------------------------------------
    def warm_up(self) -> None:
        """Measure the embedding size when it was not given (one ``embed_query`` call)."""
        if self.dim is None:
            probe = self.embeddings.embed_query(_PROBE)
            self.dim = len(probe)
            logger.debug("LangChainEmbedder: %s embeds into %d dimensions",
                         type(self.embeddings).__name__, self.dim)

    def close(self) -> None:
        """Nothing to release: the embeddings object belongs to the caller."""

    # -- description -----------------------------------------------------------------
    def vector_specs(self) -> list[VectorSpec]:
        """One dense vector with an HNSW index."""
        self.warm_up()
        assert self.dim is not None
        return [VectorSpec(name=self.level, kind="dense", dim=self.dim, index="hnsw",
                           distance=self.distance)]

    def identity(self) -> dict[str, Any]:
        """The embeddings class, its model name when it has one, and the size: a store
        made with another model is refused rather than searched with wrong vectors."""
        cls = type(self.embeddings)
        model = next((getattr(self.embeddings, a) for a in ("model", "model_name", "model_id")
                      if isinstance(getattr(self.embeddings, a, None), str)), None)
        self.warm_up()
        return {
            "embeddings": f"{cls.__module__}:{cls.__qualname__}",
            "model": model,
            "dim": self.dim,
            "distance": self.distance,
            "version": 1,
        }

    # -- embedding ---------------------------------------------------------------------
    def to_vectors(self, rows: Sequence[Sequence[float]], what: str = "texts"
                   ) -> list[dict[str, Vector]]:
        """``{level: float32 vector}`` for rows an ``Embeddings`` returned (checked)."""
        out: list[dict[str, Vector]] = []
        for row in rows:
            vec = np.asarray(row, dtype=np.float32)
            if vec.ndim != 1 or (self.dim is not None and vec.shape[0] != self.dim):
                raise EmbeddingError(
                    f"{type(self.embeddings).__name__} returned a vector of shape {vec.shape} "
                    f"for {what}; the collection holds {self.dim}-d vectors"
                )
            if not np.isfinite(vec).all():
                raise EmbeddingError(
                    f"{type(self.embeddings).__name__} returned a vector with NaN or inf"
                )
            out.append({self.level: vec})
        return out

    def embed_documents(self, chunks: Sequence[Chunk]) -> list[dict[str, Vector]]:
        """``embeddings.embed_documents`` over the chunks' text, ``batch_size`` at a time."""
        self.warm_up()
        texts = [chunk_text(c) for c in chunks]
        out: list[dict[str, Vector]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            rows = self.embeddings.embed_documents(batch)
            if len(rows) != len(batch):
                raise EmbeddingError(
                    f"{type(self.embeddings).__name__}.embed_documents returned {len(rows)} "
                    f"vectors for {len(batch)} texts"
                )
            out.extend(self.to_vectors(rows, "documents"))
        return out

    def embed_query(self, query: Query) -> dict[str, Vector] | None:
        """``embeddings.embed_query`` of the query's text; ``None`` for image-only queries."""
        if not query.text:
            return None
        self.warm_up()
        return self.to_vectors([self.embeddings.embed_query(query.text)], "the query")[0]

    def embed_queries(self, queries: Sequence[Query]) -> list[dict[str, Vector] | None]:
        """:meth:`embed_query` for each query (LangChain embeds queries one by one)."""
        return [self.embed_query(q) for q in queries]
