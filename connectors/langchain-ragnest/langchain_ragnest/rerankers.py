"""``RagnestReranker``: ragnest's rerankers as a LangChain document compressor.

Any ragnest reranker (a vision-language model that reads the page images, or any
object with ``rerank(query, hits, top_k)``) re-scores retrieved Documents, from
ragnest or from any other retriever::

    from langchain_ragnest import RagnestReranker

    reranker = RagnestReranker(reranker=my_ragnest_reranker, top_n=3)
    # or a registered one, by the name `ragnest list` shows, with its YAML parameters:
    # reranker = RagnestReranker.from_type("reranker/<name>", {...}, top_n=3)
    best = reranker.compress_documents(docs, "Where is the descaling button?")

Documents come back best first, each a copy with ``metadata["relevance_score"]``
(LangChain's convention for rerankers), ``metadata["score"]`` and the reranker's
scores merged into ``metadata["scores_by_stage"]``. Documents from ragnest give the
reranker their page or region image; others are read as text. Where a pipeline of
compressors is wanted, LangChain's ``ContextualCompressionRetriever`` (in
``langchain-classic``) takes it as ``base_compressor``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import Document
from langchain_core.documents.compressor import BaseDocumentCompressor
from pydantic import ConfigDict, Field, PrivateAttr, field_validator
from ragnest import Query, registry
from ragnest.protocols import Component

from langchain_ragnest.documents import document_to_hit

__all__ = ["RagnestReranker"]

logger = logging.getLogger(__name__)


class RagnestReranker(BaseDocumentCompressor):
    """Re-ranks Documents with a ragnest reranker (see the module docs).

    Args:
        reranker: a ragnest ``Reranker`` (``rerank(query, hits, top_k)``).
        top_n: Documents kept (``None``: all of them, re-ordered).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    reranker: Any
    top_n: int | None = Field(default=None, ge=1)
    _warm: bool = PrivateAttr(default=False)

    @field_validator("reranker")
    @classmethod
    def _check_reranker(cls, value: Any) -> Any:
        if not callable(getattr(value, "rerank", None)):
            raise ValueError(
                f"reranker={type(value).__name__} has no rerank(query, hits, top_k) method; "
                "pass a ragnest reranker (see `ragnest list`) or use RagnestReranker.from_type"
            )
        return value

    @classmethod
    def from_type(
        cls, type_name: str, params: Mapping[str, Any] | None = None, **fields: Any
    ) -> RagnestReranker:
        """Build the registered ragnest reranker ``type_name`` (``"reranker/..."``) from
        ``params`` (checked like YAML parameters); ``fields`` set ``top_n``."""
        if not type_name.startswith("reranker/"):
            raise ValueError(f"type_name={type_name!r}: expected a 'reranker/...' component")
        return cls(reranker=registry.create(type_name, params), **fields)

    def close(self) -> None:
        """Release the reranker's model."""
        if isinstance(self.reranker, Component):
            self.reranker.close()
        self._warm = False

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """``documents`` re-ranked for ``query``, best first, at most ``top_n``."""
        if not documents:
            return []
        if not self._warm and isinstance(self.reranker, Component):
            self.reranker.warm_up()
            self._warm = True
        hits = [document_to_hit(d) for d in documents]
        by_id: dict[str, int] = {}
        for i, hit in enumerate(hits):
            by_id.setdefault(hit.chunk.id, i)
        reranked = self.reranker.rerank(Query(text=query), hits, top_k=self.top_n)
        out: list[Document] = []
        for hit in reranked[: self.top_n] if self.top_n else reranked:
            index = by_id.get(hit.chunk.id)
            if index is None:
                logger.warning("RagnestReranker: the reranker returned chunk %s, which was not "
                               "among the documents; dropped", hit.chunk.id)
                continue
            doc = documents[index]
            meta = dict(doc.metadata or {})
            old = meta.get("scores_by_stage")
            stages = dict(old) if isinstance(old, Mapping) else {}
            stages.update({str(k): float(v) for k, v in hit.scores_by_stage.items()})
            meta.update({"relevance_score": float(hit.score), "score": float(hit.score),
                         "scores_by_stage": stages})
            out.append(doc.model_copy(update={"metadata": meta}))
        return out
