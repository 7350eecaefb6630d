"""Any LangChain chat model as a ragnest generator (the other direction).

``ChatModelGenerator`` satisfies ragnest's ``Generator`` and ``StreamingGenerator``
protocols: it shows the model the retrieved pages the way every ragnest generator
does (:mod:`ragnest.generators.evidence`: labels ``[P1] manual.pdf p. 12``, the answer
instructions, the page or region images as LangChain image content blocks, rendered
and JPEG-encoded by ragnest) and reads the ``[P#]`` citations back::

    from langchain_openai import ChatOpenAI            # or any BaseChatModel
    from ragnest import Pipeline
    from langchain_ragnest import ChatModelGenerator

    rag = Pipeline.from_yaml("lite")
    rag.generator = ChatModelGenerator(model=ChatOpenAI(model="gpt-4o-mini"))
    answer = rag.query("How often should I descale the machine?")
    answer.text, [c.label() for c in answer.citations]

Offline, with langchain-core's fake model::

    >>> from langchain_core.language_models import FakeListChatModel
    >>> from ragnest.types import Chunk, Hit, Query
    >>> chunk = Chunk(id="c1", document_id="d1", kind="page", page=5, source="/docs/manual.pdf",
    ...               text="Descale the machine every 8 weeks.")
    >>> gen = ChatModelGenerator(model=FakeListChatModel(responses=["Every 8 weeks [P1]."]))
    >>> answer = gen.generate(Query(text="How often should I descale?"), [Hit(chunk=chunk, score=1.0)])
    >>> answer.text, [c.label() for c in answer.citations]
    ('Every 8 weeks [P1].', ['manual.pdf p. 5'])

Images are sent for at most ``max_images`` hits (``images=False`` sends text only, for
text-only models), each within ``max_pixels``. The chat model is a Python object, so
a pipeline with this generator is built (or given its generator) in Python, not YAML.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.messages.content import create_image_block, create_text_block
from langchain_core.runnables import Runnable
from ragnest.errors import ConfigError
from ragnest.generators.evidence import (
    NOT_FOUND,
    Evidence,
    answer_instructions,
    build_evidence,
    is_abstention,
    parse_citations,
)
from ragnest.generators.streaming import AnswerText
from ragnest.media.encode import encode, mime_type, normalize_format
from ragnest.media.render import Renderer
from ragnest.types import Answer, AnswerDelta, Citation, Hit, ImageRef, Query

from langchain_ragnest.images import DEFAULT_MAX_PIXELS

__all__ = ["ChatModelGenerator"]

logger = logging.getLogger(__name__)

_TAG = re.compile(r"\[\s*(P\d+)\s*\]")


@dataclass(kw_only=True)
class ChatModelGenerator:
    """A LangChain ``BaseChatModel`` answering from ragnest hits, with page citations.

    Args:
        model: the chat model (any ``BaseChatModel``, also wrapped by ``with_config``,
            ``with_retry``, ``bind``; multimodal for ``images=True``).
        images: send each hit's page or region image as an image content block.
        image_format: ``jpeg`` (default), ``png`` or ``webp``.
        max_pixels: pixel cap of each image.
        max_images: images sent at most (to the best-ranked hits).
        max_chars: text layer characters per hit.
        system_prompt: replaces ragnest's answer instructions (keep the ``[P#]`` rule
            if citations are wanted).
    """

    model: Any
    images: bool = True
    image_format: str = "jpeg"
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_images: int = 4
    max_chars: int = 4000
    system_prompt: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, (BaseChatModel, Runnable)):
            raise ConfigError(
                f"ChatModelGenerator: model={type(self.model).__name__} is not a LangChain "
                "chat model (a langchain_core BaseChatModel, or one wrapped by with_config, "
                "with_retry, bind, ...)"
            )
        self.image_format = normalize_format(self.image_format)
        if self.max_pixels < 1 or self.max_images < 0 or self.max_chars < 0:
            raise ConfigError(
                "ChatModelGenerator: max_pixels must be >= 1, max_images and max_chars >= 0"
            )
        self._renderer: Renderer | None = None

    # -- lifecycle -------------------------------------------------------------------
    def warm_up(self) -> None:
        """Open the renderer that draws page images (the model is the caller's)."""
        if self._renderer is None:
            self._renderer = Renderer()

    def close(self) -> None:
        """Close the renderer's open documents."""
        renderer, self._renderer = self._renderer, None
        if renderer is not None:
            renderer.close()

    # -- prompt ----------------------------------------------------------------------
    def _image(self, ref: ImageRef) -> dict[str, Any]:
        self.warm_up()
        data = encode(ref, self.image_format, max_pixels=self.max_pixels, renderer=self._renderer)
        return dict(create_image_block(base64=base64.b64encode(data).decode("ascii"),
                                       mime_type=mime_type(self.image_format)))

    def messages(self, query: Query, hits: Sequence[Hit]) -> tuple[list[BaseMessage], list[Evidence]]:
        """The messages sent to the model for ``query`` and ``hits``, and the evidence
        their labels name (what :func:`parse_citations` resolves against)."""
        evidence = build_evidence(hits, images=self.images, max_chars=self.max_chars)
        system = self.system_prompt or answer_instructions([e.label for e in evidence])
        content: list[dict[str, Any]] = []
        sent = 0
        for e in evidence:
            content.append(dict(create_text_block(f"{e.header()}\n{e.text}" if e.text else e.header())))
            if e.image is not None and sent < self.max_images:
                content.append(self._image(e.image))
                sent += 1
        question = query.text or "What does this image show, according to the pages?"
        content.append(dict(create_text_block(f"Question: {question}")))
        if query.image is not None and self.images:
            content.append(self._image(query.image))
        return [SystemMessage(content=system), HumanMessage(content=content)], evidence  # type: ignore[arg-type]

    # -- answers ---------------------------------------------------------------------
    def _answer(self, raw: str, evidence: list[Evidence], hits: Sequence[Hit],
                usage: dict[str, Any], seconds: float) -> Answer:
        text, citations = parse_citations(raw, evidence)
        found = bool(evidence) and not is_abstention(text)
        if not found:
            citations = ()
            text = text or NOT_FOUND
        return Answer(text=text, citations=citations, hits=tuple(hits), usage=usage,
                      timings={"model": seconds}, found=found)

    def _usage(self, message: BaseMessage | None, evidence: list[Evidence],
               images: int) -> dict[str, Any]:
        usage: dict[str, Any] = {"hits": len(evidence), "images": images}
        meta = getattr(message, "usage_metadata", None) if message is not None else None
        if meta:
            usage.update({k: meta[k] for k in ("input_tokens", "output_tokens", "total_tokens")
                          if k in meta})
        return usage

    def generate(self, query: Query, hits: Sequence[Hit]) -> Answer:
        """Ask the model once; the answer's ``[P#]`` tags become citations."""
        if not hits:
            return Answer(text=NOT_FOUND, found=False)
        messages, evidence = self.messages(query, hits)
        t0 = time.perf_counter()
        reply = self.model.invoke(messages)
        seconds = time.perf_counter() - t0
        images = _count_images(messages)
        return self._answer(_text(reply), evidence, hits, self._usage(reply, evidence, images),
                            seconds)

    def stream(self, query: Query, hits: Sequence[Hit]) -> Iterator[AnswerDelta]:
        """The answer as the model streams it, cleaned as it arrives by ragnest's
        :class:`~ragnest.generators.streaming.AnswerText` (a tag split across chunks is
        held back until it closes, tags naming no page are dropped, whitespace is tidied
        as :meth:`generate` tidies it); each delta carries the citations it introduces;
        the texts joined are the final answer's text; the last delta carries the
        :class:`Answer`."""
        if not hits:
            yield AnswerDelta(text=NOT_FOUND, done=True, answer=Answer(text=NOT_FOUND, found=False))
            return
        messages, evidence = self.messages(query, hits)
        labels = {e.label: e for e in evidence}
        t0 = time.perf_counter()
        text = AnswerText(labels.keys())
        seen: set[str] = set()
        last: BaseMessage | None = None
        for chunk in self.model.stream(messages):
            last = chunk if last is None else last + chunk  # type: ignore[operator]
            out = text.feed(_text(chunk))
            if out:
                yield AnswerDelta(text=out, citations=_new_citations(out, labels, seen))
        out = text.finish()
        if out:
            yield AnswerDelta(text=out, citations=_new_citations(out, labels, seen))
        emitted = text.text
        if not emitted:
            emitted = NOT_FOUND
            yield AnswerDelta(text=NOT_FOUND)
        seconds = time.perf_counter() - t0
        answer = self._answer(text.raw, evidence, hits,
                              self._usage(last, evidence, _count_images(messages)), seconds)
        # the deltas' texts joined are the answer's text
        yield AnswerDelta(done=True, answer=replace(answer, text=emitted))


def _text(message: Any) -> str:
    if isinstance(message, BaseMessage):
        return str(message.text)
    return str(message)


def _count_images(messages: Sequence[BaseMessage]) -> int:
    return sum(1 for m in messages if isinstance(m.content, list)
               for b in m.content if isinstance(b, dict) and b.get("type") == "image")


def _new_citations(text: str, labels: dict[str, Evidence], seen: set[str]) -> tuple[Citation, ...]:
    """The citations of the labels ``text`` (a delta) cites for the first time."""
    fresh = []
    for label in _TAG.findall(text):
        if label in labels and label not in seen:
            seen.add(label)
            fresh.append(label)
    if not fresh:
        return ()
    _, citations = parse_citations(" ".join(f"[{lb}]" for lb in fresh), [labels[lb] for lb in fresh])
    return citations
