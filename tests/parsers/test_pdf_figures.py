"""Figure regions from clustered drawings and the cheap table gate, on generated PDFs."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from ragnest.parsers import layout
from ragnest.parsers.pdf import PdfParser, page_boxes
from ragnest.parsers.pdf_tables import find_tables, table_region
from ragnest.types import Source

PAGE = (0.0, 0.0, 595.0, 842.0)


def test_cluster_rects_joins_pieces_a_few_points_apart() -> None:
    # A vector field: 6 x 6 arrows of 10 x 10 points, 5 points apart.
    arrows = [(100 + 15 * i, 100 + 15 * j, 110 + 15 * i, 110 + 15 * j)
              for i in range(6) for j in range(6)]
    far = [(400, 600, 480, 680)]
    clusters = layout.cluster_rects(arrows + far, page=PAGE, gap=8.0)
    assert clusters == [(100.0, 100.0, 185.0, 185.0), (400.0, 600.0, 480.0, 680.0)]
    # Pieces more than twice the gap apart are never joined.
    assert len(layout.cluster_rects(arrows, page=PAGE, gap=2.0)) == 36


def test_parallel_lines_alone_are_no_cluster_but_a_frame_is() -> None:
    underlines = [(72, 100 + 11 * i, 300, 100.5 + 11 * i) for i in range(10)]
    assert layout.cluster_rects(underlines, page=PAGE, gap=12.0) == []
    frame = [(72, 100, 300, 100.5), (72, 200, 300, 200.5), (72, 100, 72.5, 200),
             (300, 100, 300.5, 200)]
    assert layout.cluster_rects(frame, page=PAGE) == [(72.0, 100.0, 300.5, 200.5)]


def test_cluster_rects_is_fast_on_huge_plots() -> None:
    import time

    dots = [(100 + (i % 300), 100 + (i // 300) * 2, 101 + (i % 300), 101 + (i // 300) * 2)
            for i in range(50_000)]
    t0 = time.perf_counter()
    clusters = layout.cluster_rects(dots, page=PAGE)
    assert len(clusters) == 1
    assert time.perf_counter() - t0 < 2.0


def test_drawing_rects_drop_page_rules_and_backgrounds() -> None:
    kept = layout.drawing_rects([(0, 0, 595, 842), (72, 60, 540, 60.4), (60, 70, 60.3, 800),
                                 (72, 300, 200, 300.4), (100, 100, 200, 180)], page=PAGE)
    assert kept == [(72, 300, 200, 300.4), (100, 100, 200, 180)]
    # The long sides of a box drawn line by line touch its short sides: they stay.
    box = [(72, 400, 500, 400.4), (72, 400, 72.4, 420), (500, 400, 500.4, 420),
           (72, 420, 500, 420.4)]
    assert layout.drawing_rects(box, page=PAGE) == box


def _page_with(draw) -> pymupdf.Document:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 60), "A page with a drawing", fontsize=11)
    draw(page)
    return doc


def _arrows(page: pymupdf.Page) -> None:
    for i in range(6):
        for j in range(6):
            x, y = 200 + 16 * i, 300 + 16 * j
            page.draw_line((x, y), (x + 10, y + 10), width=0.8)
            page.draw_polyline([(x + 6, y + 10), (x + 10, y + 10), (x + 10, y + 6)], width=0.8)


def test_a_figure_of_separate_small_drawings_is_one_figure() -> None:
    doc = _page_with(_arrows)
    boxes = page_boxes(doc[0])
    figures = [b for b in boxes if b.kind == "figure"]
    assert len(figures) == 1
    x0, y0, x1, y1 = figures[0].bbox
    assert x0 <= 201 and y0 <= 301 and x1 >= 289 and y1 >= 389


def _plot(page: pymupdf.Page) -> None:
    page.draw_rect((100, 400, 400, 600), width=0.6)  # axes frame
    for k in range(11):  # ticks, 4 points long
        x = 100 + 30 * k
        page.draw_line((x, 600), (x, 596), width=0.5)
        page.draw_line((100, 400 + 20 * k), (104, 400 + 20 * k), width=0.5)
    page.draw_polyline([(100 + 3 * k, 600 - (k * k) / 50) for k in range(100)], width=0.7)


def _table(page: pymupdf.Page) -> None:
    for r in range(4):
        page.draw_line((72, 100 + 20 * r), (372, 100 + 20 * r), width=0.5)
    for c in range(4):
        page.draw_line((72 + 100 * c, 100), (72 + 100 * c, 160), width=0.5)
    for r in range(3):
        for c in range(3):
            page.insert_text((78 + 100 * c, 114 + 20 * r), f"cell {r}{c}", fontsize=9)


def test_table_gate_skips_plots_and_keeps_ruled_tables() -> None:
    plot = _page_with(_plot)[0]
    assert table_region(plot.get_cdrawings()) is None  # ticks are no rules
    page = _page_with(_table)[0]
    region = table_region(page.get_cdrawings())
    assert region is not None and region[0] < 72 and region[2] > 372
    tables = find_tables(page, "lines", clip=region, paths=page.get_cdrawings())
    assert len(tables) == 1 and "|cell 00|cell 01|cell 02|" in tables[0].text
    # The clipped search finds what the whole-page finder finds.
    assert [t.text for t in tables] == [t.text for t in find_tables(page, "lines")]


def test_framed_code_boxes_do_not_wake_the_table_finder() -> None:
    """Three framed boxes of different widths: four horizontal and three vertical rule
    positions, but no rule crossed by three others, so no grid."""

    def boxes(page: pymupdf.Page) -> None:
        for i, right in enumerate((400, 400, 300)):
            top = 100 + 80 * i
            page.draw_rect(pymupdf.Rect(72, top, right, top + 50), width=0.5)
            page.insert_text((80, top + 20), f"plot sin(x) with lines  # box {i}", fontsize=9)

    page = _page_with(boxes)[0]
    from ragnest.parsers.pdf_tables import _rules

    ys, xs = _rules(page.get_cdrawings())
    assert len(ys) >= 3 and len(xs) >= 3  # the rule count alone would let them through
    assert table_region(page.get_cdrawings()) is None
    grid = _page_with(_table)[0]
    assert table_region(grid.get_cdrawings()) is not None


def test_a_curve_of_tiny_strokes_is_not_handed_to_the_table_finder() -> None:
    """A plotted curve drawn as hundreds of sub-point strokes inside a ruled grid: each
    stroke is "axis-parallel" (too short to be anything else), but none is a rule; the
    finder gets the grid's rules only and still finds the table."""

    def table_and_curve(page: pymupdf.Page) -> None:
        _table(page)
        shape = page.new_shape()
        x, y = 80.0, 150.0
        for _ in range(400):  # a diagonal curve in 0.3-point steps
            shape.draw_line((x, y), (x + 0.3, y + 0.2))
            x, y = x + 0.3, y + 0.2
        shape.finish(width=0.5, closePath=False)
        shape.commit()

    from ragnest.parsers.pdf_tables import _straight_paths

    page = _page_with(table_and_curve)[0]
    paths = page.get_cdrawings()
    region = table_region(paths)
    assert region is not None
    kept = _straight_paths(paths, region)
    assert kept and max(len(p["items"]) for p in kept) < 400  # the curve is left out
    tables = find_tables(page, "lines", clip=region, paths=paths)
    assert len(tables) == 1 and "|cell 00|cell 01|cell 02|" in tables[0].text


def test_an_empty_grid_is_not_a_table() -> None:
    def grid(page: pymupdf.Page) -> None:
        for k in range(5):
            page.draw_line((100, 300 + 40 * k), (400, 300 + 40 * k), width=0.5)
            page.draw_line((100 + 75 * k, 300), (100 + 75 * k, 460), width=0.5)
        page.insert_text((110, 320), "y", fontsize=9)

    page = _page_with(grid)[0]
    assert table_region(page.get_cdrawings()) is not None
    assert find_tables(page, "lines", clip=table_region(page.get_cdrawings()),
                       paths=page.get_cdrawings()) == []


def test_plot_is_a_figure_segment_and_parsing_is_stable(tmp_path: Path) -> None:
    doc = _page_with(lambda p: (_plot(p), _table(p)))
    path = tmp_path / "plot.pdf"
    doc.save(path)
    parser = PdfParser(ocr="never")
    chunks = list(parser.parse(Source.from_path(path)))
    kinds = sorted((s.kind, s.role) for s in chunks[0].segments if s.kind != "text")
    assert kinds == [("image", "figure"), ("table", None)]
    again = list(parser.parse(Source.from_path(path)))
    assert [c.id for c in again] == [c.id for c in chunks]


@pytest.mark.parametrize("gap", [0.0, -1.0])
def test_cluster_rects_tolerates_degenerate_gaps(gap: float) -> None:
    assert layout.cluster_rects([(10, 10, 50, 50)], page=PAGE, gap=gap) == [(10.0, 10.0, 50.0, 50.0)]


def _small_drawing(page: pymupdf.Page) -> None:
    # 30 x 30 points: too small for a figure region (36), big enough to screenshot (24).
    page.draw_circle((300, 500), 15, width=1.0)
    page.draw_line((285, 500), (315, 500), width=0.5)


def test_drawings_the_layout_does_not_call_figures_are_listed_for_fingerprints(
        tmp_path: Path) -> None:
    from ragnest.embedders.thumbnail import REGIONS_KEY, ThumbnailEmbedder
    from ragnest.parsers import pdf as pdf_module

    assert pdf_module._REGIONS == REGIONS_KEY  # the parser and the embedder agree
    doc = _page_with(lambda p: (_small_drawing(p), _arrows(p)))
    path = tmp_path / "drawings.pdf"
    doc.save(path)
    [chunk] = PdfParser(ocr="never").parse(Source.from_path(path))
    assert [s.role for s in chunk.segments if s.kind == "image"] == ["figure"]  # the arrows
    [region] = chunk.metadata[REGIONS_KEY]
    assert 284 <= region[0] <= 286 and 314 <= region[2] <= 316 and region[3] - region[1] >= 29
    embedder = ThumbnailEmbedder()
    try:
        [vectors] = embedder.embed_documents([chunk])
    finally:
        embedder.close()
    assert vectors["crops"].shape == (2, 32 * 32)  # the figure and the small drawing
    # Interleaved: the region goes to the chunk whose box holds it, once.
    chunks = list(PdfParser(ocr="never", chunking="interleaved").parse(Source.from_path(path)))
    assert sum(len(c.metadata.get(REGIONS_KEY, [])) for c in chunks) == 1
