"""A vision-language reranker behind any OpenAI-compatible server (vLLM, Ollama, OpenAI,
llama.cpp server), scored by the logprobs of a one-token yes/no answer.

Each candidate is one chat request: the page image (resized by ragnest to
``image_tokens`` visual tokens in exact multiples of ``patch_unit``, sent as a ``data:``
URL) and/or its text, then the query and "is this relevant? yes or no", with
``max_tokens=1, temperature=0, logprobs=true, top_logprobs=20``. The relevance logit is
``logsumexp(yes variants) - logsumexp(no variants)`` over the first token's top
logprobs ("yes", "Yes", " yes", ...), its probability the sigmoid of that. When a
response lacks one side (it is not among the top logprobs) the scores are marked
uncalibrated and the cut-off keeps the candidates above the largest score gap instead
of applying the threshold (:mod:`ragnest.rerankers.cutoff`).

A server or model that refuses logprobs (OpenAI reasoning models, Ollama before 0.12.11,
a ``top_logprobs`` above vLLM's ``--max-logprobs``) fails at ``warm_up`` with an error
saying so. On a context-length or 413 error a candidate is retried once at half the
image tokens.

In YAML::

    reranker:
      type: reranker/openai
      params:
        base_url: ${RAGNEST_OPENAI_BASE_URL:-http://localhost:8000/v1}
        model: Qwen/Qwen2.5-VL-7B-Instruct
        api_key_env: OPENAI_API_KEY     # the variable's name, never the key
        threshold: 0.5

In Python::

    reranker = OpenAIReranker(base_url="http://localhost:8000/v1", model="Qwen/Qwen2.5-VL-7B-Instruct")
    reranker.warm_up()                       # checks the server returns logprobs
    kept = reranker.rerank(Query(text="how often to descale?"), hits, top_k=5)
    kept[0].scores_by_stage["rerank"], kept[0].scores_by_stage["rerank_probability"]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from ragnest._http import OpenAIEndpoint, image_part
from ragnest._validate import AtLeast
from ragnest.errors import ConfigError, ModelServerError, ParseError, RequestTooLargeError
from ragnest.multimodal import chunk_parts, chunk_text
from ragnest.rerankers.cutoff import apply_cutoff, sigmoid
from ragnest.types import Chunk, Hit, ImageRef, Query

__all__ = ["DEFAULT_INSTRUCTIONS", "OpenAIReranker", "first_token_logprobs", "relevance"]

logger = logging.getLogger(__name__)

#: The system prompt: what the model is asked to judge.
DEFAULT_INSTRUCTIONS = (
    "You judge whether a document page is relevant to a search query: whether it contains "
    'information that answers the query. Answer with one word: "yes" or "no".'
)
_PROBE = "Is Paris the capital of France? Answer yes or no."


def first_token_logprobs(response: Mapping[str, Any]) -> list[tuple[str, float]] | None:
    """``(token, logprob)`` of the first generated token and its ``top_logprobs`` (each
    token once), or ``None`` when the response carries no logprobs."""
    choices = response.get("choices") or [{}]
    content = ((choices[0] or {}).get("logprobs") or {}).get("content") or []
    if not content or not isinstance(content[0], Mapping):
        return None
    first = content[0]
    out: dict[str, float] = {}
    for item in [first, *(first.get("top_logprobs") or [])]:
        token, logprob = item.get("token"), item.get("logprob")
        if isinstance(token, str) and isinstance(logprob, (int, float)):
            out.setdefault(token, float(logprob))
    return list(out.items()) or None


def _word(token: str) -> str:
    return token.replace("\u0120", " ").replace("\u2581", " ").strip().lower()


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def relevance(top: Sequence[tuple[str, float]]) -> tuple[float, bool]:
    """``(logit, calibrated)`` from a first token's top logprobs: ``logsumexp`` of the
    "yes" variants minus that of the "no" variants. A side missing from the list is
    bounded by the probability the list leaves unaccounted for (and by its smallest
    entry), and the logit is then marked uncalibrated.

    >>> logit, ok = relevance([("yes", math.log(0.6)), (" Yes", math.log(0.2)), ("no", math.log(0.2))])
    >>> round(logit, 3), ok
    (1.386, True)
    >>> relevance([("yes", -0.1)])[1]
    False
    """
    yes = [lp for tok, lp in top if _word(tok) == "yes"]
    no = [lp for tok, lp in top if _word(tok) == "no"]
    if yes and no:
        return _logsumexp(yes) - _logsumexp(no), True
    probs = [math.exp(lp) for _, lp in top]
    unlisted = max(0.0, 1.0 - sum(probs))
    bound = math.log(max(1e-9, min([unlisted, *probs]) if probs else 1.0))
    lse_yes = _logsumexp(yes) if yes else bound
    lse_no = _logsumexp(no) if no else bound
    return lse_yes - lse_no, False


@dataclass(kw_only=True)
class OpenAIReranker(OpenAIEndpoint):
    """Pointwise yes/no relevance from a model behind an OpenAI-compatible server.

    Server and image fields: see :class:`ragnest._http.OpenAIEndpoint`. ``read`` says
    what of a candidate the model sees: ``"image"`` (its page or region image; text when
    it has none), ``"text"``, or ``"both"`` (image, then text, cut to
    ``max_text_chars``). ``image_tokens``: visual tokens per candidate (shared by the
    images of an interleaved chunk). ``top_logprobs``: how many alternatives the server
    returns for the answer token. Cut-off: probability >= ``threshold`` within
    [``min_k``, ``max_k``] (see :mod:`ragnest.rerankers.cutoff`). ``concurrency``
    requests are in flight at a time. ``instructions`` replaces the system prompt.
    """

    image_tokens: Annotated[int, AtLeast(1)] = 768
    read: Literal["image", "text", "both"] = "image"
    max_text_chars: Annotated[int, AtLeast(0)] = 2000
    top_logprobs: Annotated[int, AtLeast(1)] = 20
    threshold: Annotated[float, AtLeast(0.0)] = 0.5
    min_k: Annotated[int, AtLeast(0)] = 1
    max_k: Annotated[int, AtLeast(1)] = 8
    concurrency: Annotated[int, AtLeast(1)] = 4
    instructions: str = DEFAULT_INSTRUCTIONS

    _owner = "reranker/openai"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.threshold > 1.0:
            raise ConfigError(f"{self._owner}: threshold is a probability (0-1), got "
                              f"{self.threshold}")
        if self.min_k > self.max_k:
            raise ConfigError(f"{self._owner}: min_k ({self.min_k}) must not exceed max_k "
                              f"({self.max_k})")
        self._checked = False

    # -- lifecycle ----------------------------------------------------------------------
    def warm_up(self) -> None:
        """Check the server answers and returns logprobs for this model (one tiny
        text-only request); raises :class:`~ragnest.errors.ModelServerError` saying what
        to change when it does not."""
        if self._checked:
            return
        chat = self._connect()
        body = self._judge_body([{"role": "system", "content": self.instructions},
                                 {"role": "user", "content": _PROBE}])
        try:
            reply = chat.post("/chat/completions", body)
        except ModelServerError as err:
            if err.status == 400 and "logprob" in str(err).lower():
                raise self._no_logprobs(f"refuses logprobs ({err})") from err
            raise
        top = first_token_logprobs(reply)
        if top is None:
            raise self._no_logprobs("answered without logprobs")
        if not any(_word(token) in ("yes", "no") for token, _ in top):
            raise ModelServerError(
                f"{chat.where} starts its answer to a yes/no question with {top[0][0]!r}, and "
                f"neither yes nor no is among its top {len(top)} first tokens; a thinking "
                "model? turn thinking off through extra_body (Ollama: {reasoning_effort: "
                "none}; vLLM: {chat_template_kwargs: {enable_thinking: false}}), or adjust "
                "instructions", server=chat.base_url, model=chat.model)
        self._checked = True

    def close(self) -> None:
        """Close the connection pool and the documents kept open for rendering."""
        self._release()
        self._checked = False

    def _no_logprobs(self, what: str) -> ModelServerError:
        chat = self._connect()
        return ModelServerError(
            f"{chat.where} {what}; reranker/openai scores by the logprobs of a yes/no answer: "
            "use a model and server that return them (vLLM; Ollama >= 0.12.11; OpenAI "
            f"non-reasoning models), or lower top_logprobs ({self.top_logprobs}) to the "
            "server's limit (vLLM --max-logprobs, default 20)",
            server=chat.base_url, model=chat.model)

    # -- reranking ----------------------------------------------------------------------
    def rerank(self, query: Query, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        """Score every hit, then keep the adaptive cut (best first, at most ``top_k``);
        ``[]`` when no candidate clears the threshold."""
        hits = list(hits)
        if not hits:
            return []
        self.warm_up()
        workers = min(self.concurrency, len(hits))
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                judged = list(pool.map(lambda h: self._judge(query, h), hits))
        else:
            judged = [self._judge(query, h) for h in hits]
        scores = [logit for logit, _ in judged]
        calibrated = all(ok for _, ok in judged)
        max_k = min(self.max_k, top_k or self.max_k)
        return apply_cutoff(
            hits, scores, probabilities=[sigmoid(s) for s in scores] if calibrated else None,
            threshold=self.threshold, min_k=min(self.min_k, max_k), max_k=max_k)

    def _judge(self, query: Query, hit: Hit) -> tuple[float, bool]:
        chat = self._connect()
        tokens = self.image_tokens
        for attempt in (1, 2):
            body = self._judge_body([
                {"role": "system", "content": self.instructions},
                {"role": "user", "content": self._content(query, hit, tokens)}])
            try:
                reply = chat.post("/chat/completions", body)
                break
            except RequestTooLargeError as err:
                if attempt == 2 or tokens < 2:
                    halved = ", half the configured ones" if attempt == 2 else ""
                    raise RequestTooLargeError(
                        f"{err} (at {tokens} image tokens{halved}; lower image_tokens or "
                        "max_text_chars)", server=err.server, model=err.model,
                        status=err.status) from err
                tokens //= 2
                logger.warning("%s: request too large for %s; retrying at %d image tokens",
                               self._owner, _name(hit.chunk), tokens)
        top = first_token_logprobs(reply)
        if top is None:
            raise self._no_logprobs("answered without logprobs")
        return relevance(top)

    def _judge_body(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return self._body(messages=messages, max_tokens=1, temperature=0.0, logprobs=True,
                          top_logprobs=self.top_logprobs)

    def _content(self, query: Query, hit: Hit, tokens: int) -> list[dict[str, Any]]:
        chunk = hit.chunk
        # an image query's own picture is sent when a slot is left for the document
        # (or when the query has no text to judge by)
        query_image = query.image is not None and self.max_images >= (2 if query.text else 1)
        slots = self.max_images - (1 if query_image else 0)
        parts = chunk_parts(chunk, max_images=slots, region=True, prefer=self.read)
        refs = [p for p in parts if isinstance(p, ImageRef)]
        per_image = max(1, tokens // max(1, len(refs) + (1 if query_image else 0)))
        content: list[dict[str, Any]] = [{"type": "text", "text": f"Document: {_name(chunk)}"}]
        for part in parts:
            if isinstance(part, ImageRef):
                url = self._image_url(part, per_image, chunk)
                if url is not None:
                    content.append(image_part(url, self.detail))
                    continue
                if any(isinstance(p, str) for p in parts):
                    continue  # its text is read anyway
                part = chunk_text(chunk)  # the image cannot be had: read the text instead
            text = part[: self.max_text_chars].strip()
            if text:
                content.append({"type": "text", "text": text})
        if query_image and query.image is not None:
            url = self._image_url(query.image, per_image, None)
            if url is not None:
                content += [{"type": "text", "text": "Query image:"}, image_part(url, self.detail)]
        ask = f"Query: {query.text}\n" if query.text else ""
        content.append({"type": "text", "text": f"{ask}Is this document relevant to the "
                        'query? Answer "yes" or "no".'})
        return content

    def _image_url(self, ref: ImageRef, tokens: int, chunk: Chunk | None) -> str | None:
        try:
            return self._image(ref, tokens).data_url()
        except ParseError as err:
            where = _name(chunk) if chunk is not None else "query image"
            logger.warning("%s: %s: cannot render its image (%s)", self._owner, where, err)
            return None


def _name(chunk: Chunk) -> str:
    name = Path(chunk.source).name if chunk.source else chunk.document_id
    return f"{name}, page {chunk.page}" if chunk.page else name
