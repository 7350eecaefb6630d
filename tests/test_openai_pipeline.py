"""pipelines/openai.yaml end to end: the lite retrieval profile, then reranker/openai and
generator/openai on a loopback vLLM-like server, from Python and from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragnest import Pipeline
from ragnest.cli import app
from ragnest.config import load_config
from ragnest.generators.evidence import NOT_FOUND
from ragnest.generators.openai import OpenAIGenerator
from ragnest.rerankers.openai import OpenAIReranker
from tests._openai_server import FakeServer, user_texts

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = ROOT / "pipelines" / "openai.yaml"


def test_validate_passes_on_the_shipped_openai_pipeline():
    result = CliRunner().invoke(app, ["validate", str(PIPELINE)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def test_environment_configures_server_model_and_key_variable():
    cfg = load_config(PIPELINE, env={"RAGNEST_OPENAI_BASE_URL": "http://gpu-box:8000/v1",
                                     "RAGNEST_OPENAI_MODEL": "Qwen/Qwen2.5-VL-7B-Instruct",
                                     "RAGNEST_OPENAI_KEY_ENV": "VLLM_KEY",
                                     "RAGNEST_OPENAI_MAX_IMAGES": "4"})
    gen = cfg.components[cfg.generator].params
    rr = cfg.components[cfg.reranker].params
    assert gen["base_url"] == rr["base_url"] == "http://gpu-box:8000/v1"
    assert gen["model"] == "Qwen/Qwen2.5-VL-7B-Instruct" and gen["api_key_env"] == "VLLM_KEY"
    assert gen["max_images"] == 4
    defaults = load_config(PIPELINE, env={})
    assert defaults.components["answer"].params["base_url"] == "http://localhost:11434/v1"


def relevance(body):
    """The handbook's descaling page is what answers the descaling question."""
    texts = user_texts(body)
    header = next((t for t in texts if t.startswith("Document:")), "")
    asks = " ".join(t for t in texts if "Query:" in t).lower()
    if not header:
        return 0.9  # warm_up's probe
    return 0.95 if "descale" in asks and header.endswith("nimbus3_handbook.pdf, page 5") else 0.1


@pytest.fixture(scope="module")
def rag(tmp_path_factory):
    store = tmp_path_factory.mktemp("openai-pipeline")
    with FakeServer("vllm", relevance=relevance, piece=5) as server:
        env = {"RAGNEST_STORE": str(store), "RAGNEST_OPENAI_BASE_URL": server.url,
               "RAGNEST_OPENAI_MODEL": server.model}
        with Pipeline.from_yaml(PIPELINE, env=env) as pipe:
            assert isinstance(pipe.reranker, OpenAIReranker)
            assert isinstance(pipe.generator, OpenAIGenerator)
            report = pipe.ingest([ROOT / "examples" / "docs"], progress=False)
            assert report.files == 3 and not report.skipped
            pipe.warm_up()  # the reranker checks the server returns logprobs
            yield pipe, server


def test_query_answers_with_page_and_region_citations(rag):
    pipe, server = rag
    answer = pipe.query("How often should I descale the machine?")
    assert answer.found and "every 8 weeks" in answer.text and "[P1]" in answer.text
    assert [h.chunk.page for h in answer.hits] == [5]  # the reranker's cut
    assert answer.hits[0].scores_by_stage["rerank_probability"] == pytest.approx(0.95)
    cite, = answer.citations
    assert cite.page == 5 and Path(cite.source).name == "nimbus3_handbook.pdf"
    assert cite.bbox is not None and cite.bbox != answer.hits[0].chunk.bbox  # a region
    assert answer.usage["visual_tokens"] > 0 and answer.usage["pages"][0]["label"] == "P1"
    assert {"search", "rerank", "generate", "images", "model"} <= set(answer.timings)
    rerank_bodies = [b for b in server.chat_requests() if b.get("logprobs")]
    assert len(rerank_bodies) >= 10  # rerank_k candidates were judged


def test_stream_answers_and_cites(rag):
    pipe, _ = rag
    deltas = list(pipe.stream("How often should I descale the machine?"))
    answer = deltas[-1].answer
    assert deltas[-1].done and answer is not None and answer.found
    assert "".join(d.text for d in deltas) == answer.text and len(deltas) > 3
    assert answer.citations[0].page == 5 and answer.citations[0].bbox is not None
    assert [c for d in deltas for c in d.citations] == list(answer.citations)


def test_nothing_relevant_means_not_found(rag):
    pipe, server = rag
    before = len(server.chat_requests())
    answer = pipe.query("What colour is the sky on Mars?")
    assert answer.found is False and answer.text == NOT_FOUND and answer.hits == ()
    generated = [b for b in server.chat_requests()[before:] if not b.get("logprobs")]
    assert generated == []  # nothing kept, nothing to read: no generation request


# -- the command line: `ragnest ingest` then `ragnest query`, as a user runs them ----------
QUESTION = "How often should I descale the machine?"


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """A store ingested by `ragnest ingest --pipeline pipelines/openai.yaml`, and the
    environment pointing the pipeline at a loopback vLLM-like server."""
    store = tmp_path_factory.mktemp("openai-cli") / "store"
    with FakeServer("vllm", relevance=relevance, piece=4) as server:
        env = {"RAGNEST_OPENAI_BASE_URL": server.url, "RAGNEST_OPENAI_MODEL": server.model}

        def ragnest(*args: str):
            return CliRunner().invoke(app, [*args, "--pipeline", str(PIPELINE),
                                            "--store", str(store)], env=env)

        result = ragnest("ingest", str(ROOT / "examples" / "docs"), "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["files"] == 3 and report["skipped"] == []
        yield ragnest, server


def test_cli_query_streams_the_answer_then_cites_page_and_region(cli, monkeypatch):
    ragnest, server = cli
    deltas = []
    stream = Pipeline.stream

    def recorded(self, *args, **kwargs):
        for delta in stream(self, *args, **kwargs):
            deltas.append(delta)
            yield delta

    monkeypatch.setattr(Pipeline, "stream", recorded)
    before = len(server.chat_requests())
    result = ragnest("query", QUESTION)
    assert result.exit_code == 0, result.output
    generated = [b for b in server.chat_requests()[before:] if not b.get("logprobs")]
    assert len(generated) == 1 and generated[0]["stream"] is True  # over SSE
    answer = deltas[-1].answer
    assert deltas[-1].done and answer.found and len(deltas) > 5  # really streamed
    assert "".join(d.text for d in deltas) == answer.text
    printed, cited = result.stdout.split("cited pages:")
    assert printed == f"answer: {answer.text}\n"  # each delta printed as it came
    assert printed.startswith("answer: Descale the machine every 8 weeks [P1].")
    assert "[P7]" not in printed  # a label naming no page is dropped
    cite, = answer.citations
    region = ", ".join(str(round(v)) for v in cite.bbox)
    line = f"[P1] {cite.source}, page 5, region ({region})"
    assert "".join(cited.split()).startswith("".join(line.split()))  # however rich wraps it
    assert Path(cite.source).name == "nimbus3_handbook.pdf"
    assert "top hits" in cited and "nimbus3_handbook.pdf" in cited


def test_cli_query_json_has_citations_usage_per_page_and_rerank_timing(cli):
    ragnest, _ = cli
    result = ragnest("query", QUESTION, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["found"] and "every 8 weeks" in data["answer"] and "[P1]" in data["answer"]
    assert [h["page"] for h in data["hits"]] == [5]  # the reranker's cut
    assert data["hits"][0]["scores_by_stage"]["rerank_probability"] == pytest.approx(0.95)
    cite, = data["citations"]
    assert cite["tag"] == "P1" and cite["page"] == 5
    assert Path(cite["source"]).name == "nimbus3_handbook.pdf"
    assert len(cite["bbox"]) == 4 and cite["bbox"] != data["hits"][0]["bbox"]  # a region
    usage = data["usage"]
    page, = usage["pages"]
    assert page["label"] == "P1" and page["chunk_id"] == cite["chunk_id"]
    assert page["visual_tokens"] > 0 and page["width"] and page["height"]
    assert usage["visual_tokens"] == page["visual_tokens"] <= usage["visual_budget"]
    assert usage["prompt_tokens"] > usage["visual_tokens"] and usage["completion_tokens"] > 0
    assert {"search", "rerank", "generate", "images", "model"} <= set(data["timings"])
    assert all(v >= 0 for v in data["timings"].values())
