"""Any LlamaIndex LLM as a ragnest generator: pages go in as images, answers come back cited.

The LLM gets one system message (answer from the labelled pages only, cite them as
``[P1]``, say so when they do not contain the answer) and one user message whose
blocks are, per hit, a ``TextBlock`` header (``[P1] manual.pdf p. 5``), an
``ImageBlock`` with the page or region as a JPEG, and a ``TextBlock`` with its text
layer; then the question. Its ``[P#]`` tags become :class:`~ragnest.types.Citation`\\ s
with page and region::

    from llama_index.llms.openai import OpenAI           # any LlamaIndex LLM
    from llama_index.retrievers.ragnest import LlamaIndexGenerator
    rag = Pipeline.from_yaml("lite")
    rag.generator = LlamaIndexGenerator(llm=OpenAI(model="gpt-4o-mini"))
    answer = rag.query("How often should I descale the machine?")

A text-only LLM works too (``images=False``, or LLMs that ignore image blocks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ContentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
)

from ragnest.generators.evidence import (
    Evidence,
    answer_instructions,
    build_evidence,
    is_abstention,
    parse_citations,
)
from ragnest.generators.streaming import AnswerText
from ragnest.media.encode import encode
from ragnest.media.render import Renderer
from ragnest.types import Answer, AnswerDelta, Hit, Query

__all__ = ["LlamaIndexGenerator"]

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class LlamaIndexGenerator:
    """A ragnest generator (``generate``, ``stream``) on a LlamaIndex ``LLM``.

    ``max_hits`` hits are shown, each as its image (``images=True``; a JPEG of at most
    ``max_pixels``) and its text layer (cut to ``max_chars``); ``system_prompt`` is put
    before ragnest's answering instructions. ``usage`` reports hits, images, and the
    token counts the LLM's raw response holds.
    """

    llm: Any
    max_hits: int = 5
    images: bool = True
    max_pixels: int = 1_000_000
    max_chars: int = 4000
    system_prompt: str | None = None
    _renderer: Renderer | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not hasattr(self.llm, "chat"):
            raise TypeError(f"llm must be a LlamaIndex LLM (with .chat), got "
                            f"{type(self.llm).__name__}")
        if self.max_hits < 1 or self.max_pixels < 1 or self.max_chars < 0:
            raise ValueError("max_hits and max_pixels must be >= 1, max_chars >= 0")

    def warm_up(self) -> None:
        """Open the renderer that turns pages into images."""
        if self._renderer is None:
            self._renderer = Renderer()

    def close(self) -> None:
        """Close the documents the renderer keeps open."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ------------------------------------------------------------------ prompt
    def evidence(self, hits: Sequence[Hit]) -> list[Evidence]:
        """The labelled hits the LLM is shown (``P1``, ``P2``, ...)."""
        return build_evidence(list(hits)[: self.max_hits], images=self.images,
                              max_chars=self.max_chars)

    def messages(self, query: Query, evidence: Sequence[Evidence]) -> list[ChatMessage]:
        """The system and user messages for ``query`` over ``evidence``."""
        self.warm_up()
        system = answer_instructions([e.label for e in evidence])
        if self.system_prompt:
            system = f"{self.system_prompt.strip()}\n\n{system}"
        blocks: list[ContentBlock] = []
        for e in evidence:
            blocks.append(TextBlock(text=e.header()))
            if e.image is not None:
                image = self._image(e)
                if image is not None:
                    blocks.append(image)
            if e.text:
                blocks.append(TextBlock(text=e.text))
        if query.image is not None and self.images:
            try:
                blocks.append(ImageBlock(image=encode(query.image, "jpeg", renderer=self._renderer,
                                                      max_pixels=self.max_pixels),
                                         image_mimetype="image/jpeg"))
            except Exception as err:
                logger.warning("query image %s could not be read: %s", query.image, err)
        blocks.append(TextBlock(text=f"Question: {query.text or '(see the image above)'}"))
        return [ChatMessage(role=MessageRole.SYSTEM, content=system),
                ChatMessage(role=MessageRole.USER, blocks=blocks)]

    def _image(self, e: Evidence) -> ImageBlock | None:
        assert e.image is not None
        try:
            data = encode(e.image, "jpeg", max_pixels=self.max_pixels, renderer=self._renderer)
        except Exception as err:  # a moved file: the text layer still goes in
            logger.warning("%s: no image for %s (%s)", e.header(), e.image, err)
            return None
        return ImageBlock(image=data, image_mimetype="image/jpeg")

    # ------------------------------------------------------------------ answers
    def _answer(self, text: str, evidence: Sequence[Evidence], hits: Sequence[Hit],
                messages: Sequence[ChatMessage], raw: Any = None) -> Answer:
        cleaned, citations = parse_citations(text, evidence)
        found = bool(citations) or not is_abstention(cleaned)
        images = sum(isinstance(b, ImageBlock) for m in messages for b in m.blocks)
        usage: dict[str, Any] = {"hits_used": len(evidence), "images": images}
        usage.update(_token_usage(raw))
        return Answer(text=cleaned, citations=citations if found else (), hits=tuple(hits),
                      usage=usage, found=found)

    def generate(self, query: Query, hits: Sequence[Hit]) -> Answer:
        """Ask the LLM; its ``[P#]`` tags become citations (``found=False`` when it says
        the pages do not contain the answer)."""
        evidence = self.evidence(hits)
        messages = self.messages(query, evidence)
        response: ChatResponse = self.llm.chat(messages)
        return self._answer(response.message.content or "", evidence, hits, messages,
                            response.raw)

    async def agenerate(self, query: Query, hits: Sequence[Hit]) -> Answer:
        """:meth:`generate` with the LLM's ``achat`` (rendering runs in a thread)."""
        evidence = self.evidence(hits)
        messages = await asyncio.to_thread(self.messages, query, evidence)
        response: ChatResponse = await self.llm.achat(messages)
        return self._answer(response.message.content or "", evidence, hits, messages,
                            response.raw)

    def stream(self, query: Query, hits: Sequence[Hit]) -> Iterator[AnswerDelta]:
        """The answer as the LLM streams it, cleaned as it arrives by ragnest's
        :class:`~ragnest.generators.streaming.AnswerText` (a tag split across LLM chunks is
        held back until it closes, tags naming no page are dropped, whitespace is tidied
        as :meth:`generate` tidies it), each delta with the citations its ``[P#]`` tags
        introduce. The deltas' texts joined are the answer's text; the last delta
        carries the :class:`Answer`."""
        evidence = self.evidence(hits)
        messages = self.messages(query, evidence)
        text = AnswerText([e.label for e in evidence])
        seen: set[str | None] = set()  # the labels cited so far
        raw = None
        for chunk in self.llm.stream_chat(messages):
            raw = chunk.raw
            delta = _delta(text.feed(chunk.delta or ""), evidence, seen)
            if delta is not None:
                yield delta
        delta = _delta(text.finish(), evidence, seen)
        if delta is not None:
            yield delta
        answer = self._answer(text.text, evidence, hits, messages, raw)
        yield AnswerDelta(done=True, answer=replace(answer, text=text.text))


def _delta(text: str, evidence: Sequence[Evidence], seen: set[str | None]) -> AnswerDelta | None:
    """A delta of clean ``text`` with the citations it makes first (``None`` if empty)."""
    if not text:
        return None
    _, cited = parse_citations(text, evidence)
    new = tuple(c for c in cited if c.tag not in seen)
    seen.update(c.tag for c in cited)
    return AnswerDelta(text=text, citations=new)


def _token_usage(raw: Any) -> dict[str, int]:
    """Token counts from a raw response (OpenAI-style ``usage``), when it has them."""
    usage = raw.get("usage") if isinstance(raw, dict) else getattr(raw, "usage", None)
    if usage is None:
        return {}
    out = {}
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = usage.get(key) if isinstance(usage, dict) else getattr(usage, key, None)
        if isinstance(value, int):
            out[key] = value
    return out
