"""A ragnest pipeline as a LlamaIndex retriever.

    >>> import tempfile
    >>> from ragnest import Pipeline
    >>> from llama_index.retrievers.ragnest import RagnestRetriever
    >>> rag = Pipeline.from_yaml("lite", env={"RAGNEST_STORE": tempfile.mkdtemp()})
    >>> _ = rag.ingest(["examples/docs"], progress=False)
    >>> retriever = RagnestRetriever(rag, similarity_top_k=2)
    >>> nodes = retriever.retrieve("How often should I descale the machine?")
    >>> [(n.node.metadata["file_name"], n.node.metadata["page"]) for n in nodes][:1]
    [('nimbus3_handbook.pdf', 5)]
    >>> type(nodes[0].node).__name__, sorted(nodes[0].node.metadata["scores_by_stage"])[:2]
    ('ImageNode', ['bm25', 'dense'])
    >>> rag.close()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.core.vector_stores.types import MetadataFilters

from llama_index.retrievers.ragnest.nodes import (
    DEFAULT_MAX_PIXELS,
    ImageMode,
    hit_to_node,
    to_filters,
    to_query,
)
from ragnest import Pipeline
from ragnest.types import Hit

__all__ = ["RagnestRetriever"]

logger = logging.getLogger(__name__)


class RagnestRetriever(BaseRetriever):
    """Retrieves from a ragnest :class:`~ragnest.Pipeline`: every embedder's funnel, fusion
    and, with ``rerank=True`` (default), the pipeline's reranker.

    * ``similarity_top_k``: nodes returned (default: the pipeline's ``retrieval.k``;
      with ``rerank=False`` and a reranker in the pipeline, its rerank pool);
    * ``filters``: ragnest payload filters or LlamaIndex ``MetadataFilters`` (AND of
      ``==``, ``in``, ranges; see :func:`~llama_index.retrievers.ragnest.nodes.to_filters`);
    * ``budgets``, ``using``: per-stage candidate limits and embedders to query, as
      ``Pipeline.retrieve`` takes them;
    * ``rerank=False`` leaves reranking to a node postprocessor
      (``llama_index.postprocessor.ragnest_rerank.RagnestRerank``);
    * ``images``: ``"base64"`` makes page and figure hits ImageNodes carrying a JPEG
      (at most ``max_pixels``) for multimodal LLMs; ``"none"`` gives TextNodes only.

    Nodes carry ``page``, ``bbox`` (PDF points), ``file_name``, ``scores_by_stage`` and
    the chunk ids in their metadata. A query bundle's ``image_path`` makes an image query.
    The pipeline is not closed by the retriever.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        similarity_top_k: int | None = None,
        filters: MetadataFilters | Mapping[str, Any] | None = None,
        budgets: Mapping[str, int] | None = None,
        using: Sequence[str] | None = None,
        rerank: bool = True,
        images: ImageMode = "base64",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        if not isinstance(pipeline, Pipeline):
            raise TypeError(f"RagnestRetriever needs a ragnest.Pipeline, got "
                            f"{type(pipeline).__name__} (build one with Pipeline.from_yaml)")
        if similarity_top_k is not None and similarity_top_k < 1:
            raise ValueError(f"similarity_top_k must be >= 1, got {similarity_top_k}")
        if images not in ("base64", "none"):
            raise ValueError(f"images must be 'base64' or 'none', not {images!r}")
        self.pipeline = pipeline
        self.similarity_top_k = similarity_top_k
        self.filters = to_filters(filters)
        self.budgets = dict(budgets) if budgets else None
        self.using = list(using) if using is not None else None
        self.rerank = rerank
        self.images = images
        self.max_pixels = max_pixels
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _hits(self, query_bundle: QueryBundle) -> list[Hit]:
        query = to_query(query_bundle, self.filters)
        kwargs: dict[str, Any] = {"k": self.similarity_top_k, "budgets": self.budgets,
                                  "using": self.using}
        if self.rerank:
            return list(self.pipeline.retrieve(query, **kwargs))
        return list(self.pipeline.search(query, **kwargs))

    def _nodes(self, hits: list[Hit]) -> list[NodeWithScore]:
        return [hit_to_node(h, images=self.images, max_pixels=self.max_pixels) for h in hits]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._nodes(self._hits(query_bundle))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)
