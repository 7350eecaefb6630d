"""A ragnest reranker as a LlamaIndex node postprocessor.

    from llama_index.postprocessor.ragnest_rerank import RagnestRerank
    postprocessor = RagnestRerank(pipeline=rag, top_n=3)
"""

from llama_index.postprocessor.ragnest_rerank.base import RagnestRerank

__all__ = ["RagnestRerank"]
