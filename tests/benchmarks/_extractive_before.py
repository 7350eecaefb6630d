# The ExtractiveGenerator as of commit 56a5dec (before "extractive answers that keep what
# retrieval found"), verbatim: the "before" row of bench_answers.py. Not part of ragnest.
# ruff: noqa
"""An extractive generator: answers with the retrieved sentences that match the question.

No model, pure Python: it splits the top hits into sentences (robust to PDF text:
hyphenated line breaks, bullets, headings, abbreviations), scores each sentence by the
IDF-weighted share of the query's content terms it contains (stemmed, stopwords
removed, IDF over the candidate sentences) plus a small bonus for the hit's rank, and
quotes the best few with bracketed citations::

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
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ragnest.errors import ConfigError
from ragnest.generators.evidence import NOT_FOUND
from ragnest.types import Answer, AnswerDelta, Chunk, Citation, Hit, Query

__all__ = ["NOT_FOUND", "ExtractiveGenerator", "content_terms", "split_sentences"]

#: The answer text when the hits do not contain the answer.

_STOPWORD_TEXT = """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if
    in into is it its itself just me more most my myself no nor not now of off on once
    only or other our ours ourselves out over own same she should so some such than that
    the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves may might must shall also use used using
    via e.g i.e etc eg ie one two get got make tell find show please know want need
    much many often
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_ABBREVIATION_TEXT = """
    e.g i.e etc vs cf al fig figs no nos dr mr mrs ms prof approx ca sec p pp vol ed eds
    ch chap eq resp incl st jr sr inc ltd co corp dept est min max
"""
_ABBREVIATIONS = frozenset(_ABBREVIATION_TEXT.split())
_WORD = re.compile(r"[a-z0-9]+(?:[._'][a-z0-9]+)*")
_BULLET = re.compile(
    r"^\s*(?:[\u2022\u25e6\u25aa\u25cf\u2023\u2043\u2013\u2014*\-]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s+"
)
_SENT_END = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9])")
_MAX_SENTENCE_CHARS = 500
_CITED_PART = re.compile(r"\S.*?\[\d+\](?= |$)")  # one quoted sentence and its [n]
_CITE_NUMBER = re.compile(r"\[(\d+)\]")


def _stem(word: str) -> str:
    """A light suffix stripper: descale / descaled / descaling -> ``descal``."""
    w = word
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif w.endswith("sses"):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ingly", "edly", "ing", "ed", "ly"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            w = w[: -len(suffix)]
            if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]
            break
    if len(w) > 4 and w.endswith("e"):
        w = w[:-1]
    return w


def _term_in(term: str, terms: frozenset[str]) -> bool:
    """Exact stem match, or a shared prefix of at least 4 letters (weigh ~ weight)."""
    if term in terms:
        return True
    if len(term) < 4:
        return False
    return any(
        len(u) >= 4 and (u.startswith(term) or term.startswith(u)) and abs(len(u) - len(term)) <= 3
        for u in terms
    )


def content_terms(text: str) -> list[str]:
    """Lower-cased, stemmed words of ``text`` without stopwords, in order.

    >>> content_terms("Descaling the espresso machines, e.g. monthly")
    ['descal', 'espresso', 'machin', 'month']
    """
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def _units(text: str) -> list[str]:
    """Paragraph-like units: blank lines, bullets and heading-like lines break them."""
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", text.replace("\r", ""))
    text = re.sub(r"[ \t]*[\u2022\u25e6\u25aa\u25cf][ \t]+", "\n\u2022 ", text)  # inline bullets
    units: list[list[str]] = [[]]
    lines = text.split("\n")
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            units.append([])
            continue
        if _BULLET.match(line) and units[-1]:
            units.append([])
        units[-1].append(_BULLET.sub("", line, count=1) if _BULLET.match(line) else line)
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        heading = len(line) < 50 and not re.search(r"[.,;:!?\-]$", line)
        if heading and nxt[:1].isupper():
            units.append([])
    return [" ".join(u) for u in units if u]


def split_sentences(text: str) -> list[str]:
    """Split (PDF) text into sentences.

    >>> split_sentences("Install it, e.g. Windows users.\\nCode may termi-\\nnate R. \\u2022 Dry it")
    ['Install it, e.g. Windows users.', 'Code may terminate R.', 'Dry it']
    """
    out: list[str] = []
    for unit in _units(text):
        unit = re.sub(r"\s+", " ", unit).strip()
        pieces = _SENT_END.split(unit)
        merged: list[str] = []
        for piece in pieces:
            if merged and _ends_with_abbreviation(merged[-1]):
                merged[-1] = f"{merged[-1]} {piece}"
            else:
                merged.append(piece)
        out.extend(s.strip() for s in merged if s.strip())
    return out


def _ends_with_abbreviation(sentence: str) -> bool:
    last = sentence.rsplit(" ", 1)[-1].rstrip(".").lower()
    return last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())


@dataclass
class _Candidate:
    hit_index: int
    text: str
    terms: frozenset[str]
    score: float = 0.0
    overlap: float = 0.0


@dataclass(kw_only=True)
class ExtractiveGenerator:
    """Answers by quoting the best-matching sentences of the top hits, with citations.

    ``max_hits`` hits are read, at most ``max_sentences`` sentences quoted; when the best
    sentence covers less than ``min_overlap`` of the query's (IDF-weighted) content
    terms, the answer says it could not find this (``found=False``).
    """

    max_hits: int = 5
    max_sentences: int = 3
    min_overlap: float = 0.34
    rank_bonus: float = 0.05

    def __post_init__(self) -> None:
        if self.max_hits <= 0 or self.max_sentences <= 0 or not 0.0 <= self.min_overlap <= 1.0:
            raise ConfigError(
                "generator/extractive: max_hits and max_sentences must be positive and "
                "min_overlap within [0, 1]"
            )

    def warm_up(self) -> None:
        """Nothing to load."""

    def close(self) -> None:
        """Nothing to release."""

    def generate(self, query: Query, hits: Sequence[Hit]) -> Answer:
        """Quote the sentences of ``hits`` that answer ``query``, citing their pages."""
        hits = tuple(hits)
        top = hits[: self.max_hits]
        if not top:
            return Answer(text=NOT_FOUND, hits=hits, found=False, usage=_usage(0, 0, 0))
        if not query.text:
            return self._closest_page(top[0], hits)
        q_terms = list(dict.fromkeys(content_terms(query.text)))
        if not q_terms:
            q_terms = list(dict.fromkeys(_stem(w) for w in _WORD.findall(query.text.lower())))
        candidates = [
            _Candidate(hit_index=i, text=s, terms=frozenset(content_terms(s)))
            for i, hit in enumerate(top)
            for s in split_sentences(_hit_text(hit))
            if len(_WORD.findall(s.lower())) >= 3
        ]
        candidates = _drop_boilerplate(candidates)
        if not q_terms or not candidates:
            return Answer(
                text=NOT_FOUND, hits=hits, found=False, usage=_usage(len(candidates), 0, len(top))
            )
        self._score(q_terms, candidates, [frozenset(content_terms(_hit_text(h))) for h in top])
        ranked = sorted(candidates, key=lambda c: (-c.score, c.hit_index))
        if ranked[0].overlap < self.min_overlap:
            return Answer(
                text=NOT_FOUND, hits=hits, found=False, usage=_usage(len(candidates), 0, len(top))
            )
        picked = self._pick(ranked)
        return self._compose(picked, top, hits, len(candidates))

    def stream(self, query: Query, hits: Sequence[Hit]) -> Iterator[AnswerDelta]:
        """:meth:`generate`, one quoted sentence per delta (each with the citations it
        introduces); the last delta carries the whole :class:`Answer`."""
        answer = self.generate(query, hits)
        parts = _CITED_PART.findall(answer.text)
        if " ".join(parts) != answer.text:  # not "sentence [n] sentence [m]": one delta
            parts = [answer.text]
        seen: set[int] = set()
        for i, part in enumerate(parts):
            new = []
            for number in (int(n) for n in _CITE_NUMBER.findall(part)):
                if number not in seen and 0 < number <= len(answer.citations):
                    seen.add(number)
                    new.append(answer.citations[number - 1])
            yield AnswerDelta(text=part if i == 0 else " " + part, citations=tuple(new))
        yield AnswerDelta(done=True, answer=answer)

    def _score(
        self, q_terms: list[str], candidates: list[_Candidate], hit_terms: list[frozenset[str]]
    ) -> None:
        """Share of the query's terms a sentence holds, each weighted by how rare it is
        among the retrieved pages (a term every hit contains says little)."""
        n = len(hit_terms)
        idf = {}
        for t in q_terms:
            # a term no hit contains counts as rare, not as infinitely informative
            df = max(1, sum(1 for terms in hit_terms if _term_in(t, terms)))
            idf[t] = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        total = sum(idf.values()) or 1.0
        for c in candidates:
            c.overlap = sum(idf[t] for t in q_terms if _term_in(t, c.terms)) / total
            c.score = c.overlap + self.rank_bonus / (1 + c.hit_index)

    def _pick(self, ranked: list[_Candidate]) -> list[_Candidate]:
        picked: list[_Candidate] = []
        # later sentences must be nearly as relevant as the best one, not merely relevant
        floor = max(self.min_overlap, 0.6 * ranked[0].overlap) if ranked else self.min_overlap
        for c in ranked:
            if len(picked) >= self.max_sentences or c.overlap < floor:
                break
            if any(_similar(c, p) for p in picked):
                continue
            picked.append(c)
        return picked

    def _compose(
        self, picked: list[_Candidate], top: tuple[Hit, ...], hits: tuple[Hit, ...], considered: int
    ) -> Answer:
        numbers: dict[int, int] = {}
        citations: list[Citation] = []
        parts: list[str] = []
        for c in picked:
            if c.hit_index not in numbers:
                numbers[c.hit_index] = len(numbers) + 1
                citations.append(_citation(top[c.hit_index], _clip(c.text, 300),
                                           numbers[c.hit_index]))
            parts.append(f"{_clip(c.text, _MAX_SENTENCE_CHARS)} [{numbers[c.hit_index]}]")
        return Answer(
            text=" ".join(parts),
            citations=tuple(citations),
            hits=hits,
            usage=_usage(considered, len(numbers), len(top), sentences_used=len(picked)),
        )

    def _closest_page(self, hit: Hit, hits: tuple[Hit, ...]) -> Answer:
        chunk = hit.chunk
        name = Path(chunk.source).name if chunk.source else chunk.document_id
        where = f"page {chunk.page} of {name}" if chunk.page else name
        return Answer(
            text=f"The closest match is {where} [1].",
            citations=(_citation(hit, _clip(chunk.text, 300), 1),),
            hits=hits,
            usage=_usage(0, 1, 1),
        )


def _drop_boilerplate(candidates: list[_Candidate]) -> list[_Candidate]:
    """Drop running headers and footers: sentences that recur (digits aside) in 3+ hits."""
    seen: dict[str, set[int]] = {}
    for c in candidates:
        seen.setdefault(re.sub(r"\d+", "#", c.text.lower()), set()).add(c.hit_index)
    return [c for c in candidates if len(seen[re.sub(r"\d+", "#", c.text.lower())]) < 3]


def _similar(a: _Candidate, b: _Candidate) -> bool:
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


def _usage(considered: int, used: int, read: int, *, sentences_used: int = 0) -> dict[str, int]:
    return {
        "sentences_considered": considered,
        "sentences_used": sentences_used,
        "hits_used": used,
        "hits_considered": read,
    }
