"""Sentences and terms of (PDF) text, for the extractive generator.

* :func:`split_sentences` splits a page into sentences, robust to PDF text (hyphenated
  line breaks, bullets, headings, abbreviations);
* :func:`join_continuations` glues a sentence that stops mid-way to the displayed code or
  lower-case text that completes it (manuals put ``> solve(A, b)`` on a line of its own
  between "In R," and "solves the system");
* :func:`content_terms` gives a text's stemmed words without stopwords, and
  :func:`term_in` matches a term against a set of terms (exact stem or a long shared prefix).

    >>> join_continuations(["In R,", "> solve(A,b)", "solves the system.", "Then stop."])
    ['In R, > solve(A,b) solves the system.', 'Then stop.']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

__all__ = ["content_terms", "join_continuations", "split_sentences", "stem", "term_in", "words"]

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
_ENDED = re.compile(r"[.!?][\"'\u201d\u2019)\]]*$")
_CONTINUES = re.compile(r"^(?:[a-z]|[>$#%`(\[{<\-+*/=|&!~^]|\.\w)")  # lower case or code


def words(text: str) -> list[str]:
    """Lower-cased word tokens (``only.values`` and ``don't`` stay one token)."""
    return _WORD.findall(text.lower())


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
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


def term_in(term: str, terms: frozenset[str]) -> bool:
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
    return [stem(w) for w in words(text) if w not in _STOPWORDS]


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


def join_continuations(
    sentences: Sequence[str], *, max_pieces: int = 4, max_chars: int = 500
) -> list[str]:
    """Glue each sentence that does not end (no ``.``, ``!`` or ``?``) to the pieces
    that complete it: following pieces that start in lower case or with code
    (``>``, ``$``, ``(``, ...), at most ``max_pieces`` pieces and ``max_chars``
    characters in all. Headings (``5.7.4 Singular value ...``) and new sentences
    (upper case) are never glued on."""
    out: list[str] = []
    pieces = 0
    for s in sentences:
        if (
            out
            and pieces < max_pieces
            and not _ENDED.search(out[-1])
            and _CONTINUES.match(s)
            and len(out[-1]) + 1 + len(s) <= max_chars
        ):
            out[-1] = f"{out[-1]} {s}"
            pieces += 1
        else:
            out.append(s)
            pieces = 1
    return out
