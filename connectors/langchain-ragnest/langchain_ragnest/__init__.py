"""LangChain integration for ragnest: multimodal retrieval over real documents.

    >>> from langchain_ragnest import RagnestRetriever, RagnestVectorStore
    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> store = RagnestVectorStore(DeterministicFakeEmbedding(size=8))  # was InMemoryVectorStore
    >>> store.add_texts(["Descale the machine every 8 weeks."], ids=["care"])
    ['care']
    >>> store.close()

* :class:`RagnestRetriever`: a ragnest pipeline as a ``BaseRetriever`` (page text,
  source, page, bbox, scores per stage, the page image as a reference);
* :class:`RagnestVectorStore`: a ``VectorStore`` on ragnest's Qdrant store, with any
  LangChain ``Embeddings`` fused with BM25;
* :class:`RagnestLoader`: ragnest's parsers as a ``BaseLoader``;
* :class:`RagnestReranker`: ragnest's rerankers as a ``BaseDocumentCompressor``;
* :class:`ChatModelGenerator`: any LangChain chat model as a ragnest generator;
* :class:`LangChainEmbedder`: any LangChain ``Embeddings`` as a ragnest embedder;
* :mod:`langchain_ragnest.images`: Documents' images as content blocks for multimodal
  chat models (:func:`to_content_blocks`, :func:`image_blocks`), base64 on demand.

Only ragnest's public API is used; ragnest itself never imports this package.
"""

from __future__ import annotations

from langchain_ragnest.chat_generator import ChatModelGenerator
from langchain_ragnest.document_loaders import RagnestLoader
from langchain_ragnest.documents import (
    chunk_to_document,
    document_to_chunk,
    document_to_hit,
    hit_to_document,
)
from langchain_ragnest.embeddings import LangChainEmbedder
from langchain_ragnest.images import (
    image_base64,
    image_blocks,
    image_bytes,
    to_content_blocks,
    with_image_base64,
)
from langchain_ragnest.rerankers import RagnestReranker
from langchain_ragnest.retrievers import RagnestRetriever
from langchain_ragnest.vectorstores import RagnestVectorStore

__version__ = "0.1.0"

__all__ = [
    "ChatModelGenerator",
    "LangChainEmbedder",
    "RagnestLoader",
    "RagnestReranker",
    "RagnestRetriever",
    "RagnestVectorStore",
    "__version__",
    "chunk_to_document",
    "document_to_chunk",
    "document_to_hit",
    "hit_to_document",
    "image_base64",
    "image_blocks",
    "image_bytes",
    "to_content_blocks",
    "with_image_base64",
]
