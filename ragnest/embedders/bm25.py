"""BM25 sparse vectors from Qdrant Edge's built-in model (no server, no download).

The store applies the IDF modifier at search time, so document vectors carry only the
saturated term frequencies and stay valid as the corpus grows::

    >>> from ragnest.embedders.bm25 import Bm25Embedder
    >>> from ragnest.types import Query
    >>> emb = Bm25Embedder()
    >>> emb.vector_specs()[0].modifier
    'idf'
    >>> len(emb.embed_query(Query(text="descaling the espresso machine"))["sparse"].indices)
    3
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ragnest.errors import ConfigError, MissingDependencyError
from ragnest.multimodal import chunk_text
from ragnest.types import Chunk, Query, SparseVector, Vector, VectorSpec

__all__ = ["Bm25Embedder"]

_LEVEL = "sparse"


@dataclass(kw_only=True)
class Bm25Embedder:
    """BM25 term weights as one sparse vector named ``sparse`` (IDF applied by the store).

    ``language`` selects stopwords and stemmer; ``k`` and ``b`` are the BM25 saturation
    and length-normalisation parameters; ``avg_len`` is the expected document length in
    tokens. Image-only queries give ``None``.
    """

    #: Parser workers may each hold a copy and embed what they parse (a small CPU model).
    embeds_in_workers: ClassVar[bool] = True

    language: str = "english"
    k: float = 1.2
    b: float = 0.75
    avg_len: float = 256.0

    def __post_init__(self) -> None:
        if self.k < 0 or not 0.0 <= self.b <= 1.0 or self.avg_len <= 0:
            raise ConfigError(
                f"embedder/bm25: need k >= 0, 0 <= b <= 1, avg_len > 0; got "
                f"k={self.k}, b={self.b}, avg_len={self.avg_len}"
            )
        self._model: Any = None

    def warm_up(self) -> None:
        """Build the Qdrant Edge BM25 model (idempotent)."""
        if self._model is not None:
            return
        try:
            from qdrant_edge import Bm25, Bm25Config
        except ImportError as err:
            raise MissingDependencyError(
                "embedder/bm25 needs 'qdrant-edge-py': pip install ragnest"
            ) from err
        try:
            config = Bm25Config(
                k=float(self.k),
                b=float(self.b),
                avg_len=float(self.avg_len),
                language=self.language,
            )
            self._model = Bm25(config)
        except ValueError as err:
            raise ConfigError(f"embedder/bm25: {err}") from err

    def close(self) -> None:
        """Drop the model."""
        self._model = None

    def vector_specs(self) -> list[VectorSpec]:
        """A single sparse vector with the IDF modifier."""
        return [VectorSpec(name=_LEVEL, kind="sparse", modifier="idf")]

    def identity(self) -> dict[str, Any]:
        """The BM25 configuration stored vectors depend on."""
        return {
            "model": "qdrant-edge/bm25",
            "language": self.language,
            "k": self.k,
            "b": self.b,
            "avg_len": self.avg_len,
            "version": 1,
        }

    def embed_documents(self, chunks: Sequence[Chunk]) -> list[dict[str, Vector]]:
        """One ``{"sparse": SparseVector}`` per chunk (empty for chunks without text)."""
        self.warm_up()
        return [{_LEVEL: _convert(self._model.embed_document(chunk_text(c)))} for c in chunks]

    def embed_queries(self, queries: Sequence[Query]) -> list[dict[str, Vector] | None]:
        """:meth:`embed_query` for each query."""
        return [self.embed_query(q) for q in queries]

    def embed_query(self, query: Query) -> dict[str, Vector] | None:
        """The query's term vector (weights 1; IDF comes from the store), or ``None``."""
        if not query.text:
            return None
        self.warm_up()
        return {_LEVEL: _convert(self._model.embed_query(query.text))}


def _convert(vec: Any) -> SparseVector:
    pairs = sorted(zip(vec.indices, vec.values))
    return SparseVector(
        indices=tuple(int(i) for i, _ in pairs), values=tuple(float(v) for _, v in pairs)
    )
