"""ragnest for LlamaIndex: a retriever over a ragnest pipeline, node conversions, and any
LlamaIndex LLM as a ragnest generator.

    from ragnest import Pipeline
    from llama_index.core.query_engine import RetrieverQueryEngine
    from llama_index.retrievers.ragnest import RagnestRetriever

    rag = Pipeline.from_yaml("lite")
    rag.ingest(["manuals/"])
    engine = RetrieverQueryEngine.from_args(RagnestRetriever(rag, similarity_top_k=5), llm=llm)
    print(engine.query("How do I reset the device?"))
"""

from llama_index.retrievers.ragnest.base import RagnestRetriever
from llama_index.retrievers.ragnest.generator import LlamaIndexGenerator
from llama_index.retrievers.ragnest.nodes import (
    chunk_to_node,
    hit_to_node,
    node_to_hit,
    to_filters,
    to_query,
)

__all__ = [
    "LlamaIndexGenerator",
    "RagnestRetriever",
    "chunk_to_node",
    "hit_to_node",
    "node_to_hit",
    "to_filters",
    "to_query",
]
