"""End to end on tiny random-weight models: examples/docs ingested with a tiny ColQwen2
ladder, reranked by a tiny Qwen3-VL reranker, answered by a tiny Qwen2-VL generator --
through the Python API (``Pipeline.query``, ``Pipeline.stream``) and ``ragnest query``.

Tiny models prove plumbing: the generator is biased towards the label token ``[P1]``
(``sequence_bias``, a generation parameter in the YAML) so that its answer cites; the
citations must then carry document, page, chunk id and the chunk's region."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from typer.testing import CliRunner  # noqa: E402

from ragnest import Pipeline  # noqa: E402
from ragnest.cli import app  # noqa: E402
from ragnest.generators.evidence import NOT_FOUND  # noqa: E402
from ragnest.testing.tiny_models import build_colqwen2  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"

PIPELINE = """
version: 1
name: tiny-vlm
components:
  pdf: {{type: parser/pdf, params: {{ocr: never, dpi: 48, chunking: interleaved}}}}
  pages:
    type: embedder/colqwen2
    params:
      model: {colqwen2}
      batch_size: 8
      device: cpu
      ladder:
        - {{name: coarse, dim: 32, vectors: 1, index: hnsw}}
        - {{name: fine, dim: 128, vectors: all, datatype: float16}}
  store: {{type: store/qdrant, params: {{path: {store}, collection: pages}}}}
  rerank:
    type: reranker/vlm
    params: {{model: {reranker}, preset: qwen3-vl, threshold: {threshold}, min_k: 1, max_k: 3,
              max_pixels: 50176, batch_size: 4, with_text: true, max_text_chars: 200,
              device: cpu}}
  answer:
    type: generator/vlm
    params:
      model: {generator}
      device: cpu
      compression: [{{type: resolution, budget: 400, floor: 64}}, {{type: dedupe}}]
      generation: {{max_new_tokens: 6, min_new_tokens: 6, sequence_bias: [[[{label}], 50.0]]}}
pipeline:
  parsers: [pdf]
  embedders: [pages]
  store: store
  reranker: rerank
  generator: answer
  retrieval: {{k: 3, candidates: 10, rerank_k: 6}}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_vlm):
    import transformers

    base = tmp_path_factory.mktemp("vlm-pipe")
    colqwen2 = build_colqwen2(base / "colqwen2")
    generator = tiny_vlm("qwen2_vl")
    label = transformers.AutoTokenizer.from_pretrained(generator).convert_tokens_to_ids("[P1]")
    docs = base / "docs"
    docs.mkdir()
    (docs / "handbook.pdf").write_bytes((EXAMPLES / "nimbus3_handbook.pdf").read_bytes())

    def write(name: str, threshold: float) -> Path:
        path = base / name
        path.write_text(PIPELINE.format(colqwen2=colqwen2, store=base / "store",
                                        reranker=tiny_vlm("qwen3_vl"), generator=generator,
                                        threshold=threshold, label=label))
        return path

    yaml_path = write("tiny-vlm.yaml", 0.0)  # every probability clears 0: max_k pages read
    with Pipeline.from_yaml(yaml_path) as rag:
        report = rag.ingest([docs], progress=False)
    assert report.chunks_added > 8  # interleaved: several regions a page
    return write, yaml_path


def test_query_and_stream_answer_with_page_and_region_citations(setup) -> None:
    _, yaml_path = setup
    question = "How often should I descale the machine?"
    with Pipeline.from_yaml(yaml_path) as rag:
        answer = rag.query(question, explain=True)
        deltas = list(rag.stream(question))
    assert answer.found and answer.text.startswith("[P1]")
    assert len(answer.hits) == 3
    assert all("rerank" in h.scores_by_stage and "pages-fine" in h.scores_by_stage
               for h in answer.hits)
    probs = [h.scores_by_stage["rerank_probability"] for h in answer.hits]
    assert probs == sorted(probs, reverse=True)
    (cite,) = answer.citations
    top = answer.hits[0].chunk
    assert cite.chunk_id == top.id and cite.page == top.page and Path(cite.source).name == \
        "handbook.pdf"
    assert cite.bbox is not None and cite.bbox == top.bbox  # the region the chunk covers
    usage = answer.usage
    assert 0 < usage["visual_tokens"] <= 400 and usage["completion_tokens"] >= 6
    allotted = [p["budget"] for p in usage["pages"]]  # regions differ in size: each uses
    assert allotted == sorted(allotted, reverse=True)  # at most its allotment, and a lower
    assert sum(allotted) <= 400                        # rank is never allotted more
    assert all(p["visual_tokens"] <= p["budget"] for p in usage["pages"])
    assert {"embed", "search", "rerank", "generate"} <= set(answer.timings)

    final = deltas[-1]
    assert final.done and final.answer is not None
    assert "".join(d.text for d in deltas) == final.answer.text == answer.text
    assert [c.chunk_id for c in final.answer.citations] == [cite.chunk_id]


def test_nothing_above_the_threshold_means_not_found(setup) -> None:
    write, _ = setup
    strict = write("strict.yaml", 1.0)  # no probability reaches 1
    with Pipeline.from_yaml(strict) as rag:
        answer = rag.query("How often should I descale the machine?")
    assert not answer.found and answer.text == NOT_FOUND
    assert answer.hits == () and answer.citations == ()


def test_ragnest_query_answers_with_citations(setup) -> None:
    _, yaml_path = setup
    result = CliRunner().invoke(app, ["query", "How often should I descale?", "--pipeline",
                                      str(yaml_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["found"] and data["answer"].startswith("[P1]")
    (cite,) = data["citations"]
    assert cite["page"] >= 1 and len(cite["bbox"]) == 4
    assert Path(cite["source"]).name == "handbook.pdf"
