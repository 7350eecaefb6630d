"""Images of Documents: references, bytes and base64 on demand, content blocks."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_ragnest import RagnestRetriever, chunk_to_document
from langchain_ragnest.documents import document_to_chunk, image_uri
from langchain_ragnest.images import (
    document_image,
    image_base64,
    image_block,
    image_blocks,
    image_bytes,
    to_content_blocks,
    with_image_base64,
)

from ragnest import Pipeline
from ragnest.types import Chunk, ImageRef, Segment

QUESTION = "How often should the machine be descaled?"


@pytest.fixture
def docs(pipeline: Pipeline) -> list[Document]:
    return RagnestRetriever(pipeline=pipeline, k=3, using=["dense", "bm25"]).invoke(QUESTION)


class Recorder(BaseCallbackHandler):
    """Keeps the messages a chat model was called with."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.messages.extend(messages)


def test_image_uri_names_pages_regions_files_and_members():
    assert image_uri(ImageRef(source="/d/m.pdf", page=3)) == "file:///d/m.pdf#page=3"
    region = ImageRef(source="/d/m.pdf", page=2, clip=(10.5, 20, 110.5, 70))
    assert image_uri(region) == "file:///d/m.pdf#page=2&viewrect=10.50,20,100,50"
    assert image_uri(ImageRef(blob="/d/fig one.png")) == "file:///d/fig%20one.png"
    assert image_uri(ImageRef(blob="/d/r.docx::word/media/image1.png")) == (
        "file:///d/r.docx#member=word/media/image1.png")
    assert image_uri(ImageRef(source="s3://bucket/m.pdf", page=1)) == "s3://bucket/m.pdf#page=1"


def test_bytes_on_demand_in_each_format(docs: list[Document]):
    data, mime = image_bytes(docs[0])
    assert mime == "image/jpeg" and data[:2] == b"\xff\xd8"
    png, mime = image_bytes(docs[0], format="png")
    assert mime == "image/png" and png[:4] == b"\x89PNG"
    small, _ = image_bytes(docs[0], max_pixels=20_000)
    assert len(small) < len(data)
    assert base64.b64decode(image_base64(docs[0]))[:2] == b"\xff\xd8"
    assert document_image(docs[0]) == ImageRef.from_dict(docs[0].metadata["image"]["ref"])


def test_document_without_image_is_named_in_the_error():
    doc = Document(page_content="plain text", metadata={"source": "notes.txt"})
    assert image_block(doc) is None and image_blocks([doc]) == []
    with pytest.raises(ValueError, match="notes.txt.*no image reference"):
        image_bytes(doc)


def test_base64_is_computed_once_and_reused(docs: list[Document]):
    filled = with_image_base64(docs[:1])
    assert "base64" not in docs[0].metadata["image"]  # the input is not changed
    cached = filled[0].metadata["image"]["base64"]
    assert image_base64(filled[0]) == cached
    block = image_block(filled[0])
    assert block is not None and block["base64"] == cached


def test_content_blocks_interleave_labels_text_and_images(docs: list[Document]):
    blocks = to_content_blocks(docs, max_images=2)
    kinds = [b["type"] for b in blocks]
    assert kinds == ["text", "image", "text", "image", "text"]
    assert blocks[0]["text"].startswith("[P1] nimbus3_handbook.pdf p. 5\n")
    assert "Descale the machine every 8 weeks" in blocks[0]["text"]
    assert blocks[1]["mime_type"] == "image/jpeg"
    assert base64.b64decode(blocks[1]["base64"])[:2] == b"\xff\xd8"
    assert [b["type"] for b in to_content_blocks(docs, images=False)] == ["text"] * 3
    assert len(image_blocks(docs, max_images=1)) == 1


def test_a_multimodal_chat_model_receives_the_pages(docs: list[Document]):
    recorder = Recorder()
    model = GenericFakeChatModel(messages=iter([AIMessage(content="Every 8 weeks [P1].")]))
    message = HumanMessage(content=[{"type": "text", "text": QUESTION},
                                    *to_content_blocks(docs, max_images=1)])
    reply = model.invoke([message], config={"callbacks": [recorder]})
    assert reply.text == "Every 8 weeks [P1]."
    sent = recorder.messages[0][0]
    images = [b for b in sent.content_blocks if b["type"] == "image"]
    assert len(images) == 1 and images[0]["mime_type"] == "image/jpeg"


def test_region_of_an_interleaved_chunk_and_round_trip():
    figure = ImageRef(source="/docs/m.pdf", page=3, clip=(50.0, 100.0, 300.0, 250.0), dpi=144)
    chunk = Chunk(id="c1", document_id="d1", kind="interleaved", text="The pump: see figure.",
                  source="/docs/m.pdf", page=3, bbox=(40.0, 90.0, 500.0, 400.0),
                  segments=(Segment(kind="text", text="The pump:"),
                            Segment(kind="image", image=figure, role="figure")),
                  metadata={"title": "Manual"})
    doc = chunk_to_document(chunk, image_format="webp")
    assert doc.metadata["image"]["mime_type"] == "image/webp"
    assert doc.metadata["image"]["uri"] == "file:///docs/m.pdf#page=3&viewrect=50,100,250,150"
    back = document_to_chunk(doc)
    assert (back.id, back.kind, back.page, back.bbox, back.image) == (
        "c1", "interleaved", 3, chunk.bbox, figure)
    assert back.metadata == {"title": "Manual"}


def test_foreign_documents_become_text_chunks():
    doc = Document(id="x1", page_content="Some text.", metadata={"source": "a.txt", "k": 1})
    chunk = document_to_chunk(doc)
    assert chunk.kind == "text" and chunk.source == "a.txt" and chunk.metadata["k"] == 1
    assert document_to_chunk(doc).id == chunk.id  # stable
