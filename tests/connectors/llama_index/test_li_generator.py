"""llama_index.retrievers.ragnest.LlamaIndexGenerator: any LlamaIndex LLM as a ragnest
generator, with MockLLM (which echoes its prompt) and MockLLMWithChatMemoryOfLastCall."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    ChatResponse,
    ChatResponseGen,
    ImageBlock,
    MessageRole,
    TextBlock,
)
from llama_index.core.llms import ChatMessage, MockLLM
from llama_index.core.llms.mock import MockLLMWithChatMemoryOfLastCall
from llama_index.retrievers.ragnest import LlamaIndexGenerator

from ragnest.generators.evidence import NOT_FOUND
from ragnest.protocols import Generator, StreamingGenerator
from ragnest.types import Query

from .conftest import QUESTION


class Says(MockLLM):
    """MockLLM answering a fixed text (streamed in pieces of 3 characters)."""

    reply: str = ""

    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    def chat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=self.reply),
                            raw={"usage": {"prompt_tokens": 900, "completion_tokens": 12}})

    def stream_chat(self, messages: Any, **kwargs: Any) -> ChatResponseGen:
        def gen() -> ChatResponseGen:
            text = ""
            for i in range(0, len(self.reply), 3):
                text += self.reply[i:i + 3]
                yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text),
                                   delta=self.reply[i:i + 3])
        return gen()


@pytest.fixture(scope="module")
def hits(rag):
    return rag.retrieve(QUESTION, k=3)


def test_is_a_ragnest_streaming_generator():
    gen = LlamaIndexGenerator(llm=MockLLM())
    assert isinstance(gen, Generator) and isinstance(gen, StreamingGenerator)
    with pytest.raises(TypeError, match="LlamaIndex LLM"):
        LlamaIndexGenerator(llm="gpt")


def test_pages_go_in_as_image_blocks(hits):
    llm = MockLLMWithChatMemoryOfLastCall()
    LlamaIndexGenerator(llm=llm).generate(Query(text=QUESTION), hits)
    system, user = llm.last_chat_messages
    assert system.role == MessageRole.SYSTEM and "[P1], [P2], [P3]" in system.content
    assert NOT_FOUND in system.content
    images = [b for b in user.blocks if isinstance(b, ImageBlock)]
    texts = [b.text for b in user.blocks if isinstance(b, TextBlock)]
    assert len(images) == 3 and all(b.image_mimetype == "image/jpeg" for b in images)
    assert texts[0] == "[P1] nimbus3_handbook.pdf p. 5"
    assert "Descale the machine every 8 weeks" in texts[1]
    assert texts[-1] == f"Question: {QUESTION}"


def test_text_only(hits):
    llm = MockLLMWithChatMemoryOfLastCall()
    LlamaIndexGenerator(llm=llm, images=False, max_hits=2).generate(Query(text=QUESTION), hits)
    blocks = llm.last_chat_messages[1].blocks
    assert not any(isinstance(b, ImageBlock) for b in blocks)
    assert sum(b.text.startswith("[P") for b in blocks if isinstance(b, TextBlock)) == 2


def test_tags_become_citations_with_pages_and_regions(hits):
    llm = Says(reply="Descale every 8 weeks [P1], in hard water every 4 weeks [P1][P9].")
    answer = LlamaIndexGenerator(llm=llm).generate(Query(text=QUESTION), hits)
    assert answer.found and answer.text == "Descale every 8 weeks [P1], in hard water every 4 weeks [P1]."
    assert [c.page for c in answer.citations] == [5]
    assert answer.citations[0].chunk_id == hits[0].chunk.id
    assert answer.usage["images"] == 3 and answer.usage["prompt_tokens"] == 900


def test_mock_llm_echo_cites_every_page(hits):
    """MockLLM echoes the prompt: every [P#] label in it becomes a citation."""
    answer = LlamaIndexGenerator(llm=MockLLM()).generate(Query(text=QUESTION), hits)
    assert [c.chunk_id for c in answer.citations] == [h.chunk.id for h in hits]


def test_not_found():
    answer = LlamaIndexGenerator(llm=Says(reply=NOT_FOUND)).generate(Query(text="x"), [])
    assert not answer.found and answer.citations == ()


def test_stream_joins_to_the_answer_with_split_tags(hits):
    llm = Says(reply="Every 8 weeks [P1]. Ignore [P7]. Hard water: 4 weeks [P2].")
    deltas = list(LlamaIndexGenerator(llm=llm).stream(Query(text=QUESTION), hits))
    assert deltas[-1].done and deltas[-1].answer is not None
    answer = deltas[-1].answer
    assert "".join(d.text for d in deltas) == answer.text
    assert "[P7]" not in answer.text and answer.text.count("[P") == 2
    cited = [c.chunk_id for d in deltas for c in d.citations]
    assert cited == [hits[0].chunk.id, hits[1].chunk.id]
    assert [c.chunk_id for c in answer.citations] == cited


def test_stream_is_cleaned_as_generate_cleans(hits):
    """The streamed text is generate's text: leading space dropped, tags normalised,
    unknown ones dropped with the space they leave, as parse_citations tidies it."""
    llm = Says(reply="  Every 8 weeks [ P1 ] , [P9] then rinse [P2] . Ignore [P7].")
    gen = LlamaIndexGenerator(llm=llm)
    answer = gen.generate(Query(text=QUESTION), hits)
    deltas = list(gen.stream(Query(text=QUESTION), hits))
    assert answer.text == "Every 8 weeks [P1], then rinse [P2]. Ignore."
    assert "".join(d.text for d in deltas) == deltas[-1].answer.text == answer.text
    assert deltas[-1].answer.citations == answer.citations


def test_async(hits):
    llm = Says(reply="Every 8 weeks [P1].")
    answer = asyncio.run(LlamaIndexGenerator(llm=llm).agenerate(Query(text=QUESTION), hits))
    assert answer.citations[0].page == 5


def test_in_a_pipeline(rag):
    gen = LlamaIndexGenerator(llm=Says(reply="Every 8 weeks [P1]."))
    before = rag.generator
    rag.generator = gen
    try:
        answer = rag.query(QUESTION)
        streamed = list(rag.stream(QUESTION))
    finally:
        rag.generator = before
        gen.close()
    assert answer.citations[0].page == 5 and "generate" in answer.timings
    assert streamed[-1].answer.citations[0].page == 5
