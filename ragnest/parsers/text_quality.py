"""Is a PDF page's text layer usable, or does the page need OCR? (pure Python)

A page's extracted text can be missing (a blank page, a figure-only page), a scanner's
page image with no or a token invisible text layer ("scanned"), or garbage from fonts
without a Unicode map ("garbled": ``(cid:12)`` tokens, U+FFFD, private-use code points,
control characters, symbol soup)::

    >>> from ragnest.parsers.text_quality import assess_text_layer
    >>> A4 = 595 * 842  # page area in PDF points squared
    >>> assess_text_layer("The pump builds 15 bar of pressure. " * 5, page_area=A4).reason
    'ok'
    >>> assess_text_layer("", page_area=A4, image_area=A4).reason
    'scanned'
    >>> v = assess_text_layer("(cid:3)(cid:17)(cid:4) (cid:9)(cid:12)" * 4, page_area=A4)
    >>> v.usable, v.reason, v.needs_ocr
    (False, 'garbled', True)

Rules, checked in this order (``chars`` counts non-whitespace characters; areas are
in PDF points squared, ``coverage = image_area / page_area`` capped at 1):

1. **scanned**: ``coverage >= 0.70`` and ``chars`` below the larger of ``min_chars``
   and 200 characters per A4-sized area of image (about 200 on a full-page scan).
   A real page holds 1,500-4,000 characters; a scanner's stamp or page number a few
   dozen. A designed page with full-page background art and real text is ``ok``.
2. **missing**: ``chars < min_chars``. OCR could still find text in the page's
   images, so :attr:`TextLayerVerdict.needs_ocr` is true only when
   ``coverage >= 0.10`` (a figure-only page, not a blank page or a small logo).
3. **garbled** (only with ``chars >= min_chars``), any of:

   * U+FFFD, C0/C1 control characters and ``(cid:NN)`` tokens make up >= 10% of the
     characters (a few broken ligatures stay far below: ~2%);
   * those plus private-use code points make up >= 30% (symbolic TrueType fonts map
     every glyph to U+F0xx; PUA bullets and icons in real text stay well below);
   * symbol soup: after collapsing runs of one repeated symbol (rules, dot leaders,
     form blanks), letters and digits (Unicode categories L, M, N: every script
     counts) are < 25% of the characters **and** fewer than 25% of the
     whitespace-separated tokens are word-like (half or more letters, marks or
     digits). Measured on realistic samples: prose and CJK/Cyrillic/Greek/Arabic/
     Devanagari text 88-97% / 100%, code listings 66% / 62%, tables of numbers
     76% / 97%, formulas 44% / 41%, ASCII symbol soup 5% / 0%.

4. otherwise **ok**.

Known limit: glyph-id text that happens to map to letters (``&RQWHQWV`` for
``Contents``) looks like words and passes as ``ok``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "TextLayerVerdict",
    "assess_text_layer",
    "SCANNED_MIN_COVERAGE",
    "MISSING_OCR_MIN_COVERAGE",
]

#: Image coverage from which a page whose text is short counts as a scan.
SCANNED_MIN_COVERAGE = 0.70
#: Image coverage from which a page without text is worth OCR.
MISSING_OCR_MIN_COVERAGE = 0.10
#: A scan's text layer holds fewer than this many characters per A4 area of image.
SCANNED_CHARS_PER_A4 = 200
A4_AREA_PT2 = 595.0 * 842.0
#: Share of U+FFFD, control characters and (cid:NN) tokens that marks a page garbled.
BROKEN_MAX_SHARE = 0.10
#: Share of those plus private-use code points that marks a page garbled.
BROKEN_OR_PUA_MAX_SHARE = 0.30
#: Symbol soup: letters+digits below this share of characters ...
SOUP_ALNUM_SHARE = 0.25
#: ... and word-like or numeric tokens below this share of tokens.
SOUP_WORD_SHARE = 0.25

_CID = re.compile(r"\(cid:\d+\)")
_RUN = re.compile(r"(\S)\1{2,}")  # ----, ====, ...., ____: collapsed unless letters/digits
# Broken characters (U+FFFD, C0/C1 controls other than whitespace) and private-use code
# points, counted at C speed (this runs on every page).
_BROKEN = re.compile("[\ufffd\x00-\x08\x0e-\x1f\x7f-\x9f]")
_PUA = re.compile("[\ue000-\uf8ff\U000f0000-\U0010ffff]")
_SPACE_CONTROLS = re.compile("[\x1c-\x1f\x85]")  # whitespace to str.split, broken to us
_ASCII_ALNUM = (b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                b"abcdefghijklmnopqrstuvwxyz0123456789")  # deleted by bytes.translate to count


def _ascii_alnum(text: str) -> int:
    """How many ASCII letters and digits ``text`` holds (bytes.translate: C speed)."""
    raw = text.encode("ascii", "ignore")
    return len(raw) - len(raw.translate(None, _ASCII_ALNUM))


@dataclass(frozen=True)
class TextLayerVerdict:
    """Whether a page's text layer is usable, and why.

    ``reason`` is ``"ok"``, ``"missing"``, ``"scanned"`` or ``"garbled"``; ``detail``
    gives the numbers behind the decision. ``chars`` (non-whitespace characters) and
    ``image_coverage`` (0..1) are the inputs the rules looked at.
    """

    usable: bool
    reason: str
    detail: str = ""
    chars: int = 0
    image_coverage: float = 0.0

    @property
    def needs_ocr(self) -> bool:
        """Whether the page should be OCRed: scanned and garbled pages always, pages
        without text when images cover at least :data:`MISSING_OCR_MIN_COVERAGE`."""
        if self.reason in ("scanned", "garbled"):
            return True
        if self.reason == "missing":
            return self.image_coverage >= MISSING_OCR_MIN_COVERAGE
        return False


def _token_is_wordlike(token: str) -> bool:
    """At least half letters, marks or digits: words in any script, numbers, ``(b²``."""
    alnum = sum(1 for ch in token if unicodedata.category(ch)[0] in "LMN")
    return 2 * alnum >= len(token)


def _collapse(match: re.Match[str]) -> str:
    run = match.group(0)
    return run if unicodedata.category(run[0])[0] in "LMN" else run[0]


def _garbled(text: str, chars: int) -> str | None:
    """A detail string if ``text`` is not language, else ``None``."""
    cid_chars = sum(len(m) for m in _CID.findall(text))
    rest = _CID.sub(" ", text) if cid_chars else text
    broken = cid_chars + len(_BROKEN.findall(rest))
    pua = len(_PUA.findall(rest))
    if broken >= BROKEN_MAX_SHARE * chars:
        return (f"{broken} of {chars} characters are U+FFFD, control characters or "
                f"(cid:NN) tokens ({broken / chars:.0%} >= {BROKEN_MAX_SHARE:.0%})")
    if broken + pua >= BROKEN_OR_PUA_MAX_SHARE * chars:
        return (f"{broken + pua} of {chars} characters are private-use, U+FFFD, control "
                f"or (cid:NN) ({(broken + pua) / chars:.0%} >= "
                f"{BROKEN_OR_PUA_MAX_SHARE:.0%})")
    # Fast path: ASCII letters and digits alone already make it language-like
    # (collapsing symbol runs below only raises that share).
    if _ascii_alnum(rest) >= SOUP_ALNUM_SHARE * chars:
        return None
    collapsed = _RUN.sub(_collapse, rest)
    visible = "".join(collapsed.split())
    if not visible:
        return None
    alnum = sum(1 for ch in visible if unicodedata.category(ch)[0] in "LMN")
    alnum_share = alnum / len(visible)
    if alnum_share >= SOUP_ALNUM_SHARE:
        return None
    tokens = collapsed.split()
    words = sum(1 for tok in tokens if _token_is_wordlike(tok))
    word_share = words / len(tokens)
    if word_share >= SOUP_WORD_SHARE:
        return None
    return (f"symbol soup: letters and digits are {alnum_share:.0%} of characters "
            f"(< {SOUP_ALNUM_SHARE:.0%}) and {words} of {len(tokens)} tokens are "
            f"word-like ({word_share:.0%} < {SOUP_WORD_SHARE:.0%})")


def assess_text_layer(text: str, *, page_area: float, image_area: float = 0.0,
                      min_chars: int = 20) -> TextLayerVerdict:
    """Judge a page's extracted ``text`` (see the module docstring for the rules).

    ``page_area`` and ``image_area`` (the area of the page covered by images, summed)
    are in PDF points squared; a non-positive ``page_area`` counts as no coverage.

    >>> assess_text_layer("   ", page_area=500_000).reason
    'missing'
    >>> assess_text_layer("Привет, мир! Это обычный текст на русском языке.",
    ...                   page_area=500_000).usable
    True
    """
    chars = len("".join(text.split())) + len(_SPACE_CONTROLS.findall(text))
    coverage = 0.0
    if page_area > 0 and image_area > 0:
        coverage = min(1.0, image_area / page_area)
    if coverage >= SCANNED_MIN_COVERAGE:
        limit = max(min_chars, round(SCANNED_CHARS_PER_A4 * min(image_area, page_area)
                                     / A4_AREA_PT2))
        if chars < limit:
            return TextLayerVerdict(
                usable=False, reason="scanned",
                detail=(f"images cover {coverage:.0%} of the page (>= "
                        f"{SCANNED_MIN_COVERAGE:.0%}) and the text layer has {chars} "
                        f"characters (< {limit})"),
                chars=chars, image_coverage=coverage)
    if chars < min_chars:
        return TextLayerVerdict(
            usable=False, reason="missing",
            detail=(f"{chars} characters (< {min_chars}); images cover {coverage:.0%} "
                    f"of the page"),
            chars=chars, image_coverage=coverage)
    garbled = _garbled(text, chars)
    if garbled is not None:
        return TextLayerVerdict(usable=False, reason="garbled", detail=garbled,
                                chars=chars, image_coverage=coverage)
    return TextLayerVerdict(
        usable=True, reason="ok",
        detail=f"{chars} characters; images cover {coverage:.0%} of the page",
        chars=chars, image_coverage=coverage)
