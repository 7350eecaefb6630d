"""llama_index.postprocessor.ragnest_rerank: the contract, pipeline rerankers, errors."""

from __future__ import annotations

import pytest
from llama_index.core.schema import ImageNode, NodeWithScore, TextNode
from llama_index.postprocessor.ragnest_rerank import RagnestRerank
from llama_index.retrievers.ragnest import RagnestRetriever

from .conftest import QUESTION, TermReranker
from .contracts import PostprocessorContract


class TestRagnestRerankContract(PostprocessorContract):
    @pytest.fixture
    def make_postprocessor(self):
        return lambda top_n: RagnestRerank(TermReranker(), top_n=top_n)

    @pytest.fixture
    def nodes(self, rag):
        return RagnestRetriever(rag, similarity_top_k=5).retrieve(QUESTION)

    @pytest.fixture
    def query(self):
        return QUESTION


def test_ragnest_nodes_keep_their_image_and_stages(rag):
    nodes = RagnestRetriever(rag, similarity_top_k=5).retrieve(QUESTION)
    out = RagnestRerank(TermReranker(), top_n=2).postprocess_nodes(nodes, query_str=QUESTION)
    top = out[0].node
    assert isinstance(top, ImageNode) and top.image == nodes[0].node.image
    stages = top.metadata["scores_by_stage"]
    assert stages["rerank"] == pytest.approx(out[0].score)
    assert {"bm25", "final"} <= set(stages)
    assert "scores_by_stage" in top.excluded_llm_metadata_keys
    assert "rerank" not in nodes[0].node.metadata["scores_by_stage"]  # inputs untouched


def test_plain_text_nodes_are_reranked_as_text():
    nodes = [NodeWithScore(node=TextNode(text=t, metadata={"page_label": str(i)}), score=0.1)
             for i, t in enumerate(["Pack a travel adapter.", "Descale the machine often.",
                                    "The warranty lasts 2 years."], 1)]
    out = RagnestRerank(TermReranker(), top_n=1).postprocess_nodes(nodes, query_str=QUESTION)
    assert out[0].node.get_content() == "Descale the machine often."
    assert out[0].node.metadata["scores_by_stage"] == {"rerank": pytest.approx(out[0].score)}


def test_errors_say_what_to_pass(rag):
    with pytest.raises(ValueError, match="needs a reranker"):
        RagnestRerank(pipeline=rag)  # the lite pipeline has none
    with pytest.raises(TypeError, match="not a ragnest reranker"):
        RagnestRerank(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="top_n"):
        RagnestRerank(TermReranker(), top_n=0)
    node = NodeWithScore(node=TextNode(text="x"), score=1.0)
    with pytest.raises(ValueError, match="needs the query"):
        RagnestRerank(TermReranker()).postprocess_nodes([node])
