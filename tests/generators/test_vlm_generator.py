"""The vision-language generator on tiny random-weight models and real PDF pages.

Tiny models prove plumbing, never quality: what reaches the model (labels, image sizes,
visual tokens per page against the budget), streaming (deltas join to the answer,
``min_new_tokens`` honoured), citations made by a deliberately biased generation
(``sequence_bias`` on a label token), grounding boxes read back as PDF regions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ragnest import registry
from ragnest.errors import ConfigError
from ragnest.generators import vlm as vlm_module
from ragnest.generators.evidence import NOT_FOUND
from ragnest.generators.vlm import VlmGenerator
from ragnest.protocols import StreamingGenerator
from ragnest.testing.contracts import check_component_contract
from ragnest.types import Chunk, Hit, Query, Source

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "docs"
QUERY = Query(text="How often should I descale the machine?")


def _chunks(chunking: str = "page") -> list[Chunk]:
    from ragnest.parsers.pdf import PdfParser

    parser = PdfParser(ocr="never", chunking=chunking)  # type: ignore[arg-type]
    return list(parser.parse(Source.from_path(EXAMPLES / "nimbus3_handbook.pdf")))


@pytest.fixture(scope="module")
def pages() -> list[Chunk]:
    return _chunks("page")


@pytest.fixture(scope="module")
def ranked(pages) -> list[Hit]:
    """Hits as a reranker leaves them: probabilities falling with rank."""
    probs = [0.95, 0.9, 0.7, 0.62, 0.55, 0.52]
    return [Hit(chunk=c, score=p, scores_by_stage={"rerank": p, "rerank_probability": p})
            for c, p in zip(pages, probs)]


_GENS: dict[tuple, VlmGenerator] = {}


def _gen(tiny_vlm, family: str, **kw) -> VlmGenerator:
    key = (family, repr(sorted(kw.items())))
    if key not in _GENS:
        params = {"device": "cpu", "generation": {"max_new_tokens": 8, "min_new_tokens": 6}, **kw}
        g = VlmGenerator(model=tiny_vlm(family), **params)
        if _GENS:  # share the loaded model of the family (components own one each)
            same = next((v for (f, _), v in _GENS.items() if f == family), None)
            if same is not None:
                g._vlm = same._vlm
        g.warm_up()
        _GENS[key] = g
    return _GENS[key]


def _token(g: VlmGenerator, token: str) -> int:
    return g.vlm.tokenizer.convert_tokens_to_ids(token)


# -- no model ---------------------------------------------------------------------------
def test_contract_cheap_init_and_registry() -> None:
    g = check_component_contract(VlmGenerator, {"model": "/nonexistent/model"}, role="generator")
    assert g._vlm is None and isinstance(g, StreamingGenerator)
    assert [p.name for p in g._plugins] == ["resolution"]  # fastv is off by default
    import pickle

    again = pickle.loads(pickle.dumps(g))
    assert again == g and again._vlm is None
    built = registry.create("generator/vlm", {"model": "/nonexistent", "compression": [
        {"type": "resolution", "budget": 1024, "floor": 128}, {"type": "dedupe"}]})
    assert registry.type_name_of(built) == "generator/vlm"


def test_parameters_are_checked_without_loading() -> None:
    with pytest.raises(ConfigError, match="did you mean 'max_new_tokens'"):
        VlmGenerator(model="m", generation={"max_tokens": 10})
    with pytest.raises(ConfigError, match="exceeds max_new_tokens"):
        VlmGenerator(model="m", generation={"max_new_tokens": 4, "min_new_tokens": 8})
    with pytest.raises(ConfigError, match="did you mean 'resolution'"):
        VlmGenerator(model="m", compression=[{"type": "resolutoin"}])
    with pytest.raises(ConfigError, match="max_pages"):
        registry.create("generator/vlm", {"model": "m", "max_pages": 0})


def test_no_hits_means_not_found() -> None:
    g = VlmGenerator(model="/nonexistent")  # never loaded: nothing to read
    answer = g.generate(QUERY, [])
    assert answer.text == NOT_FOUND and not answer.found and not answer.citations
    deltas = list(g.stream(QUERY, []))
    assert len(deltas) == 1 and deltas[0].done and deltas[0].text == NOT_FOUND


# -- the budget ---------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["qwen2_vl", "qwen3_vl", "idefics3"])
def test_budget_by_rank_and_under_the_total(tiny_vlm, ranked, family) -> None:
    budget, floor = 700, 96
    g = _gen(tiny_vlm, family, compression=[{"type": "resolution", "budget": budget,
                                              "floor": floor, "cap": 400}])
    prep = g.prepare(QUERY, ranked)
    layout = g.vlm.layout
    pages = prep.usage["pages"]
    tokens = [p["visual_tokens"] for p in pages]
    assert 1 <= len(pages) <= budget // floor
    assert sum(tokens) <= budget and prep.usage["visual_tokens"] == sum(tokens)
    assert tokens == sorted(tokens, reverse=True)  # a lower-ranked page gets no more
    allotted = [p["budget"] for p in pages]
    assert allotted == sorted(allotted, reverse=True) and sum(allotted) <= budget
    assert all(t <= a for t, a in zip(tokens, allotted)) and min(allotted) >= floor
    assert g.vlm.visual_tokens(prep.batch) == [sum(tokens)]  # what the model reads
    for im in prep.images:  # ragnest's size; the processor does not resize again
        assert im.size[0] % layout.unit == 0 and im.size[1] % layout.unit == 0
    labels = [p["label"] for p in pages]
    assert labels == [f"P{i + 1}" for i in range(len(pages))]
    assert all(f"[{label}] nimbus3_handbook.pdf p. " in prep.prompt for label in labels)
    assert [p["chunk_id"] for p in pages] == [h.chunk.id for h in ranked[: len(pages)]]
    step = prep.usage["compression"][0]
    assert step["plugin"] == "resolution" and step["visual_tokens_after"] == sum(tokens)


def test_visual_tokens_follow_the_budget(tiny_vlm, ranked) -> None:
    per_page = []
    for budget in (256, 768, 1800):
        g = _gen(tiny_vlm, "qwen2_vl", render_max_pixels=2_000_000, compression=[
            {"type": "resolution", "budget": budget, "floor": 64, "cap": budget}])
        prep = g.prepare(QUERY, ranked[:1])
        per_page.append(prep.usage["pages"][0]["visual_tokens"])
        assert per_page[-1] <= budget
    assert per_page[0] < per_page[1] < per_page[2]


def test_without_plugins_pages_go_at_the_processors_default_size(tiny_vlm, ranked) -> None:
    g = _gen(tiny_vlm, "qwen2_vl", compression=[])
    prep = g.prepare(QUERY, ranked[:2])
    ip = g.vlm.loaded.image_processor
    for im in prep.images:  # the size the image processor itself would have chosen
        grid = ip(images=[im.source], return_tensors="pt")["image_grid_thw"][0]
        assert int(grid.prod()) // ip.merge_size ** 2 == g.vlm.layout.tokens(*im.size)
    assert prep.usage["visual_tokens"] == prep.usage["visual_tokens_before"]


def test_dedupe_reports_fewer_tokens(tiny_vlm, ranked) -> None:
    g = _gen(tiny_vlm, "qwen2_vl", compression=[{"type": "resolution", "budget": 900,
                                                 "floor": 64}, {"type": "dedupe"}])
    prep = g.prepare(QUERY, ranked[:3])
    res, dedupe = prep.usage["compression"]
    assert dedupe["plugin"] == "dedupe"
    assert dedupe["visual_tokens_after"] < dedupe["visual_tokens_before"]
    assert dedupe["visual_tokens_before"] == res["visual_tokens_after"]
    assert g.vlm.visual_tokens(prep.batch) == [dedupe["visual_tokens_after"]]


# -- answering ----------------------------------------------------------------------------
def test_streams_cites_and_honours_min_new_tokens(tiny_vlm, pages) -> None:
    hits = [Hit(chunk=c, score=1.0) for c in _chunks("interleaved")[:3]]
    base = _gen(tiny_vlm, "qwen2_vl")
    p2 = _token(base, "[P2]")
    g = _gen(tiny_vlm, "qwen2_vl", generation={"max_new_tokens": 10, "min_new_tokens": 10,
                                               "sequence_bias": [[[p2], 50.0]]})
    deltas = list(g.stream(QUERY, hits))
    answer = deltas[-1].answer
    assert deltas[-1].done and answer is not None and not any(d.done for d in deltas[:-1])
    assert "".join(d.text for d in deltas) == answer.text
    assert answer.found and answer.text.startswith("[P2]")
    assert answer.usage["completion_tokens"] >= 10
    assert answer.usage["prompt_tokens"] > answer.usage["visual_tokens"] > 0
    (cite,) = answer.citations
    assert cite.chunk_id == hits[1].chunk.id and cite.page == hits[1].chunk.page
    assert cite.bbox == hits[1].chunk.bbox and cite.bbox is not None  # the chunk's region
    assert sum(len(d.citations) for d in deltas) == 1
    assert set(answer.timings) == {"prepare", "generate"}

    quiet = _gen(tiny_vlm, "qwen2_vl", generation={"max_new_tokens": 4, "min_new_tokens": 4})
    short = quiet.generate(QUERY, hits)
    assert short.usage["completion_tokens"] >= 4


def test_unknown_labels_are_dropped(tiny_vlm, ranked) -> None:
    base = _gen(tiny_vlm, "idefics3")
    p9 = _token(base, "[P9]")
    g = _gen(tiny_vlm, "idefics3", generation={"max_new_tokens": 5, "min_new_tokens": 5,
                                               "sequence_bias": [[[p9], 50.0]]})
    answer = g.generate(QUERY, ranked[:2])
    assert "[P9]" not in answer.text and not answer.citations


def test_an_abstaining_model_means_not_found(tiny_vlm, ranked, monkeypatch) -> None:
    g = _gen(tiny_vlm, "qwen2_vl")

    class Canned:
        prompt_tokens, completion_tokens = 10, 7

        def __iter__(self):
            yield from ["The pages", " do not contain", " this."]

    monkeypatch.setattr(vlm_module, "generate_stream", lambda *a, **k: Canned())
    answer = g.generate(QUERY, ranked[:2])
    assert answer.text == NOT_FOUND and not answer.found and not answer.citations


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_grounding_boxes_become_snapped_pdf_regions(tiny_vlm, ranked, family) -> None:
    """Qwen2-VL writes 0..1000 boxes in special tokens, Qwen2.5-VL JSON boxes in pixels of
    the image it saw: both come back as the text-layer region they point at (PDF points)."""
    g = _gen(tiny_vlm, family, compression=[{"type": "resolution", "budget": 600, "floor": 64}])
    prep = g.prepare(QUERY, ranked[:2])
    chunk = ranked[1].chunk
    target = max((s for s in chunk.segments if s.bbox), key=lambda s: len(s.text)).bbox
    x0, y0, x1, y1 = chunk.bbox
    fx = [(target[0] - x0) / (x1 - x0), (target[2] - x0) / (x1 - x0)]
    fy = [(target[1] - y0) / (y1 - y0), (target[3] - y0) / (y1 - y0)]
    if family == "qwen2_vl":
        box = [round(1000 * v) for v in (fx[0], fy[0], fx[1], fy[1])]
        raw = f"Descale [P2]<|box_start|>({box[0]},{box[1]}),({box[2]},{box[3]})<|box_end|>."
    else:
        w, h = prep.images[1].size
        box = [round(fx[0] * w), round(fy[0] * h), round(fx[1] * w), round(fy[1] * h)]
        raw = f'Descale [P2] {{"bbox_2d": {box}, "label": "descaling"}}.'
    assert g._regions(raw, prep) == {"P2": target}
    assert g._regions("Descale [P1].", prep) == {}


def test_a_stream_left_early_stops_generating(tiny_vlm, ranked) -> None:
    import time

    g = _gen(tiny_vlm, "qwen2_vl", generation={"max_new_tokens": 400, "min_new_tokens": 400})
    stream = g.stream(QUERY, ranked[:1])
    first = next(stream)
    assert first.text and not first.done
    t0 = time.perf_counter()
    stream.close()  # the reader went away: generate stops at its next token (400 take ~3 s)
    assert time.perf_counter() - t0 < 1.0
    assert g._lock.acquire(timeout=1)  # released: the next request can run
    g._lock.release()
