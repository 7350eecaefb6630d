"""llama_index.retrievers.ragnest: the contract, nodes with pages and regions, filters,
image queries, and a query engine with the ragnest retriever and postprocessor (MockLLM)."""

from __future__ import annotations

import base64

import pytest
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import ImageNode, QueryBundle, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from llama_index.postprocessor.ragnest_rerank import RagnestRerank
from llama_index.retrievers.ragnest import RagnestRetriever, node_to_hit, to_filters

from ragnest import Pipeline

from .conftest import EXAMPLES, QUESTION, TermReranker
from .contracts import RetrieverContract

HANDBOOK = str((EXAMPLES / "nimbus3_handbook.pdf").absolute())


class TestRagnestRetrieverContract(RetrieverContract):
    @pytest.fixture
    def make_retriever(self, rag):
        return lambda k: RagnestRetriever(rag, similarity_top_k=k)

    @pytest.fixture
    def query(self):
        return QUESTION


@pytest.fixture(scope="module")
def rag_with_reranker(tmp_path_factory):
    pipe = Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(tmp_path_factory.mktemp("rr"))},
                              overrides={"pipeline": {"retrieval": {"k": 3, "rerank_k": 8}}})
    pipe.reranker = TermReranker()
    pipe.ingest([EXAMPLES], progress=False)
    yield pipe
    pipe.close()


def test_query_engine_with_ragnest_retriever_and_postprocessor(rag_with_reranker):
    """The issue's acceptance test: a LlamaIndex query engine runs with the ragnest
    retriever and the ragnest reranker as its postprocessor, on MockLLM."""
    rag = rag_with_reranker
    engine = RetrieverQueryEngine.from_args(
        RagnestRetriever(rag, rerank=False),
        llm=MockLLM(),
        node_postprocessors=[RagnestRerank(pipeline=rag, top_n=2)],
    )
    response = engine.query(QUESTION)
    nodes = response.source_nodes
    assert len(nodes) == 2
    top = nodes[0].node
    assert isinstance(top, ImageNode) and top.metadata["file_name"] == "nimbus3_handbook.pdf"
    assert top.metadata["page"] == 5 and len(top.metadata["bbox"]) == 4
    stages = top.metadata["scores_by_stage"]
    assert {"dense-coarse", "bm25", "final", "rerank"} <= set(stages)
    assert nodes[0].score == pytest.approx(stages["rerank"])
    # MockLLM echoes its prompt: the pages' text and their labels reached the LLM,
    # the ragnest bookkeeping (ids, boxes, scores) did not
    text = str(response)
    assert "Descale the machine every 8 weeks" in text and "page_label: 5" in text
    assert "scores_by_stage" not in text and "chunk_id" not in text


def test_rerank_false_keeps_the_reranker_pool(rag_with_reranker):
    assert len(RagnestRetriever(rag_with_reranker, rerank=False).retrieve(QUESTION)) == 8
    nodes = RagnestRetriever(rag_with_reranker).retrieve(QUESTION)
    assert len(nodes) == 3 and "rerank" in nodes[0].node.metadata["scores_by_stage"]


def test_page_hits_are_image_nodes_with_a_jpeg(rag):
    nodes = RagnestRetriever(rag, similarity_top_k=3).retrieve(QUESTION)
    node = nodes[0].node
    assert isinstance(node, ImageNode) and node.image_mimetype == "image/jpeg"
    assert base64.b64decode(node.image)[:3] == b"\xff\xd8\xff"
    meta = node.metadata
    assert (meta["page"], meta["page_label"], meta["kind"]) == (5, "5", "page")
    assert meta["file_path"] == HANDBOOK and meta["image_ref"]["page"] == 5
    assert node.node_id == meta["chunk_id"] and node.ref_doc_id == meta["document_id"]
    assert "Descale the machine every 8 weeks" in node.get_content()


def test_images_none_gives_text_nodes(rag):
    nodes = RagnestRetriever(rag, similarity_top_k=3, images="none").retrieve(QUESTION)
    assert all(type(n.node) is TextNode for n in nodes)
    with pytest.raises(ValueError, match="images must be"):
        RagnestRetriever(rag, images="png")  # type: ignore[arg-type]


def test_text_chunks_are_text_nodes(rag):
    nodes = RagnestRetriever(rag, similarity_top_k=2).retrieve("visa for Japan travel")
    md = [n.node for n in nodes if n.node.metadata["file_name"] == "travel_faq.md"]
    assert md and all(type(n) is TextNode for n in md)


def test_filters_as_dict_and_metadata_filters(rag):
    only_lab = {"source": str((EXAMPLES / "lab_safety_guide.pdf").absolute())}
    nodes = RagnestRetriever(rag, filters=only_lab).retrieve(QUESTION)
    assert nodes and {n.node.metadata["file_name"] for n in nodes} == {"lab_safety_guide.pdf"}
    filters = MetadataFilters(filters=[
        MetadataFilter(key="file_path", value=HANDBOOK),
        MetadataFilter(key="page", value=4, operator=FilterOperator.GTE),
        MetadataFilter(key="page", value=6, operator=FilterOperator.LTE),
    ])
    assert to_filters(filters) == {"source": HANDBOOK, "page": {"gte": 4, "lte": 6}}
    pages = {n.node.metadata["page"] for n in RagnestRetriever(rag, filters=filters)
             .retrieve(QUESTION)}
    assert pages and pages <= {4, 5, 6}


def test_unsupported_filters_say_what_works():
    with pytest.raises(ValueError, match="AND only"):
        to_filters(MetadataFilters(filters=[MetadataFilter(key="page", value=1)],
                                   condition=FilterCondition.OR))
    with pytest.raises(ValueError, match="use ==, in"):
        to_filters(MetadataFilters(filters=[
            MetadataFilter(key="page", value=1, operator=FilterOperator.NE)]))


def test_node_to_hit_round_trip(rag):
    node = RagnestRetriever(rag, similarity_top_k=1).retrieve(QUESTION)[0]
    hit = node_to_hit(node)
    original = rag.retrieve(QUESTION, k=1)[0]
    assert hit.chunk.id == original.chunk.id and hit.chunk.page == original.chunk.page
    assert hit.chunk.bbox == original.chunk.bbox and hit.chunk.image == original.chunk.image
    assert hit.scores_by_stage == pytest.approx(dict(original.scores_by_stage))
    assert hit.chunk.metadata["title"] == original.chunk.metadata["title"]


def test_image_query_from_a_query_bundle(rag, tmp_path):
    """A screenshot of a table: the bundle's image_path is a ragnest image query."""
    from ragnest.media.encode import render_png
    from ragnest.types import ImageRef

    shot = tmp_path / "table.png"
    shot.write_bytes(render_png(ImageRef(source=HANDBOOK, page=6, clip=(64, 139, 531, 348),
                                         dpi=144)))
    nodes = RagnestRetriever(rag, similarity_top_k=3).retrieve(
        QueryBundle(query_str="", image_path=str(shot)))
    assert nodes[0].node.metadata["page"] == 6


def test_constructor_errors():
    with pytest.raises(TypeError, match="ragnest.Pipeline"):
        RagnestRetriever(object())  # type: ignore[arg-type]


def test_retriever_does_not_close_the_pipeline(rag):
    retriever = RagnestRetriever(rag)
    retriever.retrieve(QUESTION)
    del retriever
    assert rag.retrieve(QUESTION, k=1)
