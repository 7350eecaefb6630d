"""PdfParser's per-page OCR fallback (real RapidOCR on rendered pages)."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pymupdf
import pytest

from ragnest.errors import MissingDependencyError
from ragnest.parsers.pdf import PdfParser
from ragnest.types import Source

pytest.importorskip("rapidocr")

WORDS = "Descale the espresso machine every eight weeks"


def _scan_of(text: str, dpi: int = 150) -> bytes:
    """PNG of an A4 page with ``text`` in large type, as a scanner would produce."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(60, 80, 540, 400), text, fontsize=22)
    return page.get_pixmap(dpi=dpi).tobytes("png")


def _scanned_pdf(path: Path, *, hidden_text: str = "", size: tuple[float, float] = (595, 842),
                 blank_second_page: bool = False) -> Path:
    doc = pymupdf.open()
    page = doc.new_page(width=size[0], height=size[1])
    page.insert_image(page.rect, stream=_scan_of(WORDS))
    if hidden_text:  # an invisible, useless text layer over the scan (render mode 3)
        page.insert_textbox(page.rect + (20, 20, -20, -20), hidden_text, fontsize=8,
                            render_mode=3)
    if blank_second_page:
        doc.new_page()
    doc.save(path)
    return path


def _words(text: str) -> set[str]:
    return {w.strip(".,").lower() for w in text.split()}


def test_scanned_page_is_read_with_ocr(tmp_path: Path) -> None:
    path = _scanned_pdf(tmp_path / "scan.pdf", blank_second_page=True)
    scan, blank = PdfParser().parse(Source.from_path(path))
    assert scan.metadata["text_source"] == "ocr"
    assert scan.metadata["text_layer"] in ("scanned", "missing")
    found = _words(scan.text)
    assert len(found & _words(WORDS)) >= 6
    # OCR lines carry boxes in PDF points, inside the page.
    ocr = [s for s in scan.segments if s.role == "ocr"]
    assert ocr and all(0 <= s.bbox[0] < s.bbox[2] <= 595 and 0 <= s.bbox[1] < s.bbox[3] <= 842
                       for s in ocr)
    assert ocr[0].bbox[1] < 200  # the words sit at the top of the page
    # The scan itself is not kept as a picture segment; the blank page is not OCR'd.
    assert not any(s.kind == "image" for s in scan.segments)
    assert blank.metadata["text_source"] == "none" and blank.text == ""


def test_garbled_text_layer_is_replaced_by_ocr(tmp_path: Path) -> None:
    garbage = "(cid:3)(cid:17)(cid:4) (cid:9)(cid:12)(cid:44) " * 40
    path = _scanned_pdf(tmp_path / "garbled.pdf", hidden_text=garbage)
    (chunk,) = PdfParser().parse(Source.from_path(path))
    assert chunk.metadata["text_layer"] == "garbled"
    assert chunk.metadata["text_source"] == "ocr"
    assert "cid:" not in chunk.text
    assert len(_words(chunk.text) & _words(WORDS)) >= 6


def test_ocr_never_and_always(tmp_path: Path, pdf_factory) -> None:
    path = _scanned_pdf(tmp_path / "scan.pdf")
    (never,) = PdfParser(ocr="never").parse(Source.from_path(path))
    assert never.metadata["text_source"] == "none" and never.text == ""
    digital = pdf_factory(["The pump builds fifteen bar of pressure in every shot."])
    (always,) = PdfParser(ocr="always").parse(Source.from_path(digital))
    assert always.metadata["text_source"] == "ocr"
    assert {"pump", "pressure"} <= _words(always.text)
    (auto,) = PdfParser().parse(Source.from_path(digital))
    assert auto.metadata["text_source"] == "text-layer"


def test_huge_page_is_rendered_under_the_pixel_cap(tmp_path: Path) -> None:
    path = _scanned_pdf(tmp_path / "poster.pdf", size=(7200, 10000))  # 100 x 139 inches
    parser = PdfParser(ocr="always", ocr_max_pixels=1_000_000)
    (chunk,) = parser.parse(Source.from_path(path))
    dpi = chunk.metadata["ocr_dpi"]
    assert dpi < 150
    assert (7200 * dpi / 72) * (10000 * dpi / 72) <= 1_000_000 * 1.01


def test_missing_ocr_engine_keeps_the_page(tmp_path: Path, monkeypatch, caplog) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "rapidocr", None)  # "import rapidocr" now fails
    path = _scanned_pdf(tmp_path / "scan.pdf")
    with caplog.at_level(logging.WARNING):
        (chunk,) = PdfParser().parse(Source.from_path(path))
    assert chunk.metadata["text_source"] == "none"
    assert "RapidOCR is not installed" in caplog.text
    with pytest.raises(MissingDependencyError):
        list(PdfParser(ocr="always").parse(Source.from_path(path)))


def test_warmed_ocr_parsers_work_in_a_process_pool(tmp_path: Path) -> None:
    """Parsers warmed in the parent (models loaded) are pickled to spawned workers
    without their models, and each worker loads its own."""
    from ragnest.ingest.pool import ParsePool
    from ragnest.parsers.image import ImageParser

    scan = _scanned_pdf(tmp_path / "scan.pdf")
    picture = tmp_path / "scan.png"
    picture.write_bytes(_scan_of(WORDS, dpi=60))
    pdf, image = PdfParser(ocr="always", ocr_dpi=72), ImageParser()
    pdf.warm_up()
    image.warm_up()
    clone = pickle.loads(pickle.dumps(image))  # a loaded model never travels
    assert clone == image and len(_words(next(clone.parse(Source.from_path(picture))).text)
                                  & _words(WORDS)) >= 5
    jobs = [(Source.from_path(scan), pdf), (Source.from_path(picture), image)]
    with ParsePool(workers=2) as pool:
        results = list(pool.map(jobs))
    assert [err for _, _, err in results] == [None, None]
    for _, chunks, _ in results:
        assert len(_words(chunks[0].text) & _words(WORDS)) >= 5, chunks[0].text
    pdf.close()
    image.close()
