"""Text lines from glyph marks (no model) and OcrEngine.skim: a few lines read without the
detector, on real rendered pages of the sample handbook (real RapidOCR, no mocks)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pymupdf
import pytest

import ragnest.media.glyphs as glyphs_module
import ragnest.media.ocr as ocr_module
from ragnest.errors import ConfigError
from ragnest.media.glyphs import GlyphLine, glyph_lines, text_share
from ragnest.media.ocr import OcrEngine, pick_lines
from ragnest.media.render import render_array
from ragnest.types import ImageRef

pytest.importorskip("rapidocr")

HANDBOOK = Path(__file__).resolve().parents[2] / "examples" / "docs" / "nimbus3_handbook.pdf"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def longest_block(page: int) -> tuple[tuple[float, float, float, float], str, int]:
    """The page's longest text block: its box (points), its text and its visual rows."""
    with pymupdf.open(HANDBOOK) as doc:
        blocks = [b for b in doc[page - 1].get_text("blocks") if b[6] == 0]
        best = max(blocks, key=lambda b: len(b[4].split()))
        dict_blocks = doc[page - 1].get_text("dict", clip=pymupdf.Rect(best[:4]))["blocks"]
    rows = {round(line["bbox"][3]) for b in dict_blocks for line in b.get("lines", [])}
    return tuple(best[:4]), best[4], len(rows)  # visual rows: distinct baselines


def crop(page: int, clip: tuple[float, float, float, float], dpi: int = 110) -> np.ndarray:
    x0, y0, x1, y1 = clip
    return render_array(ImageRef(source=str(HANDBOOK), page=page,
                                 clip=(x0 - 4, y0 - 4, x1 + 4, y1 + 4), dpi=dpi))


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    eng = OcrEngine()
    eng.warm_up()
    return eng


def test_module_exports() -> None:
    assert sorted(glyphs_module.__all__) == sorted(
        ["GlyphLine", "TextShare", "as_rgb", "glyph_lines", "resize", "text_share"])
    assert "pick_lines" in ocr_module.__all__ and "text_share" in ocr_module.__all__


@pytest.mark.parametrize("page", [2, 4, 5])
def test_glyph_lines_find_the_lines_and_words_of_a_real_passage(page: int) -> None:
    clip, text, n_lines = longest_block(page)
    image = crop(page, clip)
    lines = glyph_lines(image)
    assert all(isinstance(line, GlyphLine) for line in lines)
    assert len(lines) == n_lines, [line.bbox for line in lines]
    found = sum(len(line.words) for line in lines)
    assert abs(found - len(text.split())) <= 0.1 * len(text.split()) + 1
    height, width = image.shape[:2]
    for line in lines:  # boxes inside the image, words inside their line, left to right
        x0, y0, x1, y1 = line.bbox
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        assert all(x0 <= a < b <= x1 for a, b in line.words)
        assert [a for a, _ in line.words] == sorted(a for a, _ in line.words)
    assert [line.bbox[1] for line in lines] == sorted(line.bbox[1] for line in lines)


def test_no_lines_in_blank_or_ruled_images() -> None:
    blank = np.full((80, 300, 3), 255, np.uint8)
    assert glyph_lines(blank) == [] and text_share(blank).glyphs == 0
    ruled = blank.copy()
    ruled[20, 10:290] = 0
    ruled[10:70, 150] = 0
    assert glyph_lines(ruled) == []


def test_pick_lines_reads_the_middle_first_within_the_budget() -> None:
    clip, _, _ = longest_block(4)
    image = crop(4, clip)
    lines = glyph_lines(image)
    boxes = pick_lines(lines, image.shape[0], 40)
    assert boxes
    middle = min(lines, key=lambda ln: abs((ln.bbox[1] + ln.bbox[3]) / 2 - image.shape[0] / 2))
    assert boxes[0][1] == middle.bbox[1]  # the line nearest the middle comes first
    chars = sum((b[2] - b[0]) / (0.9 * middle.height) for b in boxes)
    assert chars <= 40 + 10  # about the budget (a box keeps its margins)
    assert len(pick_lines(lines, image.shape[0], 10_000)) >= len(lines)  # all of it


def test_skim_reads_the_middle_words_correctly_and_faster_than_a_full_read(engine) -> None:
    clip, text, _ = longest_block(4)
    image = crop(4, clip)
    page_words = set(words(text))
    t0 = time.process_time()
    full = engine.read(image)
    full_cpu = time.process_time() - t0
    t0 = time.process_time()
    skim = engine.skim(image, chars=60)
    skim_cpu = time.process_time() - t0
    read = words(" ".join(line.text for line in skim))
    assert 6 <= len(read) <= 20, read
    assert sum(w in page_words for w in read) >= 0.9 * len(read), read
    assert len(read) < len(words(" ".join(line.text for line in full)))
    assert skim_cpu < full_cpu  # no detector, and a part of the lines
    assert engine.skim(np.full((50, 200, 3), 255, np.uint8)) == []
    with pytest.raises(ConfigError, match="chars must be at least 1"):
        engine.skim(image, chars=0)
