"""reranker/openai against loopback servers that behave like vLLM and like Ollama."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from ragnest.errors import ModelServerError, ModelServerUnavailableError, RequestTooLargeError
from ragnest.parsers.pdf import PdfParser
from ragnest.protocols import Reranker
from ragnest.rerankers.openai import OpenAIReranker, relevance
from ragnest.testing import check_component_contract
from ragnest.types import Hit, Query, Source
from tests._openai_server import FakeServer, user_texts

HANDBOOK = Path(__file__).resolve().parents[2] / "examples" / "docs" / "nimbus3_handbook.pdf"
QUERY = Query(text="How often should I descale the machine?")


@pytest.fixture(scope="module")
def pages():
    return list(PdfParser().parse(Source.from_path(HANDBOOK)))


@pytest.fixture(scope="module")
def sections():
    return list(PdfParser(chunking="interleaved").parse(Source.from_path(HANDBOOK)))


def hits_of(chunks):
    return [Hit(chunk=c, score=1.0 - 0.05 * i, scores_by_stage={"dense-fine": 0.5})
            for i, c in enumerate(chunks)]


def by_page(probs, default=0.1):
    """A relevance rule: the page named in the request's 'Document:' header."""
    def rule(body):
        header = [t for t in user_texts(body) if t.startswith("Document:")]
        if not header:  # warm_up's probe
            return 0.9
        return probs.get(int(header[0].rsplit("page ", 1)[1]), default)
    return rule


def reranker(server, **kw):
    kw.setdefault("retries", 2)
    kw.setdefault("backoff", 0.01)
    return OpenAIReranker(base_url=server.url, model=server.model, **kw)


def test_contract_and_cheap_init():
    r = check_component_contract(OpenAIReranker, {"base_url": "http://127.0.0.1:9/v1",
                                                  "model": "x"}, role="reranker")
    assert isinstance(r, Reranker) and r._chat is None  # no client, no network yet


def test_logprob_scores_and_threshold_cut_vllm(pages):
    with FakeServer("vllm", relevance=by_page({5: 0.95, 4: 0.7, 6: 0.3})) as server:
        r = reranker(server, image_tokens=512)
        kept = r.rerank(QUERY, hits_of(pages))
    assert [h.chunk.page for h in kept] == [5, 4]
    top = kept[0].scores_by_stage
    assert top["rerank_probability"] == pytest.approx(0.95, abs=1e-6)
    assert top["rerank"] == pytest.approx(2.944, abs=1e-3) and top["dense-fine"] == 0.5
    assert kept[0].score == top["rerank"]
    chats = server.chat_requests()
    probe, judged = chats[0], chats[1:]
    assert probe["logprobs"] is True and probe["max_tokens"] == 1
    assert len(judged) == len(pages)
    for body in judged:
        assert body["max_tokens"] == 1 and body["temperature"] == 0.0
        assert body["logprobs"] is True and body["top_logprobs"] == 20
        assert "detail" not in str(body)
    # one image per request (vLLM's default limit), exact patch multiples within budget
    for sizes in server.images[1:]:
        (w, h), = sizes
        assert w % 28 == 0 and h % 28 == 0 and (w // 28) * (h // 28) <= 512
        assert (w // 28) * (h // 28) > 400  # the budget is used, not wasted
    assert all(b["messages"][1]["content"][1]["image_url"]["url"].startswith(
        "data:image/jpeg;base64,") for b in judged)


def test_nothing_above_threshold_keeps_nothing(pages):
    with FakeServer("vllm", relevance=lambda body: 0.2) as server:
        assert reranker(server).rerank(QUERY, hits_of(pages[:3])) == []


def test_top_k_and_max_k_bound_the_cut(pages):
    with FakeServer("vllm", relevance=lambda body: 0.9) as server:
        r = reranker(server, max_k=3)
        assert len(r.rerank(QUERY, hits_of(pages))) == 3
        assert len(r.rerank(QUERY, hits_of(pages), top_k=2)) == 2
        assert r.rerank(QUERY, []) == []


def test_ollama_quirks_data_urls_no_detail_explicit_temperature(pages):
    with FakeServer("ollama", relevance=by_page({5: 0.9})) as server:
        r = reranker(server, image_format="webp", image_quality=70, read="both")
        kept = r.rerank(QUERY, hits_of(pages[3:6]))
    assert [h.chunk.page for h in kept] == [5]
    for body in server.chat_requests()[1:]:
        assert body["temperature"] == 0.0  # Ollama would sample at 1.0 otherwise
        image = body["messages"][1]["content"][1]["image_url"]
        assert set(image) == {"url"} and image["url"].startswith("data:image/webp;base64,")
        assert any("Descal" in t or "descal" in t or len(t) > 200 for t in user_texts(body))


def test_detail_is_sent_only_when_configured(pages):
    with FakeServer("vllm", relevance=lambda body: 0.9) as server:
        reranker(server, detail="low").rerank(QUERY, hits_of(pages[:1]))
    assert server.chat_requests()[1]["messages"][1]["content"][1]["image_url"]["detail"] == "low"


def test_uncalibrated_when_a_side_is_missing_uses_the_largest_gap(pages):
    probs = {5: 0.95, 4: 0.9, 6: 0.85, 3: 0.3, 2: 0.25}
    with FakeServer("vllm", logprobs="yes-only", relevance=by_page(probs, 0.2)) as server:
        kept = reranker(server, max_k=8).rerank(QUERY, hits_of(pages))
    assert [h.chunk.page for h in kept] == [5, 4, 6]
    assert all("rerank_probability" not in h.scores_by_stage for h in kept)
    assert kept[0].scores_by_stage["rerank"] > kept[-1].scores_by_stage["rerank"]


def test_relevance_bounds_a_missing_side():
    import math
    yes_only = [("yes", math.log(0.9)), ("The", math.log(0.05))]
    logit, calibrated = relevance(yes_only)
    assert not calibrated and logit == pytest.approx(math.log(0.9) - math.log(0.05))
    assert relevance([("no", -0.05)])[0] < 0 < relevance([("Yes", -0.05)])[0]
    assert relevance([("\u0120yes", -0.1), ("\u2581No", -2.4)]) == (pytest.approx(2.3), True)


@pytest.mark.parametrize("mode, words", [
    ("refuse", "refuses logprobs.*logprobs is not supported"),
    ("drop", "answered without logprobs"),
])
def test_servers_that_refuse_logprobs_fail_at_warm_up(mode, words):
    with FakeServer("ollama", logprobs=mode) as server:
        r = reranker(server)
        with pytest.raises(ModelServerError, match=words) as err:
            r.warm_up()
    text = str(err.value)
    assert server.url in text and "'fake-vl'" in text and "Ollama >= 0.12.11" in text


def test_top_logprobs_over_the_server_limit_fails_at_warm_up():
    with FakeServer("vllm") as server:
        with pytest.raises(ModelServerError, match=r"greater than max allowed: 20.*"
                           r"lower top_logprobs \(25\).*--max-logprobs"):
            reranker(server, top_logprobs=25).warm_up()


def test_a_server_that_is_down_fails_within_a_bounded_time(pages):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    r = OpenAIReranker(base_url=url, model="m", retries=1, backoff=0.05, connect_timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(ModelServerUnavailableError, match="reranker/openai.*cannot be reached"):
        r.rerank(QUERY, hits_of(pages[:2]))
    assert time.monotonic() - t0 < 5


def test_rate_limit_and_5xx_are_retried(pages):
    with FakeServer("vllm", fail=[429, 503, 429], relevance=lambda body: 0.9) as server:
        kept = reranker(server, concurrency=1, retries=3).rerank(QUERY, hits_of(pages[:2]))
    assert len(kept) == 2 and len(server.requests) == 3 + 1 + 2


def test_context_length_retries_once_at_half_the_image_tokens(pages):
    with FakeServer("vllm", context_tokens=500, relevance=lambda body: 0.9) as server:
        kept = reranker(server, image_tokens=768, concurrency=1).rerank(QUERY, hits_of(pages[:1]))
    assert len(kept) == 1
    first, second = server.images[1], server.images[2]
    assert (first[0][0] // 28) * (first[0][1] // 28) > 500  # refused
    assert (second[0][0] // 28) * (second[0][1] // 28) <= 384  # half the tokens


def test_too_large_even_at_half_is_a_clear_error(pages):
    with FakeServer("vllm", context_tokens=10, too_large_status=413) as server:
        with pytest.raises(RequestTooLargeError, match=r"413.*at 384 image tokens, half the "
                           "configured ones; lower image_tokens"):
            reranker(server, image_tokens=768).rerank(QUERY, hits_of(pages[:1]))


def test_interleaved_chunks_send_at_most_max_images(sections):
    chunk = next(c for c in sections if sum(s.kind == "image" for s in c.segments) >= 1)
    with FakeServer("vllm", relevance=lambda body: 0.9) as server:
        reranker(server, max_images=1).rerank(QUERY, hits_of([chunk]))
    assert len(server.images[-1]) == 1


def test_an_image_limit_below_max_images_names_the_setting(sections):
    query = Query(text="the pump", image=sections[0].image)
    with FakeServer("vllm", relevance=lambda body: 0.9) as server:
        with pytest.raises(ModelServerError, match=r"at most 1 image\(s\).*set max_images: 1"):
            reranker(server, max_images=2).rerank(query, hits_of(sections[:1]))


def test_text_only_reading_sends_no_image(pages):
    with FakeServer("vllm", relevance=lambda body: 0.9) as server:
        reranker(server, read="text").rerank(QUERY, hits_of(pages[4:5]))
    assert server.images[-1] == []
    assert any("descal" in t.lower() for t in user_texts(server.chat_requests()[-1]))


def test_bad_settings_are_config_errors():
    from ragnest.errors import ConfigError

    with pytest.raises(ConfigError, match="threshold"):
        OpenAIReranker(threshold=2.0)
    with pytest.raises(ConfigError, match="min_k"):
        OpenAIReranker(min_k=5, max_k=2)
    with pytest.raises(ConfigError, match="base_url"):
        OpenAIReranker(base_url="localhost:8000")
    with pytest.raises(ConfigError, match="read"):
        OpenAIReranker(read="pixels")  # type: ignore[arg-type]


def test_a_thinking_model_is_caught_at_warm_up_and_extra_body_fixes_it(pages):
    with FakeServer("ollama", logprobs="think", relevance=by_page({5: 0.9})) as server:
        with pytest.raises(ModelServerError, match=r"'<think>'.*reasoning_effort: none"):
            reranker(server).warm_up()
        r = reranker(server, extra_body={"reasoning_effort": "none", "model": "ignored"})
        assert [h.chunk.page for h in r.rerank(QUERY, hits_of(pages[3:6]))] == [5]
    body = server.chat_requests()[-1]
    assert body["reasoning_effort"] == "none" and body["model"] == "fake-vl"  # ours win
