"""How the extractive generator weighs the sentences of the retrieved pages.

Each sentence of the top hits gets

* a **lexical** score: the share of the question's content terms it holds, each weighted
  by how rare it is among the retrieved pages (a term every hit contains says little);
* with a text embedder (the pipeline's dense ladder), a **dense** score: for every token
  of the question, its best cosine with a token of the sentence, averaged with the
  question's token weights times their IDF over the retrieved pages (the MaxSim of late
  interaction, on the embedder's widest multi-vector level), and the **cosine** of the
  sentence's single vector with the question's;

and the *evidence* of a page is how well the page as a whole supports the question: each
question token's best cosine anywhere in the page's text, averaged with the question's
own token weights, or, without an embedder, the IDF-weighted coverage of the question's
terms by the page.

    >>> sentences = [Sentence(hit_index=0, text="Descale every month.",
    ...                       terms=frozenset(content_terms("Descale every month.")))]
    >>> idf = lexical_scores(["descal", "machin"], sentences, [sentences[0].terms])
    >>> round(sentences[0].lexical, 2), round(page_coverage(["descal", "machin"], idf, sentences[0].terms), 2)
    (0.5, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ragnest.generators._text import content_terms, stem, term_in, words
from ragnest.protocols import Embedder
from ragnest.types import Query

__all__ = [
    "DenseScores", "Sentence", "dense_scores", "lexical_scores", "page_coverage", "question_terms",
]

_PRESENT = 0.999  # a question token whose best cosine on a page reaches this occurs there


@dataclass
class Sentence:
    """One candidate sentence of a hit, with its scores."""

    hit_index: int
    text: str
    terms: frozenset[str]
    piece: int = 0  # its row among the texts given to dense_scores
    lexical: float = 0.0
    dense: float = 0.0
    cosine: float = 0.0
    score: float = 0.0


def lexical_scores(
    q_terms: Sequence[str], sentences: Sequence[Sentence], hit_terms: Sequence[frozenset[str]]
) -> dict[str, float]:
    """Set each sentence's ``lexical`` score; returns the terms' weights (IDF over the hits)."""
    n = len(hit_terms)
    # the words of the hits each question term matches (as term_in: exact stem or long
    # shared prefix), found once rather than per sentence
    vocabulary = frozenset().union(*hit_terms, *(s.terms for s in sentences))
    matches = {t: frozenset(u for u in vocabulary if _related(t, u)) for t in q_terms}
    idf: dict[str, float] = {}
    for t in q_terms:
        # a term no hit contains counts as rare, not as infinitely informative
        df = max(1, sum(1 for terms in hit_terms if not matches[t].isdisjoint(terms)))
        idf[t] = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
    total = sum(idf.values()) or 1.0
    for s in sentences:
        s.lexical = sum(idf[t] for t in q_terms if not matches[t].isdisjoint(s.terms)) / total
    return idf


def _related(t: str, u: str) -> bool:
    """``term_in(t, {u})``, for one pair."""
    return t == u or (
        len(t) >= 4 and len(u) >= 4 and abs(len(u) - len(t)) <= 3
        and (u.startswith(t) or t.startswith(u))
    )


def page_coverage(q_terms: Sequence[str], idf: dict[str, float], terms: frozenset[str]) -> float:
    """The IDF-weighted share of the question's terms that a page holds."""
    total = sum(idf.get(t, 0.0) for t in q_terms) or 1.0
    return sum(idf.get(t, 0.0) for t in q_terms if term_in(t, terms)) / total


@dataclass(frozen=True)
class DenseScores:
    """The dense view of one question against the sentences of its pages.

    ``support[i, j]``: the best cosine of question token ``j`` with a token of sentence
    ``i`` (``pages[p, j]``: with a token anywhere on page ``p``); ``weights``: the
    question tokens' weights (summing to 1); ``cosine[i]``: the single-vector cosine of
    sentence ``i`` with the question (0 when the embedder has no single-vector level).
    """

    support: np.ndarray
    pages: np.ndarray
    weights: np.ndarray
    cosine: np.ndarray

    def sentence_weights(self) -> np.ndarray:
        """The question tokens' weights for ranking sentences: each token's own weight
        times its IDF over the retrieved pages (a token every page contains, such as the
        product's name, tells the pages' sentences apart no better than a stopword)."""
        n = len(self.pages)
        if n == 0:
            return self.weights
        df = (self.pages >= _PRESENT).sum(axis=0)
        w = self.weights * np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        total = float(w.sum())
        return w / total if total > 0 else self.weights

    def sentence_scores(self) -> np.ndarray:
        """Each sentence's MaxSim with the question (IDF-weighted tokens)."""
        return self.support @ self.sentence_weights()

    def page_support(self, page: int) -> float:
        """How well page ``page`` as a whole supports the question: each question token's
        best cosine on the page, averaged with the question's own token weights."""
        return float(self.pages[page] @ self.weights)


def _unit_rows(x: Any) -> np.ndarray:
    rows = np.asarray(x, dtype=np.float32)
    if rows.ndim == 1:
        rows = rows[None, :]
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def _levels(vectors: dict[str, Any]) -> tuple[str | None, str | None]:
    """(widest single-vector level, widest multi-vector level) of one embedding."""
    single = [(np.asarray(v).shape[-1], k) for k, v in vectors.items() if np.asarray(v).ndim == 1]
    multi = [(np.asarray(v).shape[-1], k) for k, v in vectors.items() if np.asarray(v).ndim == 2]
    return (max(single)[1] if single else None, max(multi)[1] if multi else None)


def dense_scores(
    embedder: Embedder, question: str, texts: Sequence[str], page_of: Sequence[int], pages: int
) -> DenseScores | None:
    """Embed the question and every sentence of the pages (as queries: one batch, no
    pooling) and compare them; ``page_of[i]`` is the page of ``texts[i]`` (``pages``
    pages in all; one without text supports nothing). ``None`` when the embedder gives
    no text vectors."""
    if not texts:
        return None
    vectors = embedder.embed_queries([Query(text=t) for t in [question, *texts]])
    if any(v is None for v in vectors):
        return None
    q = vectors[0]
    assert q is not None
    single, multi = _levels(q)
    if single is None and multi is None:
        return None
    others = [v for v in vectors[1:] if v is not None]
    cosine = np.zeros(len(others), dtype=np.float32)
    if single is not None:
        qs = _unit_rows(q[single])[0]
        cosine = np.array([float(_unit_rows(v[single])[0] @ qs) for v in others], np.float32)
    if multi is None:  # a single-vector embedder: its cosine is the support of one "token"
        support = cosine[:, None]
        weights = np.ones(1, np.float32)
    else:
        rows = np.asarray(q[multi], dtype=np.float32)
        norms = np.linalg.norm(rows, axis=1)
        total = float(norms.sum())
        weights = (norms / total if total > 0 else np.full(len(norms), 1.0 / len(norms)))
        qu = rows / np.maximum(norms, 1e-12)[:, None]
        support = np.stack([(qu @ _unit_rows(v[multi]).T).max(axis=1) for v in others])
    page_rows = np.zeros((pages, support.shape[1]), dtype=np.float32)
    owner = np.asarray(page_of)
    for p in range(pages):
        mine = owner == p
        if mine.any():
            page_rows[p] = support[mine].max(axis=0)
    return DenseScores(support=support, pages=page_rows, weights=weights.astype(np.float32),
                       cosine=cosine)


def question_terms(text: str) -> list[str]:
    """The question's distinct content terms (all its words when it has only stopwords)."""
    terms = list(dict.fromkeys(content_terms(text)))
    if terms:
        return terms
    return list(dict.fromkeys(stem(w) for w in words(text)))
