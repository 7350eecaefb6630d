"""ExtractiveGenerator with the real WordLlama embedder (offline, the lite ladder): the
dense scoring path on pages of examples/docs, and natural questions on the R manuals end
to end through ``Pipeline.query`` on a small store (skipped when r-doc-pdf is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ragnest import Pipeline, Query, Source
from ragnest.generators.extractive import NOT_FOUND, ExtractiveGenerator
from ragnest.types import Hit
from tests._natural_questions import R_MANUALS, load_questions

REPO = Path(__file__).resolve().parents[2]
HANDBOOK = REPO / "examples" / "docs" / "nimbus3_handbook.pdf"


@pytest.fixture(scope="module")
def wordllama():
    pytest.importorskip("wordllama")
    from ragnest.embedders.wordllama import WordLlamaEmbedder

    lite = yaml.safe_load((REPO / "pipelines" / "lite.yaml").read_text())
    emb = WordLlamaEmbedder(ladder=lite["components"]["dense"]["params"]["ladder"])
    emb.warm_up()
    return emb


@pytest.fixture(scope="module")
def handbook() -> dict[int, Hit]:
    from ragnest.parsers.pdf import PdfParser

    return {c.page: Hit(chunk=c, score=1.0) for c in PdfParser().parse(Source.from_path(HANDBOOK))}


def _lite(emb) -> ExtractiveGenerator:
    gen = ExtractiveGenerator(embedder="dense", name_pages=True)
    gen.bind_embedder(emb)
    return gen


@pytest.mark.parametrize("question, order, page, words", [
    ("How long do I hold the buttons to start descaling?", [3, 5, 4, 6, 2], 5, "5 seconds"),
    ("What does the ring light flashing orange mean?", [3, 5, 4, 6, 2], 5, "descaling is due"),
    ("What should I do if my espresso shot runs too fast?", [5, 4, 3, 6, 2], 4, "grind finer"),
])
def test_dense_path_quotes_the_answering_page(wordllama, handbook, question, order, page, words):
    hits = [handbook[p] for p in order]
    answer = _lite(wordllama).generate(Query(text=question), hits)
    assert answer.found and answer.usage["evidence_kind"] == "dense"
    assert answer.usage["evidence"] >= 0.68
    assert answer.citations[0].page == page and words in answer.text
    assert answer.text.endswith(f"(quoted from page {page} of nimbus3_handbook.pdf)")
    assert answer.citations[0].bbox is not None  # the region of the quoted sentence


def test_dense_path_reads_past_a_hit_without_text(wordllama, handbook):
    from ragnest.types import Chunk, ImageRef

    figure = Hit(chunk=Chunk(id="fig", document_id="d", kind="image", text="", page=3,
                             source=str(HANDBOOK), image=ImageRef(source=str(HANDBOOK), page=3)),
                 score=1.0)
    answer = _lite(wordllama).generate(Query(text="How long do I hold the buttons to start descaling?"),
                                       [figure, handbook[5], handbook[4]])
    assert answer.found and answer.citations[0].page == 5 and "5 seconds" in answer.text
    assert answer.usage["evidence_kind"] == "dense"


def test_dense_path_abstains_on_a_question_the_pages_cannot_answer(wordllama, handbook):
    hits = [handbook[p] for p in (5, 8, 6, 1, 3)]
    answer = _lite(wordllama).generate(Query(text="What is the orbital period of Neptune's moon Triton?"),
                                       hits)
    assert not answer.found and answer.text == NOT_FOUND
    assert answer.usage["evidence_kind"] == "dense" and answer.usage["evidence"] < 0.68


# ------------------------------------------------------------------ end to end, R manuals
SMALL = ("R-FAQ.pdf", "R-data.pdf")
CITED = ["nq046", "nq059", "nq062", "nq063", "nq064"]  # one per topic, gold page cited today


@pytest.fixture(scope="module")
def r_store(tmp_path_factory):
    if not all((R_MANUALS / name).exists() for name in SMALL):
        pytest.skip("R manuals not installed (apt-get install r-doc-pdf)")
    store = tmp_path_factory.mktemp("r-store")
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}) as rag:
        rag.ingest([R_MANUALS / name for name in SMALL], progress=False)
        yield rag


def _questions(ids=None):
    qs = [q for q in load_questions() if q["gold"] and q["gold"][0]["file"] in SMALL]
    return [q for q in qs if ids is None or q["id"] in ids]


@pytest.mark.parametrize("q", _questions(CITED), ids=lambda q: q["id"])
def test_natural_questions_cite_their_gold_page(r_store, q):
    answer = r_store.query(q["question"])
    gold = {(g["file"], g["page"]) for g in q["gold"]}
    first = answer.citations[0] if answer.citations else None
    assert answer.found and first is not None, answer.text
    assert (Path(first.source).name, first.page) in gold, answer.text
    assert answer.text.endswith(f"(quoted from page {first.page} of {Path(first.source).name})")
    assert answer.usage["evidence_kind"] == "dense"


def test_no_abstention_when_retrieval_ranked_the_gold_page_first(r_store):
    ranked_first = 0
    for q in _questions():
        answer = r_store.query(q["question"])
        gold = {(g["file"], g["page"]) for g in q["gold"]}
        top = answer.hits[0].chunk if answer.hits else None
        if top is not None and (Path(top.source).name, top.page) in gold:
            ranked_first += 1
            assert answer.found, (q["id"], answer.usage)
    assert ranked_first >= 8


def test_unanswerable_questions_abstain(r_store):
    for text in ("What is the orbital period of Neptune's moon Triton?",
                 "Which vaccinations do I need before travelling to Kenya?"):
        answer = r_store.query(text)
        assert not answer.found and answer.text == NOT_FOUND, answer.text
