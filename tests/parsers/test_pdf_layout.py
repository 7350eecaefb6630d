"""PdfParser's layout: interleaved chunks, figures with captions, tables, columns, ranges."""

from __future__ import annotations

import pickle
from pathlib import Path

import pymupdf
import pytest

from ragnest.parsers.layout import Box, attach_captions, is_heading, reading_order
from ragnest.parsers.pdf import PdfParser
from ragnest.types import Chunk, Source

HANDBOOK = Path(__file__).resolve().parents[2] / "examples" / "docs" / "nimbus3_handbook.pdf"


@pytest.fixture(scope="module")
def interleaved() -> list[Chunk]:
    return list(PdfParser(chunking="interleaved", ocr="never").parse(Source.from_path(HANDBOOK)))


def test_figure_is_an_image_segment_in_order_with_its_caption(interleaved) -> None:
    chunk = next(c for c in interleaved if any(s.role == "figure" for s in c.segments))
    assert chunk.page == 3
    kinds = [(s.kind, s.role) for s in chunk.segments]
    at = kinds.index(("image", "figure"))
    # The sentence introducing the figure comes before it, the caption right after it.
    assert "Figure 1 shows" in chunk.segments[at - 1].text
    assert chunk.segments[at + 1].role == "caption"
    assert chunk.segments[at + 1].text.startswith("Figure 1: Front view")
    figure = chunk.segments[at]
    # The labels drawn beside the figure belong to it and make it searchable.
    assert "Pressure gauge" in figure.text and "Drip tray" in figure.text
    assert figure.image is not None and figure.image.clip == figure.bbox
    assert figure.image.page == 3 and figure.image.dpi == 144
    assert figure.bbox[0] < figure.bbox[2] and figure.bbox[1] < figure.bbox[3]
    # The caption's words are in the chunk text an embedder reads.
    assert "Front view of the Nimbus 3" in chunk.text


def test_figure_crop_renders_from_its_reference(interleaved) -> None:
    from ragnest.media.render import render_array

    seg = next(s for c in interleaved for s in c.segments if s.role == "figure")
    arr = render_array(seg.image)
    x0, y0, x1, y1 = seg.bbox
    assert arr.shape[2] == 3
    assert abs(arr.shape[1] - (x1 - x0) * 2) <= 2 and abs(arr.shape[0] - (y1 - y0) * 2) <= 2
    assert arr.std() > 10  # not blank


def test_ruled_table_becomes_markdown(interleaved) -> None:
    tables = [s for c in interleaved for s in c.segments if s.kind == "table"]
    assert {s.page for s in tables} == {6, 7}
    errors = next(s for s in tables if s.page == 6)
    lines = errors.text.splitlines()
    assert lines[0] == "|Code|Meaning|What to do|"
    assert lines[1] == "|---|---|---|"
    assert any(line.startswith("|E03|Low water flow") for line in lines)
    assert errors.image is not None and errors.image.clip == errors.bbox
    # The cells are not repeated as loose text segments.
    page6 = [s for c in interleaved if c.page == 6 for s in c.segments if s.kind == "text"]
    assert not any(s.text.startswith("E03 Low water flow") for s in page6)


def test_headings_start_chunks_and_chunks_keep_regions(interleaved) -> None:
    page5 = [c for c in interleaved if c.page == 5]
    firsts = [c.segments[0].text for c in page5]
    assert {"Weekly", "Descaling", "Water filter"} <= set(firsts)
    # A heading directly followed by a sub-heading stays with it.
    assert [s.text for s in page5[0].segments[:2]] == ["Cleaning and descaling", "Daily"]
    for chunk in interleaved:
        assert chunk.kind == "interleaved" and chunk.pages in ((), (chunk.page,))
        assert chunk.bbox is not None
        assert chunk.image is not None and chunk.image.clip == chunk.bbox
        assert all(s.page == chunk.page for s in chunk.segments if s.role != "overlap")
    assert len({c.id for c in interleaved}) == len(interleaved)


def test_page_mode_keeps_the_layout_as_segments() -> None:
    chunks = list(PdfParser(ocr="never").parse(Source.from_path(HANDBOOK)))
    page3 = chunks[2]
    assert page3.kind == "page" and page3.image is not None and page3.image.clip is None
    roles = [s.role for s in page3.segments]
    assert roles[roles.index("figure") + 1] == "caption"
    assert all(s.bbox for s in page3.segments)
    assert Chunk.from_payload(page3.id, page3.to_payload()) == page3


def test_long_section_splits_with_overlap(tmp_path: Path) -> None:
    sentences = [f"Sentence number {i} explains step {i} of the procedure." for i in range(80)]
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(50, 50, 545, 800), " ".join(sentences), fontsize=7)
    doc.save(tmp_path / "long.pdf")
    chunks = list(PdfParser(chunking="interleaved", max_chars=600, overlap=100, ocr="never")
                  .parse(Source.from_path(tmp_path / "long.pdf")))
    assert len(chunks) > 3
    assert all(len(c.text) <= 600 + 100 for c in chunks)
    for prev, nxt in zip(chunks, chunks[1:]):
        assert nxt.segments[0].role == "overlap"
        assert nxt.segments[0].text in prev.text


def test_two_columns_read_column_by_column(tmp_path: Path) -> None:
    left = "Left column text. " * 30
    right = "Right column text. " * 30
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(50, 40, 545, 70), "A title across both columns",
                        fontsize=16)
    for i in range(3):  # three paragraphs per column
        y = 90 + i * 200
        page.insert_textbox(pymupdf.Rect(50, y, 285, y + 180), left, fontsize=9)
        page.insert_textbox(pymupdf.Rect(310, y, 545, y + 180), right, fontsize=9)
    doc.save(tmp_path / "cols.pdf")
    chunk = next(PdfParser(ocr="never").parse(Source.from_path(tmp_path / "cols.pdf")))
    texts = [s.text for s in chunk.segments]
    assert texts[0] == "A title across both columns"
    sides = ["L" if t.startswith("Left") else "R" for t in texts[1:]]
    assert sides == ["L", "L", "L", "R", "R", "R"]


def test_page_ranges_give_the_same_chunks() -> None:
    parser = PdfParser(chunking="interleaved", ocr="never")
    source = Source.from_path(HANDBOOK)
    whole = list(parser.parse(source))
    parts = [*parser.parse_pages(source, 0, 3), *parser.parse_pages(source, 3, 5),
             *parser.parse_pages(source, 5, None)]
    assert [c.id for c in parts] == [c.id for c in whole]
    assert parser.page_count(source) == 8
    clone = pickle.loads(pickle.dumps(parser))
    assert clone == parser


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="chunking"):
        PdfParser(chunking="pages")
    with pytest.raises(ValueError, match="ocr"):
        PdfParser(ocr="sometimes")
    with pytest.raises(ValueError, match="overlap"):
        PdfParser(max_chars=100, overlap=100)


# ------------------------------------------------------------------ pure layout rules
def test_key_value_rows_are_not_mistaken_for_columns() -> None:
    rows = []
    for i in range(8):
        y = 100 + 20 * i
        rows.append(Box("text", (50, y, 150, y + 12), f"key {i}"))
        rows.append(Box("text", (300, y, 500, y + 12), f"value {i}"))
    assert [b.text for b in reading_order(rows)][:4] == ["key 0", "value 0", "key 1", "value 1"]


def test_caption_below_or_above_moves_next_to_its_visual() -> None:
    table = Box("table", (50, 300, 500, 400), "|a|b|")
    above = Box("text", (50, 280, 400, 292), "Table 2. Settings")
    body = Box("text", (50, 100, 500, 250), "Body text that mentions Table 2 in passing.")
    out = attach_captions([body, above, table])
    assert [b.kind for b in out] == ["text", "table", "text"]
    assert out[2].role == "caption" and out[0].role is None


def test_heading_rules() -> None:
    assert is_heading(Box("text", (0, 0, 1, 1), "Maintenance", size=10.0, bold=1.0), 10.0)
    assert not is_heading(Box("text", (0, 0, 1, 1), "A bold sentence.", size=10.0, bold=1.0),
                          10.0)
    assert not is_heading(Box("text", (0, 0, 1, 1), "12.5", size=18.0), 10.0)
