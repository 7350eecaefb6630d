"""The vision-language reranker on tiny random-weight models (Qwen2-VL, Qwen2.5-VL, Qwen3-VL,
Idefics3) and real PDF pages.

Tiny models prove plumbing, never quality: the assertions are about what reaches the model
(prompts, answer token ids, image sizes, visual tokens, mm_token_type_ids), that one batched
forward pass gives the scores of one-by-one passes, that the order follows a deliberately
biased head, and that the cut-off keeps exactly what its rules say.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from ragnest import registry
from ragnest.errors import ConfigError, RerankError
from ragnest.protocols import Reranker
from ragnest.rerankers.presets import PRESETS
from ragnest.rerankers.vlm import VlmReranker
from ragnest.testing.contracts import check_component_contract
from ragnest.types import Chunk, Hit, Query, Source

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "docs"
QUERY = Query(text="How often should I descale the machine?")


@pytest.fixture(scope="module")
def pages() -> list[Chunk]:
    from ragnest.parsers.pdf import PdfParser

    return list(PdfParser(ocr="never").parse(Source.from_path(EXAMPLES / "nimbus3_handbook.pdf")))


@pytest.fixture(scope="module")
def hits(pages: list[Chunk]) -> list[Hit]:
    return [Hit(chunk=c, score=1.0 - i / 10, scores_by_stage={"dense": 1.0 - i / 10})
            for i, c in enumerate(pages)]


_RERANKERS: dict[tuple, VlmReranker] = {}


def _reranker(tiny_vlm, family: str, **kw) -> VlmReranker:
    key = (family, tuple(sorted(kw.items())))
    if key not in _RERANKERS:
        params = {"max_pixels": 48 * 28 * 28, "batch_size": 3, "device": "cpu", "max_k": 8,
                  "min_k": 0, **kw}
        r = VlmReranker(model=tiny_vlm(family), **params)
        r.warm_up()
        _RERANKERS[key] = r
    return _RERANKERS[key]


# -- no model ---------------------------------------------------------------------------
def test_contract_cheap_init_and_registry() -> None:
    r = check_component_contract(VlmReranker, {"model": "/nonexistent/model"}, role="reranker")
    assert r._vlm is None and isinstance(r, Reranker)
    import pickle

    assert pickle.loads(pickle.dumps(r)) == r
    built = registry.create("reranker/vlm", {"model": "/nonexistent", "preset": "monoqwen"})
    assert registry.type_name_of(built) == "reranker/vlm" and built.is_calibrated


def test_parameters_are_checked_without_loading() -> None:
    with pytest.raises(ConfigError, match="did you mean 'qwen3-vl'"):
        registry.create("reranker/vlm", {"model": "m", "preset": "qwen3vl"})
    with pytest.raises(ConfigError, match="min_k"):
        VlmReranker(model="m", min_k=6, max_k=5)
    with pytest.raises(ConfigError, match="threshold"):
        VlmReranker(model="m", threshold=1.5)
    VlmReranker(model="m", preset="generic", threshold=3.0)  # uncalibrated: no probability
    with pytest.raises(ConfigError, match="max_pixels"):
        VlmReranker(model="m", max_pixels=10)
    with pytest.raises(ConfigError, match="device"):
        VlmReranker(model="m", device="tpu")


def test_presets_follow_the_published_prompts() -> None:
    mono = PRESETS["monoqwen"].parts("descaling", [None])
    assert mono[0] is None and "answer True or False. The query is: descaling" in mono[1]
    q3 = PRESETS["qwen3-vl"].parts("descaling", [None, "page text"], query_image=False)
    assert q3[:3] == ["<Instruct>: Given a search query, retrieve relevant candidates that "
                      "answer the query.", "<Query>:", "descaling"]
    assert q3[3:] == ["\n<Document>:", "page text", None]  # text, then images
    assert PRESETS["qwen3-vl"].system and '"yes" or "no"' in PRESETS["qwen3-vl"].system
    assert PRESETS["generic"].parts("q", [None])[-1].endswith("Answer yes or no.")
    assert [p.calibrated for p in PRESETS.values()] == [True, True, False]


# -- tiny models ------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "idefics3"])
def test_inputs_tokens_and_batched_scores(tiny_vlm, pages, family) -> None:
    r = _reranker(tiny_vlm, family, with_text=True, max_text_chars=120)
    vlm = r.vlm
    tok = vlm.tokenizer
    # AutoProcessor where it loads (Idefics3); the Qwen processors need torchvision for their
    # video half, so their inputs are assembled from the tokenizer and image processor here
    assert (vlm.processor is not None) == (family == "idefics3")
    yes, no = r.answer_ids
    assert tok.convert_ids_to_tokens([yes, no]) in (["yes", "no"], ["Ġyes", "Ġno"])
    prompts, images = r.inputs(QUERY, pages[:3])
    unit = vlm.layout.unit
    for im in images:  # sized by ragnest within the budget, in whole cells: no resize later
        assert im.size[0] % unit == 0 and im.size[1] % unit == 0
        assert im.size[0] * im.size[1] <= max(r.max_pixels, unit * unit)
    batch = vlm.encode(prompts, images)
    assert vlm.visual_tokens(batch) == [vlm.layout.tokens(*im.size) for im in images]
    if family.startswith("qwen"):
        mm = batch["mm_token_type_ids"]
        assert mm.shape == batch["input_ids"].shape
        assert (mm == 1).sum().item() == sum(vlm.visual_tokens(batch))
        assert (batch["attention_mask"][:, -1] == 1).all()  # left padding
    assert all("How often should I descale the machine?" in p for p in prompts)
    assert all(pages[i].text[:40] in prompts[i] for i in range(3))

    batched = r.score(QUERY, pages[:5])  # batches of 3 and 2
    alone = [r.score(QUERY, [c])[0] for c in pages[:5]]
    assert all(math.isfinite(s) for s in batched)
    assert batched == pytest.approx(alone, abs=1e-4)


def test_order_follows_a_biased_head(tiny_vlm, pages, hits) -> None:
    """With lm_head[yes] = lm_head[no] + c * h_k / |h_k| (h_k: the normed last state of
    candidate k), candidate k scores c * |h_k| and every other one less (Cauchy-Schwarz)."""
    import torch

    r = _reranker(tiny_vlm, "qwen2_vl")
    model = r.vlm.model
    yes, no = r.answer_ids
    head = model.get_output_embeddings()
    seen: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda m, args, out: seen.append(args[0][:, -1].detach()))
    try:
        r.score(QUERY, [h.chunk for h in hits])
    finally:
        hook.remove()
    states = torch.cat(seen)  # one row per candidate, in order
    saved = head.weight.detach().clone()
    try:
        for k in (5, 2):
            with torch.no_grad():
                head.weight[yes] = head.weight[no] + 5.0 * states[k] / states[k].norm()
            kept = r.rerank(QUERY, hits)
            assert kept[0].chunk.id == hits[k].chunk.id
            assert kept[0].scores_by_stage["rerank"] == max(h.scores_by_stage["rerank"]
                                                            for h in kept)
            assert kept[0].scores_by_stage["dense"] == hits[k].scores_by_stage["dense"]
    finally:
        with torch.no_grad():
            head.weight.copy_(saved)


def test_cutoff_drops_candidates_below_the_threshold(tiny_vlm, hits) -> None:
    r = _reranker(tiny_vlm, "qwen2_vl")
    probs = [1 / (1 + math.exp(-s)) for s in r.score(QUERY, [h.chunk for h in hits])]
    ranked = sorted(probs, reverse=True)
    threshold = (ranked[2] + ranked[3]) / 2  # three clear it
    cut = VlmReranker(**{**_params(r), "threshold": threshold, "min_k": 1, "max_k": 8})
    cut._vlm, cut._ids = r._vlm, r._ids  # same loaded model, other cut-off
    kept = cut.rerank(QUERY, hits)
    assert len(kept) == 3
    assert all(h.scores_by_stage["rerank_probability"] >= threshold for h in kept)
    assert sorted(h.scores_by_stage["rerank_probability"] for h in kept) == sorted(ranked[:3])
    assert len(cut.rerank(QUERY, hits, top_k=2)) == 2  # clamped to the query's k
    nothing = VlmReranker(**{**_params(r), "threshold": min(1.0, ranked[0] + 1e-3), "min_k": 2})
    nothing._vlm, nothing._ids = r._vlm, r._ids
    assert nothing.rerank(QUERY, hits) == []  # none clears it: the answer will say not found
    lenient = VlmReranker(**{**_params(r), "threshold": 0.0, "min_k": 0, "max_k": 4})
    lenient._vlm, lenient._ids = r._vlm, r._ids
    assert len(lenient.rerank(QUERY, hits)) == 4  # all clear it: max_k


def test_uncalibrated_presets_cut_at_the_largest_gap(tiny_vlm, hits) -> None:
    r = _reranker(tiny_vlm, "qwen2_vl", preset="generic")
    assert not r.is_calibrated
    scores = sorted(r.score(QUERY, [h.chunk for h in hits]), reverse=True)
    gaps = [a - b for a, b in zip(scores, scores[1:])]
    expected = min(8, max(gaps.index(max(gaps)) + 1, 1))
    kept = r.rerank(QUERY, hits)
    assert len(kept) == expected
    assert all("rerank_probability" not in h.scores_by_stage for h in kept)


def test_region_chunks_are_read_as_their_rendered_region(tiny_vlm) -> None:
    from ragnest.parsers.pdf import PdfParser

    parser = PdfParser(ocr="never", chunking="interleaved")
    chunks = list(parser.parse(Source.from_path(EXAMPLES / "nimbus3_handbook.pdf")))[:4]
    r = _reranker(tiny_vlm, "qwen3_vl")
    prompts, images = r.inputs(QUERY, chunks)
    with_image = [c for c in chunks if c.image is not None]
    assert len(images) == len(with_image) >= 1
    kept = r.rerank(QUERY, [Hit(chunk=c, score=0.0) for c in chunks])
    assert {h.chunk.id for h in kept} <= {c.id for c in chunks}


def test_image_queries_take_an_image_slot(tiny_vlm, pages, tmp_path) -> None:
    from PIL import Image

    from ragnest.types import ImageRef

    crop = tmp_path / "crop.png"
    Image.new("RGB", (90, 60), (200, 30, 30)).save(crop)
    q = Query(text="this figure", image=ImageRef(blob=str(crop)))
    r = _reranker(tiny_vlm, "qwen2_vl")
    image = r._render([q.image], ["query"])[0]
    prompts, images = r.inputs(q, pages[:2], query_image=image)
    assert len(images) == 4 and all(p.count("<|vision_start|>") == 2 for p in prompts)
    assert len(r.score(q, pages[:2])) == 2
    mono = _reranker(tiny_vlm, "qwen2_vl", preset="monoqwen")
    with pytest.raises(RerankError, match="needs query text"):
        mono.score(Query(image=ImageRef(blob=str(crop))), pages[:1])


# -- bad input --------------------------------------------------------------------------
def test_answers_that_are_not_single_tokens_are_refused(tiny_vlm) -> None:
    r = VlmReranker(model=tiny_vlm("qwen2_vl"), preset="monoqwen", yes_token="Absolutely",
                    device="cpu")
    with pytest.raises(ConfigError, match="single-token answers"):
        r.warm_up()


def test_a_model_without_a_chat_template_is_refused(tiny_vlm, tmp_path) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(tiny_vlm("qwen2_vl"), bare)
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    config = bare / "tokenizer_config.json"
    import json

    data = json.loads(config.read_text())
    data.pop("chat_template", None)
    config.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="no chat template"):
        VlmReranker(model=str(bare), device="cpu").warm_up()


def test_a_template_kept_beside_the_processor_is_found(tiny_vlm, tmp_path) -> None:
    """Qwen checkpoints keep their chat template for the processor (chat_template.json);
    where only the tokenizer loads (no torchvision), it is read from there."""
    import json

    moved = tmp_path / "moved"
    shutil.copytree(tiny_vlm("qwen2_vl"), moved)
    jinja = moved / "chat_template.jinja"
    config = moved / "tokenizer_config.json"
    data = json.loads(config.read_text())
    template = data.pop("chat_template", None) or jinja.read_text()
    jinja.unlink(missing_ok=True)
    config.write_text(json.dumps(data))
    (moved / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    r = VlmReranker(model=str(moved), device="cpu")
    r.warm_up()
    assert "<|im_start|>assistant" in r.vlm.prompt(["hello"])


def test_a_model_that_is_not_a_vlm_is_refused(tmp_path) -> None:
    pytest.importorskip("transformers")
    from ragnest.testing.tiny_models import build_clip

    path = build_clip(tmp_path / "clip")
    with pytest.raises((RerankError, ConfigError), match="reranker/vlm"):
        VlmReranker(model=str(path), device="cpu").warm_up()
    with pytest.raises(RerankError, match="cannot load"):
        VlmReranker(model=str(tmp_path / "missing"), device="cpu").warm_up()


def _params(r: VlmReranker) -> dict:
    import dataclasses

    return {f.name: getattr(r, f.name) for f in dataclasses.fields(r)}
