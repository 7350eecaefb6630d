"""generator/openai against loopback servers that behave like vLLM and like Ollama."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from ragnest.errors import ConfigError, ModelServerUnavailableError, RequestTooLargeError
from ragnest.generators.evidence import NOT_FOUND
from ragnest.generators.openai import OpenAIGenerator
from ragnest.parsers.pdf import PdfParser
from ragnest.protocols import StreamingGenerator
from ragnest.testing import check_component_contract
from ragnest.types import Hit, Query, Source
from tests._openai_server import FakeServer, Script, user_texts

HANDBOOK = Path(__file__).resolve().parents[2] / "examples" / "docs" / "nimbus3_handbook.pdf"
QUERY = Query(text="How often should I descale the machine?")


@pytest.fixture(scope="module")
def pages():
    chunks = list(PdfParser().parse(Source.from_path(HANDBOOK)))
    return {c.page: c for c in chunks}


def ranked(pages, order=(5, 4, 6), probs=(0.95, 0.7, 0.55)):
    """Hits as a reranker leaves them: best first, with rerank probabilities."""
    return [Hit(chunk=pages[p], score=2.0 - i, scores_by_stage={"rerank": 2.0 - i,
                                                                "rerank_probability": q})
            for i, (p, q) in enumerate(zip(order, probs))]


def generator(server, **kw):
    kw.setdefault("backoff", 0.01)
    return OpenAIGenerator(base_url=server.url, model=server.model, **kw)


def grid(size, unit=28):
    w, h = size
    assert w % unit == 0 and h % unit == 0, size
    return (w // unit) * (h // unit)


def test_contract_and_no_hits_is_not_found_without_a_request():
    gen = check_component_contract(OpenAIGenerator, {"base_url": "http://127.0.0.1:9/v1"},
                                   role="generator")
    assert isinstance(gen, StreamingGenerator)
    answer = gen.generate(QUERY, [])
    assert answer.found is False and answer.text == NOT_FOUND
    deltas = list(gen.stream(QUERY, []))
    assert deltas[-1].done and deltas[-1].answer.found is False
    assert "".join(d.text for d in deltas) == NOT_FOUND


def test_vllm_answer_cites_page_and_region_within_the_visual_budget(pages):
    with FakeServer("vllm") as server:
        answer = generator(server, visual_tokens=2000, max_page_tokens=1024).generate(
            QUERY, ranked(pages))
    assert answer.found and answer.text.startswith("Descale the machine every 8 weeks [P1].")
    assert "[P7]" not in answer.text  # a label naming no page is dropped
    cite, = answer.citations
    assert cite.page == 5 and cite.chunk_id == pages[5].id and "nimbus3" in cite.source
    page_box = pages[5].bbox
    x0, y0, x1, y1 = cite.bbox
    assert (x1 - x0) * (y1 - y0) < 0.5 * (page_box[2] - page_box[0]) * (page_box[3] - page_box[1])
    seg = next(s for s in pages[5].segments if "every 8 weeks" in s.text)
    assert cite.bbox == seg.bbox  # the block the quoted sentence comes from
    body = server.chat_requests()[-1]
    assert body["temperature"] == 0.0 and body["max_tokens"] == 512 and "stream" not in body
    # vLLM takes one image per prompt: P1 as an image, P2 and P3 by their text
    sizes, = server.images[-1:]
    assert len(sizes) == 1 and grid(sizes[0]) <= 1024
    texts = user_texts(body)
    assert texts[0].startswith("[P1] nimbus3_handbook.pdf p. 5") and any(
        t.startswith("[P3] nimbus3_handbook.pdf p. 6") for t in texts)
    usage = answer.usage
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["visual_tokens"] == grid(sizes[0]) and usage["images"] == 1
    assert usage["pages"] == [
        {"label": "P1", "chunk_id": pages[5].id, "visual_tokens": grid(sizes[0]),
         "width": sizes[0][0], "height": sizes[0][1]},
        {"label": "P2", "chunk_id": pages[4].id, "visual_tokens": 0, "width": None, "height": None},
        {"label": "P3", "chunk_id": pages[6].id, "visual_tokens": 0, "width": None, "height": None},
    ]  # every page shown; P2 and P3 as text only


def test_budget_split_by_rerank_score_with_a_floor_ollama(pages):
    with FakeServer("ollama") as server:
        gen = generator(server, max_images=4, visual_tokens=1500, min_page_tokens=300,
                        max_page_tokens=1024, image_format="webp")
        answer = gen.generate(QUERY, ranked(pages, (5, 4, 6, 3, 2), (0.9, 0.6, 0.5, 0.5, 0.4)))
    sizes = server.images[-1]
    tokens = [grid(s) for s in sizes]
    assert len(tokens) == 4 and sum(tokens) <= 1500  # 4 pages fit the 300-token floor
    assert all(t >= 250 for t in tokens) and tokens == sorted(tokens, reverse=True)
    assert [p["visual_tokens"] for p in answer.usage["pages"]] == tokens + [0]  # P5: no room
    assert answer.usage["visual_budget"] == 1500 and answer.usage["images"] == 4
    body = server.chat_requests()[-1]
    images = [p for p in body["messages"][1]["content"] if p["type"] == "image_url"]
    assert all(set(p["image_url"]) == {"url"} for p in images)  # no detail for Ollama
    assert all(p["image_url"]["url"].startswith("data:image/webp;base64,") for p in images)
    assert body["temperature"] == 0.0  # always sent: Ollama samples at 1.0 otherwise
    assert "(sampled)" not in answer.text


def test_stream_over_sse_with_usage_and_citations_vllm(pages):
    with FakeServer("vllm", piece=3) as server:
        gen = generator(server)
        deltas = list(gen.stream(QUERY, ranked(pages)))
    final = deltas[-1]
    assert final.done and final.text == "" and all(not d.done for d in deltas[:-1])
    answer = final.answer
    assert "".join(d.text for d in deltas) == answer.text
    assert len(deltas) > 5  # really streamed, tags split across chunks are reassembled
    assert "[P1]" in answer.text and "[P7]" not in answer.text and not answer.text[0].isspace()
    assert [c for d in deltas for c in d.citations] == list(answer.citations)
    assert answer.citations[0].page == 5 and answer.citations[0].bbox is not None
    body = server.chat_requests()[-1]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert answer.usage["completion_tokens"] == len(
        [p for p in range(0, len(server.answer(body)), 3)])
    assert answer.usage["prompt_tokens"] > answer.usage["visual_tokens"] > 0


def test_stream_without_usage_chunk_ollama(pages):
    with FakeServer("ollama", piece=5) as server:
        deltas = list(generator(server, include_usage=False).stream(QUERY, ranked(pages)))
    answer = deltas[-1].answer
    assert "stream_options" not in server.chat_requests()[-1]
    assert "prompt_tokens" not in answer.usage and answer.usage["visual_tokens"] > 0
    assert "".join(d.text for d in deltas) == answer.text and answer.found


@pytest.mark.parametrize("flavor", ["vllm", "ollama"])
def test_an_abstaining_model_is_not_found(pages, flavor):
    question = Query(text="Is this unanswerable from the manual?")
    with FakeServer(flavor) as server:
        gen = generator(server)
        answer = gen.generate(question, ranked(pages))
        deltas = list(gen.stream(question, ranked(pages)))
    assert answer.found is False and answer.text == NOT_FOUND and answer.citations == ()
    assert answer.usage["visual_tokens"] > 0
    assert deltas[-1].answer.found is False
    assert "".join(d.text for d in deltas) == deltas[-1].answer.text == NOT_FOUND


def test_streamed_text_is_the_generated_text_cleaned_alike(pages):
    """Unknown tags dropped, tags normalised, whitespace tidied as parse_citations does,
    by generate and by stream (pieces of one character); nothing streams before the
    first citation."""
    raw = "\n  Descale  every 8 weeks [ P1 ] , [P9] then rinse [P2] .\nDone [P"
    with FakeServer("vllm", piece=1, answer=lambda body: raw) as server:
        gen = generator(server)
        answer = gen.generate(QUERY, ranked(pages))
        deltas = list(gen.stream(QUERY, ranked(pages)))
    assert answer.text == "Descale every 8 weeks [P1], then rinse [P2].\nDone [P"
    assert "".join(d.text for d in deltas) == deltas[-1].answer.text == answer.text
    assert deltas[0].text == "Descale every 8 weeks [P1]" and deltas[0].citations
    assert [c for d in deltas for c in d.citations] == list(answer.citations)
    assert [c.page for c in answer.citations] == [5, 4]


@pytest.mark.parametrize("stream", [False, True])
def test_context_length_then_success_at_half_the_visual_budget(pages, stream):
    with FakeServer("vllm", context_tokens=700) as server:
        gen = generator(server, visual_tokens=1024, max_page_tokens=1024)
        if stream:
            answer = list(gen.stream(QUERY, ranked(pages)))[-1].answer
        else:
            answer = gen.generate(QUERY, ranked(pages))
    refused, accepted = server.images[-2], server.images[-1]
    assert grid(refused[0]) > 700 and grid(accepted[0]) <= 512
    assert answer.found and answer.usage["visual_budget"] == 512
    assert answer.usage["visual_tokens"] == grid(accepted[0])


def test_an_image_too_large_for_the_server_is_a_clear_error(pages):
    with FakeServer("vllm", context_tokens=50, too_large_status=413) as server:
        with pytest.raises(RequestTooLargeError, match=r"answered 413.*visual budget of 1280 "
                           r"tokens, half the configured one; lower visual_tokens") as err:
            generator(server).generate(QUERY, ranked(pages))
    assert server.url in str(err.value) and "'fake-vl'" in str(err.value)
    assert len(server.chat_requests()) == 2


def test_rate_limited_then_served(pages):
    with FakeServer("vllm", fail=[429, 429]) as server:
        deltas = list(generator(server).stream(QUERY, ranked(pages)))
    assert deltas[-1].answer.found and len(server.chat_requests()) == 3


def test_a_server_that_is_down_fails_within_a_bounded_time(pages):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    gen = OpenAIGenerator(base_url=url, model="m", retries=1, backoff=0.05, connect_timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(ModelServerUnavailableError, match=r"generator/openai \(server "
                       r"http://127.0.0.1:\d+/v1, model 'm'\) cannot be reached"):
        list(gen.stream(QUERY, ranked(pages)))
    assert time.monotonic() - t0 < 5


def test_an_unknown_model_says_so(pages):
    with FakeServer("ollama") as server:
        gen = OpenAIGenerator(base_url=server.url, model="qwen-typo")
        with pytest.raises(Exception, match=r"not found, try pulling it.*ollama pull"):
            gen.generate(QUERY, ranked(pages))


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="min_page_tokens"):
        OpenAIGenerator(min_page_tokens=2000, max_page_tokens=1000)
    with pytest.raises(ConfigError, match="image_format"):
        OpenAIGenerator(image_format="gif")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="timeout"):
        OpenAIGenerator(timeout=0)
    with pytest.raises(ConfigError, match="model"):
        OpenAIGenerator(model="")


def test_a_query_image_comes_out_of_the_same_budget(pages):
    from ragnest.types import ImageRef

    question = Query(text="Which part is shown here?", image=ImageRef(source=str(HANDBOOK), page=2))
    with FakeServer("ollama") as server:
        answer = generator(server, max_images=2, visual_tokens=2000).generate(
            question, ranked(pages))
    q_size, p1_size = server.images[-1]
    assert grid(q_size) <= 500 and grid(q_size) + grid(p1_size) <= 2000
    assert answer.usage["visual_tokens"] == grid(q_size) + grid(p1_size)
    assert answer.usage["images"] == 2 and answer.usage["pages"][0]["visual_tokens"] == grid(p1_size)


def test_components_pickle_as_settings(pages):
    import pickle

    with FakeServer("vllm") as server:
        gen = generator(server, max_images=1)
        gen.generate(QUERY, ranked(pages))  # holds a client and a renderer now
        copy = pickle.loads(pickle.dumps(gen))
        assert copy == gen and copy._chat is None
        assert copy.generate(QUERY, ranked(pages)).found


def test_a_refused_key_fails_at_warm_up_naming_the_variable(monkeypatch):
    monkeypatch.setenv("RAGNEST_TEST_KEY", "sk-wrong")
    with Script([(401, {}, {"error": {"message": "Incorrect API key provided"}})]) as server:
        gen = OpenAIGenerator(base_url=server.url, model="gpt-4o", api_key_env="RAGNEST_TEST_KEY")
        with pytest.raises(Exception, match=r"401: Incorrect API key.*RAGNEST_TEST_KEY"):
            gen.warm_up()
    assert server.seen[0][3]["Authorization"] == "Bearer sk-wrong"
