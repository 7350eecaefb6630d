"""A vision-language generator behind any OpenAI-compatible server (vLLM, Ollama, OpenAI,
llama.cpp server): answers from the retrieved pages with ``[P#]`` citations, streamed.

The prompt (built with :mod:`ragnest.generators.evidence`) labels each hit
(``[P1] manual.pdf p. 12``), shows its page or region image and its text layer, and asks
for an answer citing the labels, or :data:`~ragnest.generators.evidence.NOT_FOUND`.
Images share a visual-token budget per request (``visual_tokens``), split by rerank
score with a legibility floor per page (``min_page_tokens``) and a cap
(``max_page_tokens``); ragnest resizes each page to exact multiples of ``patch_unit``
and sends it as a ``data:`` URL. At most ``max_images`` pages go as images (vLLM takes
one per prompt unless started with ``--limit-mm-per-prompt``); the others are read
from their text. On a context-length or 413 error the request is retried once at half
the visual budget.

``Answer.usage``: ``prompt_tokens`` and ``completion_tokens`` as the server reports them,
``visual_tokens`` (what ragnest sent), ``visual_budget``, ``images`` and ``pages``, one
``{"label", "chunk_id", "visual_tokens", "width", "height"}`` per page shown.
Citations name the document, page, chunk and region: the text-layer block of the
cited page that best matches the sentence citing it (else the chunk's own box).

    >>> gen = OpenAIGenerator(base_url="http://localhost:8000/v1", model="Qwen/Qwen2.5-VL-7B-Instruct",
    ...                       max_images=4, visual_tokens=3000)
    >>> gen.generate(Query(text="How often should I descale?"), []).found
    False

    for delta in gen.stream(Query(text="How often should I descale?"), hits):
        print(delta.text, end="", flush=True)
    answer = delta.answer                    # the last delta: text, citations, usage
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from ragnest._http import OpenAIEndpoint, image_part
from ragnest._validate import AtLeast
from ragnest.errors import ConfigError, ParseError, RequestTooLargeError
from ragnest.generators.evidence import (
    NOT_FOUND,
    Evidence,
    answer_instructions,
    build_evidence,
    is_abstention,
    parse_citations,
    split_budget,
)
from ragnest.generators.streaming import AnswerText
from ragnest.media.fit import FittedImage
from ragnest.types import Answer, AnswerDelta, Hit, ImageRef, Query

__all__ = ["OpenAIGenerator", "message_text", "usage_of"]

logger = logging.getLogger(__name__)

_TAG = re.compile(r"\[\s*(P\d+)\s*\]")
_WORD = re.compile(r"[a-z0-9]{3,}")
_HOLD_CHARS = 300  # text streamed before its first citation is held back this long


def message_text(response: Mapping[str, Any]) -> str:
    """The text of a completion (``message.content``) or of a stream chunk
    (``delta.content``); ``""`` when there is none."""
    choices = response.get("choices") or [{}]
    choice = choices[0] or {}
    part = choice.get("delta") or choice.get("message") or {}
    content = part.get("content") if isinstance(part, Mapping) else None
    if isinstance(content, list):  # content parts, as some servers return them
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return content or ""


def usage_of(response: Mapping[str, Any]) -> dict[str, int]:
    """``prompt_tokens`` and ``completion_tokens`` as the server reports them."""
    usage = response.get("usage") or {}
    return {k: int(usage[k]) for k in ("prompt_tokens", "completion_tokens")
            if isinstance(usage.get(k), (int, float))}


@dataclass
class _Prompt:
    evidence: list[Evidence]
    messages: list[dict[str, Any]]
    usage: dict[str, Any]
    seconds: float


@dataclass(kw_only=True)
class OpenAIGenerator(OpenAIEndpoint):
    """Answers with ``[P#]`` citations from a model behind an OpenAI-compatible server.

    Server and image fields: see :class:`ragnest._http.OpenAIEndpoint`. ``max_pages``
    hits are shown; ``visual_tokens`` is the request's image budget, split across the
    pages shown as images with at least ``min_page_tokens`` and at most
    ``max_page_tokens`` each; ``page_text`` adds each page's text layer (cut to
    ``max_text_chars``). ``max_tokens`` and ``temperature`` go to the server (always
    sent: Ollama's default temperature is 1.0). ``include_usage`` asks a stream for its
    token counts (``stream_options``). ``instructions`` is appended to the system prompt.
    """

    visual_tokens: Annotated[int, AtLeast(0)] = 2560
    min_page_tokens: Annotated[int, AtLeast(1)] = 256
    max_page_tokens: Annotated[int, AtLeast(1)] = 1280
    max_pages: Annotated[int, AtLeast(1)] = 5
    page_text: bool = True
    max_text_chars: Annotated[int, AtLeast(0)] = 3000
    max_tokens: Annotated[int, AtLeast(1)] = 512
    temperature: Annotated[float, AtLeast(0.0)] = 0.0
    include_usage: bool = True
    instructions: str = ""

    _owner = "generator/openai"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_page_tokens > self.max_page_tokens:
            raise ConfigError(f"{self._owner}: min_page_tokens ({self.min_page_tokens}) must "
                              f"not exceed max_page_tokens ({self.max_page_tokens})")
        self._checked = False

    # -- lifecycle ----------------------------------------------------------------------
    def warm_up(self) -> None:
        """Check the server answers (``GET /models``; a model it does not list is logged)."""
        if not self._checked:
            self._check_model()
            self._checked = True

    def close(self) -> None:
        """Close the connection pool and the documents kept open for rendering."""
        self._release()
        self._checked = False

    # -- answering ----------------------------------------------------------------------
    def generate(self, query: Query, hits: Sequence[Hit]) -> Answer:
        """One request; the answer with its citations (``found=False`` when the pages do
        not hold it, or when there are no hits)."""
        hits = tuple(hits)
        if not hits:
            return _not_found(hits, {})
        t0 = time.perf_counter()
        prompt, reply = self._request(query, hits, stream=False)
        text = _answer_text(prompt).clean(message_text(reply)).strip()
        usage = {**usage_of(reply), **prompt.usage}
        return self._answer(text, prompt, hits, usage, time.perf_counter() - t0)

    def stream(self, query: Query, hits: Sequence[Hit]) -> Iterator[AnswerDelta]:
        """:meth:`generate` over SSE: text as it arrives (unknown ``[P#]`` tags dropped,
        each delta with the citations it introduces); the last delta (``done=True``)
        carries the :class:`~ragnest.types.Answer`. Text before the first citation is
        held back (up to 300 characters; ``AnswerText(hold_uncited=...)``), so an answer
        that turns out to be "not found" streams as :data:`NOT_FOUND` only."""
        hits = tuple(hits)
        if not hits:
            answer = _not_found(hits, {})
            yield AnswerDelta(text=answer.text)
            yield AnswerDelta(done=True, answer=answer)
            return
        t0 = time.perf_counter()
        prompt, events = self._request(query, hits, stream=True)
        usage: dict[str, Any] = {}
        text = _answer_text(prompt, hold_uncited=_HOLD_CHARS)
        cited: set[str] = set()

        def delta(new: str, so_far: str) -> AnswerDelta:
            """``new`` text, with the citations it makes (regions read from ``so_far``)."""
            _, cites = parse_citations(so_far, prompt.evidence,
                                       boxes=_regions(so_far, prompt.evidence))
            fresh = tuple(c for c in cites if c.chunk_id not in cited)
            cited.update(c.chunk_id for c in fresh)
            return AnswerDelta(text=new, citations=fresh)

        for event in events:
            usage.update(usage_of(event))
            new = text.feed(message_text(event))
            if new:
                yield delta(new, text.text)
        shown = text.text
        text.finish()
        answer = self._answer(text.text, prompt, hits, {**usage, **prompt.usage},
                              time.perf_counter() - t0, keep_text=bool(shown))
        rest = answer.text[len(shown):]  # NOT_FOUND in place of a withheld abstention
        if rest:
            yield delta(rest, answer.text)
        yield AnswerDelta(done=True, answer=answer)

    # -- internals ----------------------------------------------------------------------
    def _request(self, query: Query, hits: tuple[Hit, ...], *, stream: bool) -> tuple[_Prompt, Any]:
        """Build and send the request; retried once at half the visual budget when the
        server finds it too large."""
        chat = self._connect()
        self.warm_up()
        budget = self.visual_tokens
        for attempt in (1, 2):
            prompt = self._prompt(query, hits, budget)
            body = self._body(messages=prompt.messages, max_tokens=self.max_tokens,
                              temperature=self.temperature)
            if stream:
                body["stream"] = True
                if self.include_usage:
                    body["stream_options"] = {"include_usage": True}
            try:
                if not stream:
                    return prompt, chat.post("/chat/completions", body)
                events = chat.stream("/chat/completions", body)
                first = next(events, None)  # the request is sent (and may fail) here
                return prompt, _chain(first, events)
            except RequestTooLargeError as err:
                if attempt == 2 or budget < 2:
                    halved = ", half the configured one" if attempt == 2 else ""
                    raise RequestTooLargeError(
                        f"{err} (at a visual budget of {budget} tokens{halved}; lower "
                        "visual_tokens, max_pages or max_text_chars)", server=err.server,
                        model=err.model, status=err.status) from err
                budget //= 2
                logger.warning("%s: request too large; retrying at a visual budget of %d "
                               "tokens", self._owner, budget)
        raise AssertionError("unreachable")  # pragma: no cover

    def _prompt(self, query: Query, hits: tuple[Hit, ...], budget: int) -> _Prompt:
        t0 = time.perf_counter()
        evidence = build_evidence(hits[: self.max_pages], text=self.page_text,
                                  max_chars=self.max_text_chars)
        content: list[dict[str, Any]] = []
        total, sent, slots = budget, 0, self.max_images
        if query.image is not None and slots >= (2 if query.text else 1):
            # the question's own image comes out of the budget first (a quarter of it)
            q_tokens = min(self.max_page_tokens, max(self.min_page_tokens, budget // 4), budget)
            img = self._render(query.image, q_tokens, "the query image") if q_tokens else None
            if img is not None:
                content += [{"type": "text", "text": "The question comes with this image:"},
                            image_part(img.data_url(), self.detail)]
                sent, budget, slots = img.tokens, budget - img.tokens, slots - 1
        shown = [e for e in evidence if e.image is not None][: max(0, slots)]
        shares = split_budget([_weight(e.hit) for e in shown], total=budget,
                              floor=self.min_page_tokens, cap=self.max_page_tokens)
        tokens = {e.label: n for e, n in zip(shown, shares) if n > 0}
        pages: list[dict[str, Any]] = []
        for e in evidence:
            content.append({"type": "text", "text": e.header()})
            page = {"label": e.label, "chunk_id": e.chunk.id, "visual_tokens": 0,
                    "width": None, "height": None}
            if e.label in tokens and e.image is not None:
                img = self._render(e.image, tokens[e.label], e.header())
                if img is not None:
                    content.append(image_part(img.data_url(), self.detail))
                    page.update(visual_tokens=img.tokens, width=img.width, height=img.height)
                    sent += img.tokens
            pages.append(page)
            if e.text:
                content.append({"type": "text", "text": e.text})
        question = query.text or "What do the pages say about the image above?"
        content.append({"type": "text", "text": f"Question: {question}"})
        system = answer_instructions([e.label for e in evidence])
        if self.instructions:
            system = f"{system}\n{self.instructions}"
        images = sum(1 for part in content if part["type"] == "image_url")
        usage = {"visual_tokens": sent, "visual_budget": total, "images": images, "pages": pages}
        messages = [{"role": "system", "content": system}, {"role": "user", "content": content}]
        return _Prompt(evidence, messages, usage, time.perf_counter() - t0)

    def _render(self, ref: ImageRef, tokens: int, what: str) -> FittedImage | None:
        try:
            return self._image(ref, tokens)
        except ParseError as err:
            logger.warning("%s: %s: cannot render its image (%s); read as text", self._owner,
                           what, err)
            return None

    def _answer(self, text: str, prompt: _Prompt, hits: tuple[Hit, ...],
                usage: dict[str, Any], seconds: float, *, keep_text: bool = False) -> Answer:
        """The answer for the model's (cleaned) ``text``: not found when it says so
        (its own words kept when ``keep_text``: they were streamed already). ``seconds``
        since the request began; ``timings`` splits them into ``images`` (rendering and
        encoding) and ``model`` (the server)."""
        timings = {"images": prompt.seconds, "model": max(0.0, seconds - prompt.seconds)}
        _, citations = parse_citations(text, prompt.evidence,
                                       boxes=_regions(text, prompt.evidence))
        if NOT_FOUND.lower() in text.lower() or (not citations and is_abstention(text)):
            return _not_found(hits, usage, timings=timings, text=text if keep_text else NOT_FOUND)
        return Answer(text=text, citations=citations, hits=hits, usage=usage, timings=timings)


def _not_found(hits: tuple[Hit, ...], usage: Mapping[str, Any], *,
               timings: Mapping[str, float] | None = None, text: str = NOT_FOUND) -> Answer:
    return Answer(text=text, hits=hits, usage=dict(usage), timings=dict(timings or {}),
                  found=False)


def _weight(hit: Hit) -> float:
    stages = hit.scores_by_stage
    return float(stages.get("rerank_probability", hit.score))


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    if first is not None:
        yield first
    yield from rest


def _answer_text(prompt: _Prompt, *, hold_uncited: int = 0) -> AnswerText:
    """The model's text made the answer's: tags naming no evidence dropped, whitespace
    tidied as :func:`parse_citations` does (streamed or whole)."""
    return AnswerText([e.label for e in prompt.evidence], hold_uncited=hold_uncited)


def _regions(text: str, evidence: Sequence[Evidence]) -> dict[str, tuple[float, float, float, float]]:
    """For each cited label, the text-layer block of its chunk that shares the most words
    with the sentence that first cites it (at least 30 % of its words)."""
    by_label = {e.label: e for e in evidence}
    said: dict[str, set[str]] = {}
    start = 0
    for match in _TAG.finditer(text):
        sentence = re.split(r"(?<=[.!?])\s+", text[start:match.start()])[-1]
        said.setdefault(match.group(1), set(_WORD.findall(sentence.lower())))
        start = match.end()
    out = {}
    for label, words in said.items():
        e = by_label.get(label)
        if e is None or len(words) < 2:
            continue
        best, best_share = None, 0.3
        for seg in e.chunk.segments:
            if seg.bbox is None or (seg.page is not None and seg.page != e.chunk.page):
                continue
            share = len(words & set(_WORD.findall(seg.text.lower()))) / len(words)
            if share > best_share:
                best, best_share = seg.bbox, share
        if best is not None:
            out[label] = best
    return out
