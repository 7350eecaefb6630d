"""An extractive generator: answers with the retrieved sentences that match the question.

No generative model: it splits the top hits into sentences (robust to PDF text:
hyphenated line breaks, bullets, headings, abbreviations, code shown between the words
of a sentence), scores each sentence against the question -- lexically (IDF-weighted
share of the question's content terms) and, when the pipeline hands it its text
embedder, with the dense ladder's vectors (token MaxSim and single-vector cosine) --
with the hit's retrieval rank as a prior, and quotes the best page's best sentences with
bracketed citations::

    >>> from ragnest.generators.extractive import ExtractiveGenerator
    >>> from ragnest.types import Chunk, Hit, Query
    >>> chunk = Chunk(id="c1", document_id="d1", kind="page", page=3, source="manual.pdf",
    ...               text="Descale the machine every month. The warranty lasts two years.")
    >>> answer = ExtractiveGenerator().generate(Query(text="How often should I descale the machine?"),
    ...                                         [Hit(chunk=chunk, score=1.0)])
    >>> answer.text
    'Descale the machine every month. [1]'
    >>> answer.citations[0].label()
    'manual.pdf p. 3'
    >>> ExtractiveGenerator(name_pages=True).generate(
    ...     Query(text="How often should I descale the machine?"), [Hit(chunk=chunk, score=1.0)]).text
    'Descale the machine every month. [1] (quoted from page 3 of manual.pdf)'

It quotes the page of the best sentence, or the top-ranked page when that page's
evidence is too weak, and abstains (``found=False``) only when both are weak. A page's
*evidence* is, with an embedder, its support of the question (each question token's best
cosine with a token of the page, averaged with the question's token weights) plus
``coverage_weight`` times its lexical coverage, compared with ``min_support``; without
one, its IDF-weighted coverage of the question's terms, compared with ``min_overlap``.
``answer.usage["evidence"]`` is the value compared. Both thresholds were calibrated on
natural questions over the R manuals (``tests/benchmarks/bench_answers.py``): no question
whose right page retrieval ranked first abstains, and most questions the manuals
cannot answer do (with the lite ladder: 18 of 23; lexical only: 9 of 23).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ragnest.errors import ConfigError
from ragnest.generators._scoring import (
    DenseScores,
    Sentence,
    dense_scores,
    lexical_scores,
    page_coverage,
    question_terms,
)
from ragnest.generators._text import content_terms, join_continuations, split_sentences, words
from ragnest.generators.evidence import NOT_FOUND
from ragnest.protocols import Embedder
from ragnest.types import Answer, AnswerDelta, Chunk, Citation, Hit, Query

__all__ = ["NOT_FOUND", "ExtractiveGenerator", "content_terms", "split_sentences"]

_MAX_SENTENCE_CHARS = 500
_CITE_NUMBER = re.compile(r"\[(\d+)\]")


@dataclass(kw_only=True)
class ExtractiveGenerator:
    """Answers by quoting the best-matching sentences of the best page, with citations.

    * ``max_hits`` hits are read, at most ``max_sentences`` sentences quoted (all from
      the page of the best sentence; further ones must score at least ``follow_ratio``
      of the best one's relevance);
    * a sentence scores ``lexical_weight * lexical + dense_weight * token MaxSim +
      cosine_weight * cosine - rank_prior * rank`` (rank 0 = the top hit); the dense
      terms need an embedder: ``embedder`` names the pipeline embedder to ask for
      (:class:`~ragnest.protocols.EmbedderAware`; ``None``: lexical scores only);
    * the answer is "not found" when neither the best sentence's page nor the top-ranked
      page has evidence of at least ``min_support`` (dense; ``coverage_weight`` adds
      lexical coverage to it) or ``min_overlap`` (lexical only); see the module docs;
    * ``name_pages``: the answer ends by naming the page it quotes
      (``(quoted from page 12 of R-intro.pdf)``).
    """

    max_hits: int = 5
    max_sentences: int = 3
    min_overlap: float = 0.075
    min_support: float = 0.68
    coverage_weight: float = 0.1
    rank_prior: float = 0.1
    lexical_weight: float = 0.5
    dense_weight: float = 2.0
    cosine_weight: float = 1.0
    follow_ratio: float = 0.8
    embedder: str | None = None
    name_pages: bool = False

    def __post_init__(self) -> None:
        if self.max_hits <= 0 or self.max_sentences <= 0:
            raise ConfigError("generator/extractive: max_hits and max_sentences must be positive")
        for name in ("min_overlap", "min_support", "follow_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"generator/extractive: {name} must be within [0, 1], "
                                  f"got {getattr(self, name)!r}")
        for name in ("rank_prior", "lexical_weight", "dense_weight", "cosine_weight",
                     "coverage_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"generator/extractive: {name} must be >= 0, "
                                  f"got {getattr(self, name)!r}")
        self._embedder: Embedder | None = None

    # -- lifecycle ------------------------------------------------------------------
    def warm_up(self) -> None:
        """Nothing to load (a bound embedder is the pipeline's, warmed up there)."""

    def close(self) -> None:
        """Forget the bound embedder (the pipeline binds it again before answering)."""
        self._embedder = None

    @property
    def uses_embedder(self) -> str | None:
        """The pipeline embedder this generator asks for (its ``embedder`` parameter)."""
        return self.embedder

    def bind_embedder(self, embedder: Embedder | None) -> None:
        """Score sentences with ``embedder``'s vectors from now on (``None``: lexical only)."""
        self._embedder = embedder

    # -- answering ------------------------------------------------------------------
    def generate(self, query: Query, hits: Sequence[Hit]) -> Answer:
        """Quote the sentences of ``hits`` that answer ``query``, citing their page."""
        return self._answer(query, hits)[0]

    def stream(self, query: Query, hits: Sequence[Hit]) -> Iterator[AnswerDelta]:
        """:meth:`generate`, one quoted sentence per delta (each with the citations it
        introduces); the last delta carries the whole :class:`Answer`."""
        answer, parts = self._answer(query, hits)
        if not parts or "".join(parts) != answer.text:
            parts = [answer.text]
        seen: set[int] = set()
        for part in parts:
            new = []
            for number in (int(n) for n in _CITE_NUMBER.findall(part)):
                if number not in seen and 0 < number <= len(answer.citations):
                    seen.add(number)
                    new.append(answer.citations[number - 1])
            yield AnswerDelta(text=part, citations=tuple(new))
        yield AnswerDelta(done=True, answer=answer)

    def _answer(self, query: Query, hits: Sequence[Hit]) -> tuple[Answer, list[str]]:
        """The answer and its text cut into parts (one per quoted sentence) for streaming."""
        hits = tuple(hits)
        top = hits[: self.max_hits]
        if not top:
            return _not_found(hits, _usage(0, 0, 0)), []
        if not query.text:
            answer = self._closest_page(top[0], hits)
            return answer, [answer.text]
        q_terms = question_terms(query.text)
        pieces = [  # (hit, text) of every sentence, heading and caption of the hits
            (i, s)
            for i, hit in enumerate(top)
            for s in join_continuations(split_sentences(_hit_text(hit)),
                                        max_chars=_MAX_SENTENCE_CHARS)
        ]
        sentences = [  # the ones worth quoting
            Sentence(hit_index=i, text=s, terms=frozenset(content_terms(s)), piece=k)
            for k, (i, s) in enumerate(pieces)
            if len(words(s)) >= 3
        ]
        sentences = _drop_boilerplate(sentences)
        if not q_terms or not sentences:
            return _not_found(hits, _usage(len(sentences), 0, len(top))), []
        hit_terms = [frozenset(content_terms(_hit_text(h))) for h in top]
        idf = lexical_scores(q_terms, sentences, hit_terms)
        dense = None
        if self._embedder is not None:
            dense = dense_scores(self._embedder, query.text, [t for _, t in pieces],
                                 [i for i, _ in pieces], len(top))
        threshold = self.min_support if dense is not None else self.min_overlap
        best, evidence = self._score(sentences, dense, q_terms, idf, hit_terms, threshold)
        usage = _usage(len(sentences), 0, len(top), evidence=evidence,
                       kind="dense" if dense is not None else "lexical")
        if best is None:
            return _not_found(hits, usage), []
        picked = self._pick(best, [s for s in sentences if s.hit_index == best.hit_index])
        return self._compose(picked, top, hits, usage)

    def _score(
        self,
        sentences: list[Sentence],
        dense: DenseScores | None,
        q_terms: list[str],
        idf: dict[str, float],
        hit_terms: list[frozenset[str]],
        threshold: float,
    ) -> tuple[Sentence | None, float]:
        """Score every sentence; return the sentence to quote first (``None``: none) and
        the evidence compared with ``threshold``: the stronger of the best sentence's
        page's and the top-ranked page's.

        The best sentence is quoted when its page's evidence reaches ``threshold``;
        otherwise the best sentence of the top-ranked page, when that page's evidence
        does (what retrieval found first is never dropped for a weaker page)."""
        if dense is not None:
            scores = dense.sentence_scores()
            for s in sentences:
                s.dense, s.cosine = float(scores[s.piece]), float(dense.cosine[s.piece])
        for s in sentences:
            s.score = (self.lexical_weight * s.lexical + self.dense_weight * s.dense
                       + self.cosine_weight * s.cosine - self.rank_prior * s.hit_index)

        def page_evidence(page: int) -> float:
            coverage = page_coverage(q_terms, idf, hit_terms[page])
            if dense is None:
                return coverage
            return dense.page_support(page) + self.coverage_weight * coverage

        best = max(sentences, key=lambda s: (s.score, -s.hit_index))
        first = min(s.hit_index for s in sentences)  # the top-ranked page with sentences
        candidates = [best] + ([max((s for s in sentences if s.hit_index == first),
                                    key=lambda s: s.score)] if best.hit_index != first else [])
        scored = [(page_evidence(s.hit_index), s) for s in candidates]
        strongest = max(ev for ev, _ in scored)
        return next((s for ev, s in scored if ev >= threshold), None), strongest

    def _pick(self, best: Sentence, page: list[Sentence]) -> list[Sentence]:
        """The best sentence, then the page's next best ones that score nearly as well."""
        picked = [best]
        floor = best.score - (1.0 - self.follow_ratio) * abs(best.score)
        for s in sorted(page, key=lambda s: -s.score):
            if len(picked) >= self.max_sentences or s.score < floor:
                break
            if s is best or any(_similar(s, p) for p in picked):
                continue
            picked.append(s)
        return picked

    def _compose(
        self, picked: list[Sentence], top: tuple[Hit, ...], hits: tuple[Hit, ...],
        usage: dict[str, object],
    ) -> tuple[Answer, list[str]]:
        numbers: dict[int, int] = {}
        citations: list[Citation] = []
        parts: list[str] = []
        for s in picked:
            if s.hit_index not in numbers:
                numbers[s.hit_index] = len(numbers) + 1
                citations.append(_citation(top[s.hit_index], _clip(s.text, 300),
                                           numbers[s.hit_index]))
            sep = " " if parts else ""
            parts.append(f"{sep}{_clip(s.text, _MAX_SENTENCE_CHARS)} [{numbers[s.hit_index]}]")
        if self.name_pages:
            parts[-1] += f" (quoted from {_where(top[picked[0].hit_index].chunk)})"
        usage = {**usage, "hits_used": len(numbers), "sentences_used": len(picked)}
        answer = Answer(text="".join(parts), citations=tuple(citations), hits=hits, usage=usage)
        return answer, parts

    def _closest_page(self, hit: Hit, hits: tuple[Hit, ...]) -> Answer:
        return Answer(
            text=f"The closest match is {_where(hit.chunk)} [1].",
            citations=(_citation(hit, _clip(hit.chunk.text, 300), 1),),
            hits=hits,
            usage=_usage(0, 1, 1),
        )


def _not_found(hits: tuple[Hit, ...], usage: dict[str, object]) -> Answer:
    return Answer(text=NOT_FOUND, hits=hits, found=False, usage=usage)


def _where(chunk: Chunk) -> str:
    """``page 12 of R-intro.pdf`` (or the file name alone when the chunk has no page)."""
    name = Path(chunk.source).name if chunk.source else chunk.document_id
    return f"page {chunk.page} of {name}" if chunk.page else name


def _drop_boilerplate(sentences: list[Sentence]) -> list[Sentence]:
    """Drop running headers and footers: sentences that recur (digits aside) in 3+ hits."""
    seen: dict[str, set[int]] = {}
    for s in sentences:
        seen.setdefault(re.sub(r"\d+", "#", s.text.lower()), set()).add(s.hit_index)
    return [s for s in sentences if len(seen[re.sub(r"\d+", "#", s.text.lower())]) < 3]


def _similar(a: Sentence, b: Sentence) -> bool:
    """Near-duplicates: same normalised text, or term sets overlapping by 60% or more."""
    if re.sub(r"\W+", "", a.text.lower()) == re.sub(r"\W+", "", b.text.lower()):
        return True
    if not a.terms or not b.terms:
        return False
    return len(a.terms & b.terms) / min(len(a.terms), len(b.terms)) >= 0.6 and (
        len(a.terms & b.terms) / len(a.terms | b.terms) >= 0.5
    )


def _hit_text(hit: Hit) -> str:
    chunk = hit.chunk
    if chunk.text.strip():
        return chunk.text
    return "\n\n".join(s.text for s in chunk.segments if s.text)


def _citation(hit: Hit, quote: str, tag: int) -> Citation:
    c = hit.chunk
    return Citation(
        chunk_id=c.id, document_id=c.document_id, source=c.source, page=c.page, quote=quote,
        bbox=_region(c, quote), tag=str(tag),
    )


def _region(chunk: Chunk, quote: str) -> tuple[float, float, float, float] | None:
    """The box of the segment the quote comes from (else the chunk's own region)."""
    probe = " ".join(quote.rstrip("\u2026").split())[:60]
    if probe:
        for seg in chunk.segments:
            if seg.bbox and seg.role != "overlap" and probe in " ".join(seg.text.split()):
                return seg.bbox
    return chunk.bbox if chunk.kind != "page" else None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _usage(
    considered: int, used: int, read: int, *, sentences_used: int = 0,
    evidence: float | None = None, kind: str | None = None,
) -> dict[str, object]:
    usage: dict[str, object] = {
        "sentences_considered": considered,
        "sentences_used": sentences_used,
        "hits_used": used,
        "hits_considered": read,
    }
    if evidence is not None:
        usage["evidence"] = round(float(evidence), 4)
        usage["evidence_kind"] = kind
    return usage
