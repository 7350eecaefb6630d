"""ChatModelGenerator: any LangChain chat model as a ragnest generator."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_ragnest import ChatModelGenerator

from ragnest import Pipeline
from ragnest.generators.evidence import NOT_FOUND
from ragnest.protocols import Generator, StreamingGenerator
from ragnest.types import Hit, ImageRef, Query

QUESTION = "How often should the machine be descaled?"


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.messages: list[Any] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.messages.extend(messages)


@pytest.fixture
def hits(pipeline: Pipeline) -> list[Hit]:
    return pipeline.retrieve(QUESTION, k=3, using=["dense", "bm25"])


def fake(*responses: str, usage: dict[str, int] | None = None) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter(
        [AIMessage(content=r, usage_metadata=usage) for r in responses]))  # type: ignore[arg-type]


def test_satisfies_ragnest_protocols():
    gen = ChatModelGenerator(model=FakeListChatModel(responses=["x"]))
    assert isinstance(gen, Generator) and isinstance(gen, StreamingGenerator)
    with pytest.raises(Exception, match="is not a LangChain chat model"):
        ChatModelGenerator(model=object())


def test_pages_go_as_image_blocks_and_citations_come_back(hits: list[Hit]):
    recorder = Recorder()
    usage = {"input_tokens": 1200, "output_tokens": 9, "total_tokens": 1209}
    model = fake("Descale every 8 weeks [P1], every 4 in hard water [ P1 ]. See [P9].",
                 usage=usage).with_config(callbacks=[recorder])
    gen = ChatModelGenerator(model=model, max_images=2)  # type: ignore[arg-type]
    answer = gen.generate(Query(text=QUESTION), hits)
    assert answer.found
    assert answer.text == "Descale every 8 weeks [P1], every 4 in hard water [P1]. See."
    assert [c.label() for c in answer.citations] == ["nimbus3_handbook.pdf p. 5"]
    assert answer.citations[0].chunk_id == hits[0].chunk.id
    assert answer.usage == {"hits": 3, "images": 2, **usage}
    assert [h.chunk.id for h in answer.hits] == [h.chunk.id for h in hits]
    system, human = recorder.messages[0]
    assert "[P1], [P2], [P3]" in system.content and NOT_FOUND in system.content
    blocks = human.content_blocks
    assert [b["type"] for b in blocks] == ["text", "image", "text", "image", "text", "text"]
    assert blocks[0]["text"].startswith("[P1] nimbus3_handbook.pdf p. 5\n")
    assert blocks[-1]["text"] == f"Question: {QUESTION}"
    assert blocks[1]["mime_type"] == "image/jpeg"
    assert base64.b64decode(blocks[1]["base64"])[:2] == b"\xff\xd8"
    gen.close()


def test_text_only_models_and_image_queries(hits: list[Hit], docs_dir):
    recorder = Recorder()
    gen = ChatModelGenerator(model=fake("Every 8 weeks [P1].").with_config(  # type: ignore[arg-type]
        callbacks=[recorder]), images=False)
    assert gen.generate(Query(text=QUESTION), hits).usage["images"] == 0
    assert all(b["type"] == "text" for b in recorder.messages[0][1].content_blocks)
    recorder.messages.clear()
    crop = ImageRef(source=str(docs_dir / "nimbus3_handbook.pdf"), page=5,
                    clip=(60.0, 250.0, 525.0, 330.0))
    gen = ChatModelGenerator(model=fake("Every 8 weeks [P1].").with_config(  # type: ignore[arg-type]
        callbacks=[recorder]), max_images=0)
    gen.generate(Query(text=QUESTION, image=crop), hits)
    assert [b["type"] for b in recorder.messages[0][1].content_blocks][-2:] == ["text", "image"]


def test_abstention_and_no_hits(hits: list[Hit]):
    gen = ChatModelGenerator(model=fake(NOT_FOUND))
    answer = gen.generate(Query(text="What is the capital of Peru?"), hits)
    assert not answer.found and answer.citations == () and answer.text == NOT_FOUND
    empty = ChatModelGenerator(model=fake("unused")).generate(Query(text=QUESTION), [])
    assert not empty.found and empty.text == NOT_FOUND


def test_stream_char_by_char_keeps_tags_whole(hits: list[Hit]):
    text = "  Descale every 8 weeks [P1]; in hard water every 4 [P2]. Ignore [P7] this.  "
    gen = ChatModelGenerator(model=FakeListChatModel(responses=[text]))  # streams one char at a time
    deltas = list(gen.stream(Query(text=QUESTION), hits))
    assert deltas[-1].done and deltas[-1].answer is not None
    answer = deltas[-1].answer
    joined = "".join(d.text for d in deltas)
    assert joined == answer.text == "Descale every 8 weeks [P1]; in hard water every 4 [P2]. Ignore this."
    assert all("[P" not in d.text or "]" in d.text for d in deltas)  # a tag never split
    streamed = [c for d in deltas[:-1] for c in d.citations]
    assert [c.chunk_id for c in streamed] == [c.chunk_id for c in answer.citations]
    assert [c.chunk_id for c in answer.citations] == [hits[0].chunk.id, hits[1].chunk.id]


def test_stream_is_cleaned_as_generate_cleans(hits: list[Hit]):
    """Streamed one character at a time, the text is exactly generate's: tags
    normalised, unknown ones dropped, whitespace tidied as parse_citations does."""
    text = "\n Descale  every 8 weeks [ P1 ] , [P9] then rinse [P2] .\nDone.  "
    answer = ChatModelGenerator(model=FakeListChatModel(responses=[text])).generate(
        Query(text=QUESTION), hits)
    deltas = list(ChatModelGenerator(model=FakeListChatModel(responses=[text])).stream(
        Query(text=QUESTION), hits))
    assert answer.text == "Descale every 8 weeks [P1], then rinse [P2].\nDone."
    assert "".join(d.text for d in deltas) == deltas[-1].answer.text == answer.text
    assert deltas[-1].answer.citations == answer.citations


def test_an_empty_stream_is_not_found(hits: list[Hit]):
    deltas = list(ChatModelGenerator(model=FakeListChatModel(responses=["  [P9] "])).stream(
        Query(text=QUESTION), hits))
    assert "".join(d.text for d in deltas) == deltas[-1].answer.text == NOT_FOUND
    assert not deltas[-1].answer.found


def test_as_the_generator_of_a_pipeline(pipeline: Pipeline):
    old = pipeline.generator
    pipeline.generator = ChatModelGenerator(model=FakeListChatModel(
        responses=["Every 8 weeks [P1].", "Every 8 weeks [P1]."]))
    try:
        answer = pipeline.query(QUESTION, k=2)
        assert answer.text == "Every 8 weeks [P1]." and answer.citations[0].page == 5
        assert "generate" in answer.timings
        deltas = list(pipeline.stream(QUESTION, k=2))
        assert "".join(d.text for d in deltas) == "Every 8 weeks [P1]."
        assert deltas[-1].answer is not None and deltas[-1].answer.citations[0].page == 5
    finally:
        pipeline.generator = old
