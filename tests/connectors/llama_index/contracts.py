"""A small contract suite for LlamaIndex components, mirroring LangChain's standard tests
(``langchain_tests.integration_tests.RetrieversIntegrationTests``): k handling, return
types, async, plus what LlamaIndex itself relies on (unique node ids, JSON metadata,
nodes that serialise, a query engine that runs with ``MockLLM``).

LlamaIndex ships no such suite. Subclass a contract in a ``Test...`` class and give it
the fixtures it names::

    class TestMyRetriever(RetrieverContract):
        @pytest.fixture
        def make_retriever(self):
            return lambda k: MyRetriever(similarity_top_k=k)

        @pytest.fixture
        def query(self):
            return "a query with at least 3 matching nodes"
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.llms import MockLLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.readers.base import BaseReader
from llama_index.core.schema import BaseNode, Document, NodeWithScore, QueryBundle, TextNode

__all__ = ["PostprocessorContract", "ReaderContract", "RetrieverContract"]


def _same(a: list[NodeWithScore], b: list[NodeWithScore]) -> None:
    assert [n.node.node_id for n in a] == [n.node.node_id for n in b]
    assert [n.score for n in a] == pytest.approx([n.score for n in b])


def _check_nodes(nodes: Any) -> None:
    assert isinstance(nodes, list)
    for n in nodes:
        assert isinstance(n, NodeWithScore), type(n)
        assert isinstance(n.node, BaseNode)
        assert isinstance(n.score, float)
        assert n.node.get_content().strip(), "a node without text"
        json.dumps(n.node.metadata)  # metadata must be JSON for docstores and vector stores
    ids = [n.node.node_id for n in nodes]
    assert len(ids) == len(set(ids)), "duplicate node ids"


class RetrieverContract:
    """``make_retriever(k)`` builds the retriever with ``k`` results (``None``: its
    default); ``query`` matches at least 3 nodes."""

    def test_k_constructor_param(self, make_retriever: Callable[[int | None], BaseRetriever],
                                 query: str) -> None:
        assert len(make_retriever(1).retrieve(query)) == 1
        assert len(make_retriever(3).retrieve(query)) == 3

    def test_default_k_returns_some_nodes(self, make_retriever, query) -> None:
        nodes = make_retriever(None).retrieve(query)
        assert 1 <= len(nodes)

    def test_returns_nodes_with_scores_best_first(self, make_retriever, query) -> None:
        nodes = make_retriever(3).retrieve(query)
        _check_nodes(nodes)
        scores = [n.score for n in nodes]
        assert scores == sorted(scores, reverse=True)

    def test_query_bundle_equals_string(self, make_retriever, query) -> None:
        retriever = make_retriever(3)
        _same(retriever.retrieve(QueryBundle(query_str=query)), retriever.retrieve(query))

    def test_aretrieve_equals_retrieve(self, make_retriever, query) -> None:
        retriever = make_retriever(3)
        nodes = asyncio.run(retriever.aretrieve(query))
        _check_nodes(nodes)
        _same(nodes, retriever.retrieve(query))

    def test_nodes_serialise(self, make_retriever, query) -> None:
        for n in make_retriever(3).retrieve(query):
            again = type(n.node).from_json(n.node.to_json())
            assert again.node_id == n.node.node_id and again.metadata == n.node.metadata

    def test_query_engine_runs_with_mock_llm(self, make_retriever, query) -> None:
        engine = RetrieverQueryEngine.from_args(make_retriever(3), llm=MockLLM())
        response = engine.query(query)
        assert len(response.source_nodes) == 3
        assert str(response).strip()


class PostprocessorContract:
    """``make_postprocessor(top_n)`` builds it; ``nodes`` (at least 4) and ``query``."""

    def test_top_n(self, make_postprocessor: Callable[[int | None], BaseNodePostprocessor],
                   nodes: list[NodeWithScore], query: str) -> None:
        assert len(make_postprocessor(1).postprocess_nodes(nodes, query_str=query)) == 1
        assert len(make_postprocessor(3).postprocess_nodes(nodes, query_str=query)) == 3
        assert len(make_postprocessor(None).postprocess_nodes(nodes, query_str=query)) == len(nodes)

    def test_returns_the_given_nodes_rescored(self, make_postprocessor, nodes, query) -> None:
        out = make_postprocessor(3).postprocess_nodes(nodes, query_bundle=QueryBundle(query))
        _check_nodes(out)
        assert {n.node.node_id for n in out} <= {n.node.node_id for n in nodes}
        scores = [n.score for n in out]
        assert scores == sorted(scores, reverse=True)

    def test_query_str_equals_query_bundle(self, make_postprocessor, nodes, query) -> None:
        pp = make_postprocessor(3)
        _same(pp.postprocess_nodes(nodes, query_str=query),
              pp.postprocess_nodes(nodes, query_bundle=QueryBundle(query)))

    def test_async_equals_sync(self, make_postprocessor, nodes, query) -> None:
        pp = make_postprocessor(3)
        _same(asyncio.run(pp.apostprocess_nodes(nodes, query_str=query)),
              pp.postprocess_nodes(nodes, query_str=query))

    def test_no_nodes(self, make_postprocessor, query) -> None:
        assert make_postprocessor(3).postprocess_nodes([], query_str=query) == []

    def test_input_nodes_are_not_changed(self, make_postprocessor, nodes, query) -> None:
        before = [(n.node.node_id, n.score, json.dumps(n.node.metadata, sort_keys=True))
                  for n in nodes]
        make_postprocessor(3).postprocess_nodes(nodes, query_str=query)
        assert before == [(n.node.node_id, n.score, json.dumps(n.node.metadata, sort_keys=True))
                          for n in nodes]

    def test_works_on_plain_text_nodes(self, make_postprocessor, query) -> None:
        plain = [NodeWithScore(node=TextNode(text=t), score=0.0) for t in
                 ("Descale the machine every 8 weeks.", "The warranty lasts 2 years.",
                  "Pack a travel adapter.")]
        out = make_postprocessor(2).postprocess_nodes(plain, query_str=query)
        assert len(out) == 2 and all(isinstance(n.node, TextNode) for n in out)


class ReaderContract:
    """``reader`` and ``path`` (a file it reads into several documents)."""

    def test_load_data_returns_documents(self, reader: BaseReader, path: str) -> None:
        docs = reader.load_data(path)
        assert docs and all(isinstance(d, Document) for d in docs)
        assert all(d.text.strip() for d in docs)
        for d in docs:
            json.dumps(d.metadata)

    def test_ids_are_stable_and_unique(self, reader, path) -> None:
        first = [d.doc_id for d in reader.load_data(path)]
        assert len(first) == len(set(first))
        assert first == [d.doc_id for d in reader.load_data(path)]

    def test_lazy_and_async_equal_load_data(self, reader, path) -> None:
        docs = [d.doc_id for d in reader.load_data(path)]
        assert [d.doc_id for d in reader.lazy_load_data(path)] == docs
        assert [d.doc_id for d in asyncio.run(reader.aload_data(path))] == docs

    def test_extra_info_is_added(self, reader, path) -> None:
        docs = reader.load_data(path, extra_info={"team": "support"})
        assert all(d.metadata["team"] == "support" for d in docs)
