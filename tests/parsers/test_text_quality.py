"""assess_text_layer(): usable text layers vs pages that need OCR."""

from __future__ import annotations

import pytest

from ragnest.parsers.text_quality import (
    MISSING_OCR_MIN_COVERAGE,
    TextLayerVerdict,
    assess_text_layer,
)

A4 = 595.0 * 842.0

PROSE = (
    "Descaling the espresso machine. Limescale builds up in the boiler and the pump over "
    "time, reducing water flow and temperature stability. Run the descaling programme "
    "every eight weeks, or when the indicator lights up. Use only the descaler "
    "recommended in section 4.2; vinegar damages the seals."
)
CODE = '''def _reading_order(blocks: list[tuple]) -> list[tuple]:
    blocks = sorted(blocks, key=lambda b: (b[1], b[0]))
    ordered: list[tuple] = []
    for block in blocks:
        if row and overlap < 0.5 * min(first[3] - first[1], block[3] - block[1]):
            ordered.extend(sorted(row, key=lambda b: b[0]))
    return ordered
for (int i = 0; i < n; ++i) { a[i] = b[i] * 2; } // {"a": [1, 2, {"b": null}]}
x <- c(1, 2, 3); y <- x^2 + 3*x - 1; plot(x, y, type = "l")
if [[ -z "${HOME:-}" ]]; then echo "$@" >&2; exit 1; fi'''
NUMBERS = '''Quarter  Revenue   Cost     Margin
Q1 2023  1,234.5   987.2    +20.0%
Q2 2023  1,402.9   1,010.4  +28.0%
Q3 2023  1,377.0   1,105.8  -19.7%
Q4 2023  1,512.3   1,120.1  +25.9%
2.50  3.75  -0.125  1e-6  0.001  99.9  (12)  [3]  4/5  $12  7'''
FORMULAS = '''x = (\u2212b \u00b1 \u221a(b\u00b2 \u2212 4ac)) / 2a
\u222b\u2080^\u221e e^{\u2212x\u00b2} dx = \u221a\u03c0 / 2
\u2211_{i=1}^{n} i = n(n+1)/2 , \u2200\u03b5>0 \u2203\u03b4>0 : |x\u2212y|<\u03b4 \u21d2 |f(x)\u2212f(y)|<\u03b5
E = mc\u00b2 ; \u2207\u00b7E = \u03c1/\u03b5\u2080 ; \u2202u/\u2202t = \u03b1 \u2207\u00b2u'''
CHINESE = ("本手册介绍咖啡机的安装、使用和维护。请每八周除垢一次，以保持最佳性能。"
           "警告：请勿使用醋。日本語の取扱説明書もあります。")
RUSSIAN = ("Руководство по эксплуатации кофемашины. Удаляйте накипь каждые восемь недель, "
           "чтобы сохранить давление насоса.")
GREEK = ("Οδηγίες χρήσης της μηχανής καφέ. Αφαιρείτε τα άλατα κάθε οκτώ εβδομάδες για "
         "καλύτερη απόδοση.")
ARABIC = "دليل استخدام آلة القهوة. قم بإزالة الترسبات كل ثمانية أسابيع للحفاظ على ضغط المضخة."
HINDI = "कॉफी मशीन का उपयोगकर्ता पुस्तिका। हर आठ सप्ताह में मशीन की सफाई करें।"
TOC = ("Contents\nIntroduction ..................... 1\nInstallation ..................... 3\n"
       "Maintenance ...................... 17\nSignature: ________________________")
PUA_BULLETS = "\n".join(f"\uf0b7 Step {w}" for w in ("one", "two", "three", "four", "five"))
BROKEN_LIGATURES = PROSE.replace("fi", "\ufffd").replace("fl", "\ufffd")

CID = " ".join(f"(cid:{i})(cid:{i + 7})(cid:{i + 3})(cid:{i + 11})" for i in range(3, 40))
CID_IN_WORDS = "The (cid:3)(cid:17)(cid:4) pump (cid:9)(cid:12)(cid:44) pressure (cid:71) " * 6
REPLACEMENT = "\ufffd\ufffd\ufffd\ufffd \ufffd\ufffd\ufffd \ufffd\ufffd\ufffd\ufffd\ufffd 15 " * 10
# A symbolic TrueType font without ToUnicode: every glyph lands at U+F0xx.
PUA_SOUP = " ".join("".join(chr(0xF020 + (i * 7 + j) % 200) for j in range(6))
                    for i in range(40))
CONTROLS = "".join(chr(3 + (i * 5) % 25) for i in range(300))  # glyph ids as characters
SYMBOL_SOUP = "!\"#$ %&'()* +,-./ :;<=>? @[\\]^ `{|}~ " * 6 + "3+$\"'&)/5-4 ,.#$%& '()*+ " * 5


@pytest.mark.parametrize("text", [
    PROSE, CODE, NUMBERS, FORMULAS, CHINESE, RUSSIAN, GREEK, ARABIC, HINDI, TOC, PUA_BULLETS,
    BROKEN_LIGATURES,
], ids=["prose", "code", "numbers", "formulas", "chinese", "russian", "greek", "arabic",
        "hindi", "toc", "pua-bullets", "broken-ligatures"])
def test_real_text_is_ok(text: str) -> None:
    verdict = assess_text_layer(text, page_area=A4)
    assert verdict == TextLayerVerdict(usable=True, reason="ok", detail=verdict.detail,
                                       chars=verdict.chars, image_coverage=0.0)
    assert not verdict.needs_ocr
    assert verdict.chars == sum(1 for ch in text if not ch.isspace())


@pytest.mark.parametrize("text", [
    CID, CID_IN_WORDS, REPLACEMENT, PUA_SOUP, CONTROLS, SYMBOL_SOUP,
], ids=["cid", "cid-in-words", "replacement", "pua-soup", "controls", "symbol-soup"])
def test_garbled(text: str) -> None:
    verdict = assess_text_layer(text, page_area=A4, image_area=0.05 * A4)
    assert (verdict.usable, verdict.reason) == (False, "garbled")
    assert verdict.needs_ocr
    assert "%" in verdict.detail


def test_missing() -> None:
    for text in ("", "  \n\t ", "12", "Page 3 of 7"):
        verdict = assess_text_layer(text, page_area=A4)
        assert (verdict.usable, verdict.reason) == (False, "missing")
        assert not verdict.needs_ocr  # a blank page: nothing to OCR
    # A figure-only page: worth OCR once images cover enough of it.
    figure = assess_text_layer("Fig. 3", page_area=A4, image_area=0.4 * A4)
    assert figure.reason == "missing" and figure.needs_ocr
    logo = assess_text_layer("", page_area=A4, image_area=0.02 * A4)
    assert logo.reason == "missing" and not logo.needs_ocr
    edge = assess_text_layer("", page_area=A4, image_area=MISSING_OCR_MIN_COVERAGE * A4)
    assert edge.needs_ocr
    assert assess_text_layer("short", page_area=A4, min_chars=3).reason == "ok"


def test_scanned() -> None:
    for text in ("", "Scanned by OfficeJet 2023-04-02 p. 3", "x" * 150):
        verdict = assess_text_layer(text, page_area=A4, image_area=A4)
        assert (verdict.usable, verdict.reason) == (False, "scanned"), text
        assert verdict.needs_ocr and verdict.image_coverage == 1.0
        assert "100%" in verdict.detail
    # Overlapping images can sum past the page: coverage is capped at 1.
    assert assess_text_layer("", page_area=A4, image_area=3 * A4).image_coverage == 1.0
    # A searchable scan (full invisible OCR layer) or a designed page with a full-page
    # background image and real text is fine.
    full = assess_text_layer(PROSE * 8, page_area=A4, image_area=0.98 * A4)
    assert full.reason == "ok" and full.usable
    # Under 70% coverage short text is "missing", not "scanned".
    assert assess_text_layer("", page_area=A4, image_area=0.6 * A4).reason == "missing"


def test_scanned_limit_grows_with_the_image() -> None:
    text = PROSE[:240]  # ~200 characters: a token text layer for an A3 poster scan
    a3 = 2 * A4
    assert assess_text_layer(text, page_area=a3, image_area=a3).reason == "scanned"
    assert assess_text_layer(text, page_area=A4 / 4, image_area=A4 / 4).reason == "ok"


def test_garbled_text_on_a_scan_is_scanned_or_garbled() -> None:
    assert assess_text_layer(CID[:100], page_area=A4, image_area=A4).reason == "scanned"
    assert assess_text_layer(CID, page_area=A4, image_area=A4).reason == "garbled"


def test_degenerate_page_area() -> None:
    verdict = assess_text_layer(PROSE, page_area=0.0, image_area=100.0)
    assert verdict.reason == "ok" and verdict.image_coverage == 0.0
