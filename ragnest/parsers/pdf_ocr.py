"""OCR of one PDF page whose text layer is unusable (the PDF parser's OCR path).

The page is rendered from the document the parser already holds open (no second
open, and it works for sources made from bytes), read by the parser's own
:class:`~ragnest.media.ocr.OcrEngine`, and the lines are mapped back to PDF points as
text boxes, so they go through the same layout rules as a text layer::

    >>> from ragnest.parsers.pdf_ocr import ocr_page  # used by PdfParser(ocr="auto")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ragnest.media.geometry import area
from ragnest.media.render import page_pixmap, pixmap_to_array
from ragnest.parsers import layout
from ragnest.parsers.layout import Box
from ragnest.parsers.text_quality import assess_text_layer

if TYPE_CHECKING:
    from ragnest.media.mupdf import pymupdf
    from ragnest.media.ocr import OcrEngine

__all__ = ["ocr_page", "wants_ocr"]

# A picture covering this share of the page is the scan itself, not a figure.
_SCAN_SHARE = 0.7


def wants_ocr(boxes: list[Box], page_rect: layout.Rect, mode: str) -> tuple[bool, str]:
    """Whether a page should be read by OCR under ``mode`` (``"auto"``, ``"always"``,
    ``"never"``), and the text-layer verdict's reason (``"ok"`` when not assessed).

    ``"auto"`` asks for OCR only when the text layer is missing or garbled on a page
    that shows more than a few words and drawings (see
    :func:`~ragnest.parsers.text_quality.assess_text_layer`).

    >>> wants_ocr([Box("text", (0, 0, 500, 700), "Plenty of clean words. " * 40)],
    ...           (0, 0, 595, 842), "auto")
    (False, 'ok')
    """
    if mode == "never":
        return False, "ok"
    text = " ".join(b.text for b in boxes if b.kind in ("text", "table"))
    image_area = sum(area(b.bbox) for b in boxes if b.kind == "picture")
    verdict = assess_text_layer(text, page_area=area(page_rect), image_area=image_area)
    # "auto": usable, or blank / a few words and drawings: nothing OCR would add.
    return (mode == "always" or verdict.needs_ocr), verdict.reason


def ocr_page(page: pymupdf.Page, boxes: list[Box], engine: OcrEngine, *, dpi: int,
             max_pixels: int) -> tuple[list[Box], float]:
    """Replace the page's text with OCR lines (pictures, figures and tables stay).

    The page is rendered at ``dpi``, lowered so it stays under ``max_pixels``.
    Returns the boxes in reading order (captions attached) and the dpi used.
    """
    rect = page.rect
    pix, used_dpi = page_pixmap(page, dpi=dpi, max_pixels=max_pixels)
    sx, sy = rect.width / pix.width, rect.height / pix.height
    lines = engine.read(pixmap_to_array(pix))
    ocr = [Box("text", (rect.x0 + ln.bbox[0] * sx, rect.y0 + ln.bbox[1] * sy,
                        rect.x0 + ln.bbox[2] * sx, rect.y0 + ln.bbox[3] * sy),
               " ".join(ln.text.split()), role="ocr") for ln in lines if ln.text.strip()]
    page_area = area((rect.x0, rect.y0, rect.x1, rect.y1))
    visuals = [b for b in boxes if b.kind != "text"
               and not (b.kind == "picture" and area(b.bbox) > _SCAN_SHARE * page_area)]
    return layout.attach_captions(layout.reading_order([*ocr, *visuals])), used_dpi
