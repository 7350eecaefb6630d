"""ExtractiveGenerator: the calibrated abstention rule, the rank prior, the dense scoring
path (with a deterministic word-vector embedder), continuations and the page named in
the answer. The real WordLlama path is in test_extractive_dense.py."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from ragnest.collection import bind_embedder
from ragnest.errors import ConfigError
from ragnest.generators._scoring import dense_scores
from ragnest.generators._text import _STOPWORDS, join_continuations, split_sentences, words
from ragnest.generators.extractive import NOT_FOUND, ExtractiveGenerator
from ragnest.protocols import EmbedderAware, Generator
from ragnest.types import Chunk, Hit, Query, VectorSpec

SYNONYMS = {"reservoir": "tank", "volume": "capacity", "litres": "liters"}


def _vector(word: str, dim: int = 64) -> np.ndarray:
    word = SYNONYMS.get(word, word)
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


class WordVectors:
    """A deterministic stand-in for a text embedder: one random unit vector per content
    word (synonyms share theirs); ``coarse`` is the mean, ``mid`` one row per distinct
    word with equal weights (rows sum to one, as WordLlama's query rows do)."""

    def __init__(self) -> None:
        self.calls = 0

    def warm_up(self) -> None: ...

    def close(self) -> None: ...

    def vector_specs(self) -> list[VectorSpec]:
        return []

    def identity(self) -> dict[str, Any]:
        return {"model": "word-vectors"}

    def embed_documents(self, chunks: Sequence[Chunk]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def embed_query(self, query: Query) -> dict[str, Any] | None:
        return self.embed_queries([query])[0]

    def embed_queries(self, queries: Sequence[Query]) -> list[dict[str, Any] | None]:
        self.calls += 1
        out: list[dict[str, Any] | None] = []
        for q in queries:
            toks = list(dict.fromkeys(w for w in words(q.text or "") if w not in _STOPWORDS))
            rows = np.stack([_vector(t) for t in toks]) if toks else np.zeros((1, 64), np.float32)
            mean = rows.mean(axis=0)
            out.append({"coarse": mean / max(float(np.linalg.norm(mean)), 1e-9),
                        "mid": rows / len(rows)})
        return out


def _hit(page: int, text: str, source: str = "/docs/manual.pdf") -> Hit:
    return Hit(chunk=Chunk(id=f"c{page}", document_id="doc", kind="page", text=text,
                           page=page, source=source), score=1.0)


def _dense(**params: Any) -> ExtractiveGenerator:
    gen = ExtractiveGenerator(embedder="words", **params)
    gen.bind_embedder(WordVectors())
    return gen


# --------------------------------------------------------------------------- plumbing
def test_embedder_aware_contract() -> None:
    gen = ExtractiveGenerator(embedder="dense", name_pages=True)
    assert isinstance(gen, EmbedderAware) and isinstance(gen, Generator)
    assert gen.uses_embedder == "dense" and ExtractiveGenerator().uses_embedder is None
    emb = WordVectors()
    gen.bind_embedder(emb)
    assert type(gen)(**dataclasses.asdict(gen)) == gen  # the bound embedder is no field
    assert bind_embedder(gen, {"dense": emb}) is gen
    with pytest.raises(ConfigError, match="asks for embedder 'dense'.*embedders: bm25"):
        bind_embedder(gen, {"bm25": emb})
    gen.close()  # forgets it; a pipeline binds it again before answering
    answer = gen.generate(Query(text="tank capacity"), [_hit(1, "The tank capacity is 2 litres.")])
    assert answer.usage["evidence_kind"] == "lexical" and emb.calls == 0
    for bad in ({"min_support": 1.5}, {"rank_prior": -1.0}, {"follow_ratio": 2.0}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            ExtractiveGenerator(**bad)


def test_a_pipeline_binds_the_embedder_its_generator_asks_for(tmp_path) -> None:
    from ragnest import Pipeline
    from ragnest.embedders.bm25 import Bm25Embedder
    from ragnest.parsers.text import TextParser
    from ragnest.stores import QdrantStore

    parts = {"parsers": [TextParser()], "store": QdrantStore(path=str(tmp_path / "s"))}
    with pytest.raises(ConfigError, match="asks for embedder 'dense'"):
        Pipeline(embedders={"bm25": Bm25Embedder()}, generator=ExtractiveGenerator(embedder="dense"),
                 **parts)
    emb = WordVectors()
    gen = ExtractiveGenerator(embedder="words")
    rag = Pipeline(embedders={"bm25": Bm25Embedder(), "words": emb}, generator=gen, **parts)
    assert gen._embedder is emb
    rag.close()
    assert gen._embedder is None  # closed with the pipeline; bound again on the next query
    hits = [_hit(1, "The tank capacity is 2 litres.")]
    answer = rag.answer("What is the reservoir volume?", hits)
    assert answer.found and answer.usage["evidence_kind"] == "dense" and emb.calls == 1


# --------------------------------------------------------------------------- dense path
def test_dense_scores_are_maxsim_with_idf_weighted_tokens() -> None:
    emb = WordVectors()
    scores = dense_scores(emb, "alpha beta", ["alpha gamma.", "alpha.", "delta epsilon."],
                          [0, 1, 1], 2)
    assert scores is not None
    np.testing.assert_allclose(scores.weights, [0.5, 0.5])
    cos = float(_vector("beta") @ _vector("gamma"))
    best_beta_b = max(float(_vector("beta") @ _vector(w)) for w in ("alpha", "delta", "epsilon"))
    assert scores.support[0, 0] == pytest.approx(1.0)
    assert scores.page_support(0) == pytest.approx(0.5 + 0.5 * max(cos, float(_vector("beta") @ _vector("alpha"))))
    assert scores.page_support(1) == pytest.approx(0.5 + 0.5 * best_beta_b)
    # "alpha" is on both pages: it tells their sentences apart no better than a stopword
    w = scores.sentence_weights()
    assert w[0] < w[1] and w.sum() == pytest.approx(1.0)


def test_a_synonym_is_found_by_the_dense_path_only() -> None:
    hits = [_hit(3, "Grind the beans finely."),
            _hit(7, "Fill the tank before brewing. The tank capacity is 1.8 litres.")]
    question = Query(text="What is the reservoir volume?")
    lexical = ExtractiveGenerator().generate(question, hits)
    assert not lexical.found and lexical.text == NOT_FOUND
    answer = _dense().generate(question, hits)
    assert answer.found and answer.citations[0].page == 7
    assert answer.text.startswith("The tank capacity is 1.8 litres. [1]")
    assert answer.usage["evidence_kind"] == "dense" and answer.usage["evidence"] >= 0.68


# --------------------------------------------------------------------------- the rule
@pytest.mark.parametrize("dense", [False, True])
def test_the_answer_abstains_exactly_below_the_calibrated_threshold(dense: bool) -> None:
    hits = [_hit(12, "The warranty covers defects for two years. Keep your receipt."),
            _hit(7, "Fill the tank before brewing. The tank capacity is 1.8 litres.")]
    question = Query(text="How many years does the warranty last for defects of the pump?")
    field = "min_support" if dense else "min_overlap"
    make = _dense if dense else ExtractiveGenerator
    default = make()
    assert getattr(default, field) == (0.68 if dense else 0.075)  # calibrated on the R manuals
    evidence = make(**{field: 0.0}).generate(question, hits).usage["evidence"]
    assert 0.0 < evidence < 1.0
    above = make(**{field: round(evidence - 0.01, 4)}).generate(question, hits)
    below = make(**{field: round(evidence + 0.01, 4)}).generate(question, hits)
    assert above.found and above.citations[0].page == 12 and above.usage["evidence"] == evidence
    assert not below.found and below.text == NOT_FOUND and below.citations == ()
    assert below.usage["evidence"] == evidence and below.hits == tuple(hits)


def test_the_top_ranked_page_stands_in_for_a_weaker_best_page() -> None:
    # page 1 (ranked first) holds every word of the question, one per sentence; page 2 has
    # the sentence closest to the question as a whole (ranked by single-vector cosine here)
    top = _hit(1, "Alpha comes first. Beta follows later. Gamma closes it.")
    other = _hit(2, "Alpha and beta appear together.")
    question = Query(text="alpha beta gamma")
    params = {"lexical_weight": 0.0, "dense_weight": 0.0, "coverage_weight": 0.0}
    lenient = _dense(min_support=0.5, **params).generate(question, [top, other])
    assert lenient.found and lenient.citations[0].page == 2  # the best sentence's page
    strict = _dense(min_support=0.95, **params).generate(question, [top, other])
    assert strict.found and strict.citations[0].page == 1  # page 2 is too weak: page 1 stands in
    assert strict.usage["evidence"] == pytest.approx(1.0)
    weak = _hit(1, "Alpha comes first. Beta follows later.")
    neither = _dense(min_support=0.95, **params).generate(question, [weak, other])
    assert not neither.found and neither.usage["evidence"] < 0.95


def test_rank_is_a_prior_not_a_veto() -> None:
    same = "The tank capacity is 1.8 litres."
    hits = [_hit(1, same), _hit(2, same.replace("1.8", "2.0"))]
    assert ExtractiveGenerator().generate(Query(text="tank capacity"), hits).citations[0].page == 1
    better = [_hit(1, "Fill the tank."), _hit(2, "The tank capacity is 1.8 litres.")]
    assert ExtractiveGenerator().generate(Query(text="tank capacity"), better).citations[0].page == 2
    trust = ExtractiveGenerator(rank_prior=5.0).generate(Query(text="tank capacity"), better)
    assert trust.citations[0].page == 1


# --------------------------------------------------------------------------- text
def test_sentences_continue_across_displayed_code() -> None:
    page = ("For large matrices it is better to avoid computing the eigenvectors by using\n\n"
            "> evals <- eigen(Sm, only.values = TRUE)$values\n\n"
            "5.7.4 Singular value decomposition\n\nThe function svd(M) takes a matrix.")
    joined = join_continuations(split_sentences(page))
    assert joined[0].endswith("by using > evals <- eigen(Sm, only.values = TRUE)$values")
    assert joined[1:] == ["5.7.4 Singular value decomposition", "The function svd(M) takes a matrix."]
    assert join_continuations(["Maintenance", "Clean the tray."]) == ["Maintenance", "Clean the tray."]
    assert join_continuations(["In R,", "> f(x)", "returns it."], max_chars=10) == [
        "In R,", "> f(x)", "returns it."]


def test_the_answer_names_the_page_it_quotes() -> None:
    hits = [_hit(12, "The warranty lasts two years. Keep your receipt.", "/docs/R-intro.pdf"),
            _hit(7, "Descale the machine every month. Use the descaling programme monthly.",
                 "/docs/R-intro.pdf")]
    gen = ExtractiveGenerator(name_pages=True)
    question = Query(text="How often should I descale the machine?")
    answer = gen.generate(question, hits)
    assert answer.found and answer.citations[0].page == 7
    assert answer.text.startswith("Descale the machine every month. [1]")
    assert answer.text.endswith(" [1] (quoted from page 7 of R-intro.pdf)")
    deltas = list(gen.stream(question, hits))
    assert "".join(d.text for d in deltas) == answer.text and deltas[-1].answer == answer
    assert not any(d.done for d in deltas[:-1]) and deltas[0].citations == answer.citations
    assert deltas[-2].text.endswith("[1] (quoted from page 7 of R-intro.pdf)")
    note = Hit(chunk=Chunk(id="m", document_id="faq", kind="text", source="/docs/travel_faq.md",
                           text="The hotel cap is EUR 220 per night in London."), score=1.0)
    faq = gen.generate(Query(text="hotel cap in London"), [note])
    assert faq.text.endswith("[1] (quoted from travel_faq.md)")
    assert ExtractiveGenerator().generate(question, hits).text.endswith("[1]")  # off by default
