"""Any ragnest reranker (a vision-language model reading page images, a served model) as a
LlamaIndex node postprocessor.

    from llama_index.postprocessor.ragnest_rerank import RagnestRerank
    from llama_index.retrievers.ragnest import RagnestRetriever

    retriever = RagnestRetriever(rag, rerank=False)         # the pipeline's funnel only
    engine = RetrieverQueryEngine.from_args(
        retriever, llm=llm, node_postprocessors=[RagnestRerank(pipeline=rag, top_n=3)])

Nodes from :class:`~llama_index.retrievers.ragnest.RagnestRetriever` are reranked with
their page images and regions; nodes from any other retriever are reranked as text
(an ``ImageNode`` with an ``image_path`` as that image). Each returned node gets the
reranker's score, and ``metadata["scores_by_stage"]["rerank"]``.
"""

from __future__ import annotations

import logging
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.retrievers.ragnest.nodes import node_to_hit, to_query
from ragnest import Pipeline
from ragnest.protocols import Reranker

__all__ = ["RagnestRerank"]

logger = logging.getLogger(__name__)


class RagnestRerank(BaseNodePostprocessor):
    """Reranks nodes with a ragnest reranker: ``reranker``, or ``pipeline``'s own.

    ``top_n`` nodes are kept (``None``: all of them, reordered).
    """

    top_n: int | None = Field(default=None, description="Nodes kept after reranking.")
    _reranker: Any = PrivateAttr()

    def __init__(
        self,
        reranker: Reranker | None = None,
        *,
        pipeline: Pipeline | None = None,
        top_n: int | None = None,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        if top_n is not None and top_n < 1:
            raise ValueError(f"top_n must be >= 1 or None, got {top_n}")
        chosen = reranker if reranker is not None else getattr(pipeline, "reranker", None)
        if chosen is None:
            raise ValueError("RagnestRerank needs a reranker: pass reranker=..., or pipeline= "
                             "a ragnest Pipeline that has one (pipeline.reranker in its YAML)")
        if not isinstance(chosen, Reranker):
            raise TypeError(f"{type(chosen).__name__} is not a ragnest reranker (it needs "
                            "rerank(query, hits, top_k), warm_up() and close())")
        super().__init__(top_n=top_n, callback_manager=callback_manager or CallbackManager())
        self._reranker = chosen

    @classmethod
    def class_name(cls) -> str:
        return "RagnestRerank"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("RagnestRerank needs the query: call postprocess_nodes(nodes, "
                             "query_str=...) or use it in a query engine")
        if not nodes:
            return []
        hits = [node_to_hit(n) for n in nodes]
        by_id = {h.chunk.id: n for h, n in zip(hits, nodes)}
        with self.callback_manager.event(
            CBEventType.RERANKING,
            payload={EventPayload.NODES: nodes, EventPayload.MODEL_NAME: self.class_name(),
                     EventPayload.QUERY_STR: query_bundle.query_str,
                     EventPayload.TOP_K: self.top_n},
        ) as event:
            reranked = self._reranker.rerank(to_query(query_bundle), hits, top_k=self.top_n)
            out = []
            for hit in reranked[: self.top_n]:
                original = by_id.get(hit.chunk.id)
                if original is None:
                    logger.warning("the reranker returned an unknown chunk %s", hit.chunk.id)
                    continue
                node = original.node.model_copy()
                stages = dict(node.metadata.get("scores_by_stage") or {})
                stages["rerank"] = float(hit.scores_by_stage.get("rerank", hit.score))
                node.metadata = {**node.metadata, "scores_by_stage": stages}
                if "scores_by_stage" not in node.excluded_llm_metadata_keys:
                    node.excluded_llm_metadata_keys = [*node.excluded_llm_metadata_keys,
                                                       "scores_by_stage"]
                    node.excluded_embed_metadata_keys = [*node.excluded_embed_metadata_keys,
                                                         "scores_by_stage"]
                out.append(NodeWithScore(node=node, score=float(hit.score)))
            event.on_end(payload={EventPayload.NODES: out})
        return out
