"""Screenshot queries: the text-share test before OCR, route weights that follow what the
crop is, and crops of real pages found with the lite defaults (real RapidOCR, real store)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pymupdf
import pytest

from ragnest import Pipeline, Query
from ragnest.config import RetrievalConfig, parse_config
from ragnest.errors import ConfigError
from ragnest.media.encode import render_png
from ragnest.media.ocr import TextShare, text_share
from ragnest.media.render import render_array
from ragnest.retrieval import CropQuery, ImageQueryReader, route_weights
from ragnest.retrieval.planner import check_weights
from ragnest.types import ImageRef

QUERY_CHARS = RetrievalConfig().image_chars or 0  # what the reader skims by default

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples" / "docs"
HANDBOOK = EXAMPLES / "nimbus3_handbook.pdf"
LAB = EXAMPLES / "lab_safety_guide.pdf"

pytest.importorskip("rapidocr")


def passages(path: Path, page: int, n: int = 2) -> list[tuple[float, float, float, float]]:
    """The ``n`` longest text blocks of a page (PDF points): screenshots of passages."""
    with pymupdf.open(path) as doc:
        blocks = [b for b in doc[page - 1].get_text("blocks") if b[6] == 0]
    blocks.sort(key=lambda b: -len(b[4].split()))
    return [tuple(b[:4]) for b in blocks[:n]]


def crop_ref(path: Path, page: int, clip: tuple[float, float, float, float]) -> ImageRef:
    """A screenshot of a region at 110 dpi, with 4 pt more margin than the region."""
    x0, y0, x1, y1 = clip
    return ImageRef(source=str(path), page=page, clip=(x0 - 4, y0 - 4, x1 + 4, y1 + 4), dpi=110)


def save_crop(ref: ImageRef, out: Path) -> Path:
    out.write_bytes(render_png(ref))
    return out


FIGURE = (HANDBOOK, 3, (124.0, 177.0, 485.0, 377.0))  # the diagram on page 3
TABLE = (HANDBOOK, 6, (64.0, 139.0, 531.0, 348.0))  # the error-code table on page 6


@pytest.mark.parametrize("dpi", [72, 110, 220])  # screenshots at several zooms
def test_text_share_tells_text_from_graphics_on_real_crops(dpi):
    def share(path: Path, page: int, clip: tuple[float, float, float, float]) -> TextShare:
        return text_share(render_array(replace(crop_ref(path, page, clip), dpi=dpi)))

    text = [share(HANDBOOK, p, c) for p in (1, 4, 5, 8) for c in passages(HANDBOOK, p)]
    text += [share(LAB, p, c) for p in (1, 3) for c in passages(LAB, p)]
    figure = share(*FIGURE)
    threshold = RetrievalConfig().image_text
    assert all(isinstance(s, TextShare) for s in text)
    assert min(s.share for s in text) >= threshold + 0.1, text
    assert all(s.glyphs >= 30 for s in text)
    # The diagram has labels (glyphs) but most of its ink is shapes and arrows.
    assert figure.glyphs > 0 and figure.share <= threshold - 0.2, figure


def test_reader_skips_ocr_for_graphics_and_reads_text(tmp_path):
    reader = ImageQueryReader(RetrievalConfig(image_ocr="auto"))
    try:
        figure = reader.read(Query(image=crop_ref(*FIGURE)))
        assert isinstance(figure, CropQuery)
        assert figure.kind == "graphics" and not figure.ocr and figure.text is None
        assert reader._engine is None  # the OCR model was never loaded
        clip = passages(HANDBOOK, 5, 1)[0]
        text = reader.read(Query(image=crop_ref(HANDBOOK, 5, clip), filters={"page": 5}))
        assert isinstance(text, CropQuery) and text.kind == "text" and text.ocr
        assert text.filters == {"page": 5}
        with pymupdf.open(HANDBOOK) as doc:
            words = set(doc[4].get_textbox(pymupdf.Rect(clip)).lower().split())
        # About 80 characters are read (the line nearest the middle), all of them right.
        read = (text.text or "").lower().split()
        assert 8 <= len(read) < len(words) and len(set(read) & words) >= 0.85 * len(read)
        # A query that has text is left alone; image_ocr=True reads graphics too.
        asked = Query(text="pump", image=crop_ref(*FIGURE))
        assert reader.read(asked) is asked
    finally:
        reader.close()
    always = ImageQueryReader(RetrievalConfig(image_ocr=True, image_chars=None))  # every line
    try:
        figure = always.read(Query(image=crop_ref(*FIGURE)))
        assert isinstance(figure, CropQuery) and figure.ocr and figure.kind == "graphics"
        whole = always.read(Query(image=crop_ref(HANDBOOK, 5, clip)))
        assert len(set((whole.text or "").lower().split()) & words) >= 0.6 * len(words)
    finally:
        always.close()


def test_route_weights_follow_the_crop_and_keep_other_weights():
    config = RetrievalConfig(weights={"dense": 2.0, "bm25": 1.0, "visual": 3.0},
                             image_weights={"text": {"visual": 0.25}, "graphics": {"bm25": 0.5}})
    ref = ImageRef(blob="crop.png")
    assert route_weights(Query(text="pump"), config) == {"dense": 2.0, "bm25": 1.0, "visual": 3.0}
    assert route_weights(Query(text="pump", image=ref), config)["visual"] == 3.0
    text = CropQuery(text="pump", image=ref, kind="text", text_share=0.97)
    assert route_weights(text, config) == {"dense": 2.0, "bm25": 1.0, "visual": 0.25}
    graphics = CropQuery(image=ref, kind="graphics", text_share=0.1)
    assert route_weights(graphics, config) == {"dense": 2.0, "bm25": 0.5, "visual": 3.0}
    mixed = CropQuery(text="pump", image=ref, kind="mixed", text_share=0.6)
    assert route_weights(mixed, config) == config.weights  # no mixed entry: weights as given
    # Without image_weights, a user's weights hold for every query.
    plain = RetrievalConfig(weights={"visual": 3.0})
    assert route_weights(text, plain) == {"visual": 3.0}


def test_image_query_settings_are_validated():
    with pytest.raises(ConfigError, match="image_weights.text names 'visaul'.*'visual'"):
        check_weights(RetrievalConfig(image_weights={"text": {"visaul": 1.0}}),
                      ["dense", "visual"])
    def config(retrieval: dict) -> None:
        parse_config({"components": {"pdf": {"type": "parser/pdf"},
                                     "bm25": {"type": "embedder/bm25"},
                                     "store": {"type": "store/qdrant"}},
                      "pipeline": {"parsers": ["pdf"], "embedders": ["bm25"], "store": "store",
                                   "retrieval": retrieval}}, env={}, source="src.yaml")

    config({"image_ocr": "auto", "image_text": 0.6, "image_mixed": 0.4,
            "image_weights": {"text": {"bm25": 2.0}, "mixed": {"bm25": 1.0}}})
    with pytest.raises(ConfigError, match="image_weights: keys must be .*'text', 'mixed'"):
        config({"image_weights": {"txt": {}}})
    with pytest.raises(ConfigError, match="image_ocr: expects true or false or one of 'auto'"):
        config({"image_ocr": "sometimes"})
    with pytest.raises(ConfigError, match="image_text: must be at least 0"):
        config({"image_text": -0.1})


def found(rag: Pipeline, png: Path, path: Path, page: int) -> tuple[int | None, Query]:
    """Rank of the crop's page in the top 5 (``None``: not there) and the query as read."""
    hits = rag.retrieve(Pipeline.image_query(png), k=5)
    ranks = [i for i, h in enumerate(hits)
             if h.chunk.page == page and Path(h.chunk.source).name == path.name]
    assert hits.query is not None
    return (ranks[0] if ranks else None), hits.query


def test_text_and_figure_crops_find_their_page_first_with_the_defaults(rag, tmp_path):
    assert rag.retrieval.image_ocr == "auto" and rag.retrieval.image_weights
    longer = []
    for page in (2, 4, 7):
        clip = passages(HANDBOOK, page, 1)[0]
        png = save_crop(crop_ref(HANDBOOK, page, clip), tmp_path / f"text{page}.png")
        rank, query = found(rag, png, HANDBOOK, page)
        assert rank == 0, f"text passage of page {page}: rank {rank}"
        assert isinstance(query, CropQuery) and query.kind == "text" and query.ocr
        # Found from about a line of it (the reader's budget), not the whole passage.
        assert query.text and len(query.text) <= 1.5 * QUERY_CHARS, query.text
        with pymupdf.open(HANDBOOK) as doc:
            longer.append(len(doc[page - 1].get_textbox(pymupdf.Rect(clip))) > 2 * QUERY_CHARS)
    assert any(longer)  # the budget cut a passage short
    # One row of the error-code table: text in ruled cells (a table's fingerprint is of
    # the whole table, so the row is found by its words).
    row = save_crop(crop_ref(HANDBOOK, 6, passages(HANDBOOK, 6)[1]), tmp_path / "row.png")
    rank, query = found(rag, row, HANDBOOK, 6)
    assert rank == 0 and isinstance(query, CropQuery) and query.kind == "mixed" and query.ocr
    figure = save_crop(crop_ref(*FIGURE), tmp_path / "figure.png")
    rank, query = found(rag, figure, HANDBOOK, 3)
    assert rank == 0
    assert isinstance(query, CropQuery) and query.kind == "graphics" and not query.ocr
    table = save_crop(crop_ref(*TABLE), tmp_path / "table.png")
    assert found(rag, table, HANDBOOK, 6)[0] == 0


def hatched_pdf(path: Path) -> Path:
    """A one-page PDF whose only content is a drawing of parallel dashed lines (the
    hatching of a technical drawing): every dash is a glyph-sized mark."""
    doc = pymupdf.open()
    page = doc.new_page(width=300, height=220)
    shape = page.new_shape()
    for i in range(8):
        shape.draw_line((20 + i * 30, 200), (90 + i * 30, 20))
    shape.finish(color=(0, 0, 0), width=0.8, dashes="[3 3] 0")
    shape.commit()
    doc.save(path)
    doc.close()
    return path


def test_a_dashed_line_drawing_is_not_routed_as_text(tmp_path):
    pdf = hatched_pdf(tmp_path / "hatched.pdf")
    ref = ImageRef(source=str(pdf), page=1, clip=(10.0, 10.0, 290.0, 210.0), dpi=110)
    share = text_share(render_array(ref))
    config = RetrievalConfig(image_ocr="auto", weights={"dense": 1.0, "bm25": 1.0, "visual": 3.0},
                             image_weights={"text": {"visual": 0.5}})
    assert share.share >= config.image_text  # its marks alone look like text ...
    reader = ImageQueryReader(config)
    try:
        query = reader.read(Query(image=ref))
    finally:
        reader.close()
    # ... but OCR reads no words in it: it counts as graphics, and the visual route leads.
    assert isinstance(query, CropQuery) and query.ocr and query.kind == "graphics"
    assert not query.text
    assert route_weights(query, config) == {"dense": 1.0, "bm25": 1.0, "visual": 3.0}
