"""RagnestRetriever: Documents with page, region, scores and image references."""

from __future__ import annotations

import asyncio
import base64
import socket

import pytest
import pytest_socket
from langchain_core.documents import Document
from langchain_ragnest import RagnestRetriever

from ragnest import Pipeline
from ragnest.media.encode import encode
from ragnest.types import ImageRef

QUESTION = "How often should the machine be descaled?"


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_sockets_are_disabled():
    with pytest.raises(pytest_socket.SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def test_documents_carry_page_region_scores_and_image_reference(pipeline: Pipeline):
    docs = RagnestRetriever(pipeline=pipeline, k=3, explain=True).invoke(QUESTION)
    assert len(docs) == 3 and all(isinstance(d, Document) for d in docs)
    top = docs[0]
    meta = top.metadata
    assert meta["source"].endswith("nimbus3_handbook.pdf") and meta["page"] == 5
    assert "descal" in top.page_content.lower()
    assert top.id == meta["chunk_id"]
    assert meta["kind"] == "page" and meta["pages"] == [5]
    assert meta["bbox"] == [0.0, 0.0, 595.0, 842.0]
    assert meta["score"] >= docs[1].metadata["score"] >= docs[2].metadata["score"]
    stages = meta["scores_by_stage"]
    assert stages["final"] == pytest.approx(meta["score"])
    assert {"bm25", "dense-coarse", "dense-mid", "dense-fine"} <= set(stages)
    image = meta["image"]
    assert image["uri"].startswith("file:///") and image["uri"].endswith(
        "nimbus3_handbook.pdf#page=5")
    assert image["mime_type"] == "image/jpeg"
    assert image["ref"]["page"] == 5 and "base64" not in image  # a reference, no pixels
    assert meta["title"]  # the parser's own metadata comes along


def test_k_field_and_invoke_kwarg(pipeline: Pipeline):
    retriever = RagnestRetriever(pipeline=pipeline)
    assert len(retriever.invoke(QUESTION)) == pipeline.retrieval.k  # the pipeline's own k
    assert len(retriever.invoke(QUESTION, k=2)) == 2
    assert len(RagnestRetriever(pipeline=pipeline, k=4).invoke(QUESTION)) == 4
    with pytest.raises(ValueError, match="k=0"):
        retriever.invoke(QUESTION, k=0)


def test_filters_budgets_and_unknown_kwargs(pipeline: Pipeline, docs_dir):
    safety = str((docs_dir / "lab_safety_guide.pdf").absolute())
    retriever = RagnestRetriever(pipeline=pipeline, k=3)
    docs = retriever.invoke(QUESTION, filters={"source": safety})
    assert docs and all(d.metadata["source"] == safety for d in docs)
    pinned = RagnestRetriever(pipeline=pipeline, k=2, filters={"page": {"gte": 7}})
    assert all(d.metadata["page"] >= 7 for d in pinned.invoke(QUESTION))
    assert len(retriever.invoke(QUESTION, budgets={"coarse": 10, "mid": 5})) == 3
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['top_k'\\]"):
        retriever.invoke(QUESTION, top_k=2)


async def test_ainvoke_matches_invoke(pipeline: Pipeline):
    retriever = RagnestRetriever(pipeline=pipeline, k=3)
    sync = retriever.invoke(QUESTION)
    docs = await retriever.ainvoke(QUESTION, k=3)
    assert [d.id for d in docs] == [d.id for d in sync]
    assert len(await retriever.ainvoke(QUESTION, k=1)) == 1
    many = await asyncio.gather(*(retriever.ainvoke(QUESTION) for _ in range(8)))
    assert all([d.id for d in docs] == [d.id for d in sync] for docs in many)


def test_include_base64_renders_the_page(pipeline: Pipeline):
    docs = RagnestRetriever(pipeline=pipeline, k=1, include_base64=True,
                            image_format="png").invoke(QUESTION)
    image = docs[0].metadata["image"]
    assert image["mime_type"] == "image/png"
    assert base64.b64decode(image["base64"])[:4] == b"\x89PNG"


def test_markdown_sections_have_no_image(pipeline: Pipeline):
    docs = RagnestRetriever(pipeline=pipeline, k=2).invoke(
        "travel insurance luggage", filters={"kind": "text"})
    assert docs and all(d.metadata["kind"] == "text" for d in docs)
    assert all("image" not in d.metadata for d in docs)
    assert all(d.metadata["source"].endswith("travel_faq.md") for d in docs)


def test_image_query_from_a_screenshot_crop(pipeline: Pipeline, docs_dir, tmp_path):
    # the "Descaling" paragraph of page 5, as a user would screenshot it
    page = ImageRef(source=str(docs_dir / "nimbus3_handbook.pdf"), page=5, dpi=150,
                    clip=(60.0, 250.0, 525.0, 330.0))
    crop = tmp_path / "crop.png"
    crop.write_bytes(encode(page, "png"))
    # read by OCR and searched as text (the routes that read text: using=)
    retriever = RagnestRetriever(pipeline=pipeline, k=1, using=["dense", "bm25"])
    docs = retriever.invoke("", image=str(crop))
    assert docs[0].metadata["page"] == 5


def test_from_yaml_builds_its_own_pipeline(tmp_path, docs_dir):
    retriever = RagnestRetriever.from_yaml("lite", env={"RAGNEST_STORE": str(tmp_path)}, k=1)
    try:
        retriever.pipeline.ingest([docs_dir / "lab_safety_guide.pdf"], progress=False)
        docs = retriever.invoke("How long should I rinse my eyes at the eyewash station?")
        assert len(docs) == 1 and docs[0].metadata["source"].endswith("lab_safety_guide.pdf")
    finally:
        retriever.close()


def test_pipeline_by_name_with_env(tmp_path, docs_dir):
    retriever = RagnestRetriever(pipeline="lite", env={"RAGNEST_STORE": str(tmp_path)}, k=2)
    try:
        assert isinstance(retriever.pipeline, Pipeline)
        assert retriever.pipeline.stats()["chunks"] == 0
    finally:
        retriever.close()
    with pytest.raises(ValueError, match="env= and profile= apply to pipeline="):
        RagnestRetriever(pipeline=retriever.pipeline, env={"X": "1"})


def test_retriever_is_a_runnable_in_lcel(pipeline: Pipeline):
    from langchain_core.runnables import RunnableLambda

    chain = RagnestRetriever(pipeline=pipeline, k=2) | RunnableLambda(
        lambda docs: [d.metadata["page"] for d in docs])
    assert chain.invoke(QUESTION)[0] == 5
    assert chain.batch([QUESTION, QUESTION]) == [chain.invoke(QUESTION)] * 2
