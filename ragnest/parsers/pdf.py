"""PDF pages into chunks with PyMuPDF (the only parser module importing it).

Every page is read as a layout: text blocks with bounding boxes in reading order
(columns detected), headings and captions marked, embedded pictures and vector-figure
regions (clusters of drawings) as image segments, ruled tables (PyMuPDF's table
finder) as Markdown table segments, captions moved next to their figure or table.
Two chunking modes:

* ``chunking="page"`` (default): one ``page`` chunk per page: the whole text layer
  plus a lazy :class:`~ragnest.types.ImageRef` to the page screenshot, with the
  layout kept as segments (so an answer can point to a region);
* ``chunking="interleaved"``: ordered text/image/table segments split at headings
  or ``max_chars`` (with ``overlap``), each figure/table cropped lazily from the page
  at ``crop_dpi``; chunks never span pages.

Pages whose text layer is unusable (missing on a scanned page, or garbled as with CID
fonts lacking a Unicode map) are read with RapidOCR when it is installed
(``ocr="auto"``); ``chunk.metadata["text_source"]`` records the path each page took
("text-layer", "ocr" or "none")::

    >>> from ragnest.parsers.pdf import PdfParser
    >>> from ragnest.types import Source
    >>> parser = PdfParser(chunking="interleaved")
    >>> chunks = list(parser.parse(Source.from_path("examples/docs/nimbus3_handbook.pdf")))
    >>> figure = next(c for c in chunks if any(s.role == "figure" for s in c.segments))
    >>> roles = [s.role for s in figure.segments]
    >>> figure.page, roles[roles.index("figure") + 1]
    (3, 'caption')

Pages are streamed: the document is opened once and only the current page is held,
so a 10,000-page file parses in bounded memory; :meth:`PdfParser.parse_pages` parses
a page range (the pipeline uses it to spread one big file over several processes).
Pixels are never rendered here except for pages that need OCR.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from ragnest.errors import ConfigError, MissingDependencyError, ParseError
from ragnest.media.mupdf import drain, open_path, pymupdf
from ragnest.media.sniff import sniff_bytes
from ragnest.parsers import layout
from ragnest.parsers.chunking import chunk_segments
from ragnest.parsers.layout import Box
from ragnest.parsers.pdf_drawings import page_drawings
from ragnest.parsers.pdf_ocr import ocr_page, wants_ocr
from ragnest.types import Chunk, ImageRef, Segment, Source, make_chunk_id

__all__ = ["PdfParser", "page_text", "page_boxes", "open_pdf"]

logger = logging.getLogger(__name__)

# Text blocks only: no image blocks (faster).
_FLAGS = (
    pymupdf.TEXT_PRESERVE_LIGATURES
    | pymupdf.TEXT_PRESERVE_WHITESPACE
    | pymupdf.TEXT_MEDIABOX_CLIP
)
# "hyph-\nenated" -> "hyphenated" (a letter, a hyphen at line end, a lower-case letter).
_HYPHEN_BREAK = re.compile(r"(?<=[^\W\d_])-\n(?=[^\W\d_A-Z])")
_DOT_LEADER = re.compile(r"(?:\s*\.){4,}")  # ". . . . ." in tables of contents and indexes
# Free MuPDF's object cache every so many pages, so long documents stay bounded.
_SHRINK_EVERY = 200
_TABLE_STRATEGIES = ("lines", "lines_strict", "text")


def open_pdf(source: Source, password: str | None = None) -> pymupdf.Document:
    """Open ``source`` as a PDF or raise :class:`ParseError` with a clear reason.

    Checks for missing and zero-byte files, non-PDF content, corrupt files,
    encryption (authenticating with ``password`` when given) and page-less files.
    """
    name = source.display_name
    if source.data is not None:
        head = source.data[:1024]
        size = len(source.data)
    elif source.path is not None:
        path = Path(source.path)
        if not path.is_file():
            raise ParseError(name, "file not found")
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(1024)
    else:
        raise ParseError(name, "source has neither a path nor data")
    if size == 0:
        raise ParseError(name, "file is empty (0 bytes)")
    kind = sniff_bytes(head)
    if kind != "pdf":
        looks = kind or "unknown binary data"
        raise ParseError(name, f"not a valid PDF: no %PDF header (content looks like {looks})")
    try:
        if source.data is not None:
            doc = pymupdf.open(stream=source.data, filetype="pdf")
        else:
            doc = open_path(source.path, filetype="pdf")
    except Exception as err:  # pymupdf raises FileDataError / RuntimeError subclasses
        raise ParseError(name, f"not a valid PDF: {err}") from err
    finally:
        drain(name)  # "repairing broken xref" and the like: to the log and the report
    try:
        if doc.needs_pass:
            if not password:
                raise ParseError(
                    name,
                    "PDF is encrypted; pass a password via "
                    "PdfParser(password_env='VAR') and set that environment variable",
                )
            if not doc.authenticate(password):
                raise ParseError(name, "PDF is encrypted and the password given was rejected")
        if doc.page_count == 0:
            raise ParseError(name, "PDF has no pages")
    except BaseException:
        doc.close()
        raise
    return doc


_BOLD = 1 << 4  # span flag
_MIN_PICTURE_SIDE = 24.0  # points: smaller pictures are icons, bullets, rules
# Chunk metadata key: drawing clusters no figure/table segment covers, [[x0, y0, x1, y1]]
# in PDF points (the visual embedder fingerprints them too, for screenshot queries).
_REGIONS = "visual_regions"


def _clean(text: str) -> str:
    if "-\n" in text:
        text = _HYPHEN_BREAK.sub("", text)
    text = _DOT_LEADER.sub(" ... ", text)
    return " ".join(text.split())


def _text_boxes(page: pymupdf.Page) -> list[Box]:
    """Text blocks with their dominant font size, bold share and line count.

    This loop runs over every span of every page, so it is kept lean: only blocks
    short enough to be headings (3 lines at most) get exact size and bold statistics;
    longer blocks take the size of their first span (they are body text either way,
    and only feed the page's body-size estimate).
    """
    boxes: list[Box] = []
    for block in page.get_text("dict", flags=_FLAGS)["blocks"]:
        if block["type"] != 0:
            continue
        lines = block["lines"]
        texts = ["".join([span["text"] for span in line["spans"]]) for line in lines]
        text = _clean("\n".join(texts))
        if not text:
            continue
        bold = 0.0
        if len(lines) <= 3:
            sizes: dict[float, int] = {}
            heavy = chars = 0
            for line in lines:
                for span in line["spans"]:
                    n = len(span["text"])
                    sizes[span["size"]] = sizes.get(span["size"], 0) + n
                    chars += n
                    if span["flags"] & _BOLD:
                        heavy += n
            size = max(sizes, key=sizes.__getitem__) if sizes else 0.0
            bold = heavy / chars if chars else 0.0
        else:
            first = next((ln["spans"][0] for ln in lines if ln["spans"]), None)
            size = first["size"] if first else 0.0
        boxes.append(Box("text", tuple(block["bbox"]), text, size=round(size, 1),
                         bold=bold, lines=len(lines)))
    return boxes


def _pictures(page: pymupdf.Page, page_rect: layout.Rect) -> list[Box]:
    """Embedded raster images placed on the page (one box per placement)."""
    out: list[Box] = []
    seen: set[layout.Rect] = set()
    for info in page.get_images(full=True):
        try:
            rects = page.get_image_rects(info[0])
        except Exception:  # a broken image object must not lose the page's text
            logger.debug("page %d: cannot place image xref %s", page.number + 1, info[0])
            continue
        for rect in rects:
            r = rect & pymupdf.Rect(page_rect)
            box = (float(r.x0), float(r.y0), float(r.x1), float(r.y1))
            if r.is_empty or box in seen:
                continue
            if r.width < _MIN_PICTURE_SIDE or r.height < _MIN_PICTURE_SIDE:
                continue
            seen.add(box)
            out.append(Box("picture", box, extra={"width": info[2], "height": info[3]}))
    return out


def page_boxes(page: pymupdf.Page, *, tables: bool = True, figures: bool = True,
               table_strategy: str = "lines") -> list[Box]:
    """The layout of one page: text, picture, figure and table boxes in reading order,
    headings and captions marked (see :mod:`ragnest.parsers.layout`).

    The text is extracted once (``get_text("dict")``), the vector paths once (see
    :mod:`ragnest.parsers.pdf_drawings`: the table finder runs only where the drawings
    hold rules, figures are clusters of drawings; pages without drawings pay nothing).
    """
    return _layout(page, tables=tables, figures=figures, table_strategy=table_strategy)[0]


def _layout(page: pymupdf.Page, *, tables: bool, figures: bool,
            table_strategy: str) -> tuple[list[Box], list[layout.Rect]]:
    """:func:`page_boxes` plus the page's drawing clusters a screenshot may show."""
    rect = page.rect
    page_rect = (float(rect.x0), float(rect.y0), float(rect.x1), float(rect.y1))
    texts = _text_boxes(page)
    table_boxes, figure_boxes, clusters = page_drawings(
        page, page_rect, tables=tables, figures=figures, table_strategy=table_strategy)
    visuals: list[Box] = [*_pictures(page, page_rect), *figure_boxes]
    # Text inside a table is the table; text in or beside a figure is its labels.
    kept = [b for b in texts
            if not any(layout.overlap_ratio(b.bbox, t.bbox) > 0.5 for t in table_boxes)]
    grown: list[Box] = []
    for visual in visuals:
        if visual.kind == "figure":
            visual, kept = layout.absorb_labels(visual, kept)
        grown.append(visual)
    visuals = grown
    body = layout.body_font_size(kept)
    kept = [replace(b, role="heading") if layout.is_heading(b, body) else b for b in kept]
    ordered = layout.reading_order([*kept, *visuals, *table_boxes])
    return layout.attach_captions(ordered), clusters


def page_text(page: pymupdf.Page) -> str:
    """A page's text in reading order (text, table Markdown, figure labels), blank-line
    separated; lines inside a block are joined, hyphenated line ends rejoined."""
    return "\n\n".join(b.text for b in page_boxes(page) if b.text)


def _segment(box: Box, number: int, image_source: str, crop_dpi: int) -> Segment:
    if box.kind == "text":
        return Segment(kind="text", text=box.text, bbox=box.bbox, page=number, role=box.role)
    ref = ImageRef(source=image_source, page=number, clip=box.bbox, dpi=crop_dpi)
    if box.kind == "table":
        return Segment(kind="table", text=box.text, image=ref, bbox=box.bbox, page=number)
    return Segment(kind="image", text=box.text, image=ref, bbox=box.bbox, page=number,
                   role=box.kind)


@dataclass(kw_only=True)
class PdfParser:
    """Parser for ``.pdf`` in ``page`` or ``interleaved`` chunking mode.

    ``dpi`` is the page-screenshot resolution recorded in page ImageRefs and
    ``crop_dpi`` that of figure/table crops (nothing is rendered while parsing).
    ``max_chars``/``overlap`` size interleaved chunks. ``tables``/``figures`` switch
    the table finder and drawing clustering (both cheap on text pages);
    ``table_strategy`` is PyMuPDF's (``"lines"`` finds ruled tables,
    ``"lines_strict"`` ignores filled boxes). ``ocr`` is ``"auto"`` (OCR pages whose
    text layer is unusable, when RapidOCR is installed), ``"always"`` or ``"never"``;
    ``ocr_dpi`` is the resolution pages are rendered at for OCR, lowered for huge
    pages so the render stays under ``ocr_max_pixels``.
    ``password_env`` names an environment variable holding the password of encrypted
    PDFs (secrets never go in YAML). ``max_pages`` stops after that many pages.

    For :class:`Source` objects made from bytes the ImageRef's ``source`` is the
    display name, so the pages cannot be rendered later unless a file by that name
    exists; ingest from paths when page images are needed.

    >>> PdfParser(chunking="interleaved", max_chars=1200).extensions
    ('.pdf',)
    """

    chunking: str = "page"
    dpi: int = 96
    crop_dpi: int = 144
    max_chars: int = 1500
    overlap: int = 200
    tables: bool = True
    figures: bool = True
    table_strategy: str = "lines"
    ocr: str = "auto"
    ocr_dpi: int = 150
    ocr_max_pixels: int = 12_000_000
    password_env: str | None = None
    max_pages: int | None = None
    extensions: ClassVar[tuple[str, ...]] = (".pdf",)

    def __post_init__(self) -> None:
        def bad(message: str) -> ConfigError:
            return ConfigError(f"PdfParser.{message}")

        if self.chunking not in ("page", "interleaved"):
            raise bad(f"chunking must be 'page' or 'interleaved', not {self.chunking!r}")
        if self.ocr not in ("auto", "always", "never"):
            raise bad(f"ocr must be 'auto', 'always' or 'never', not {self.ocr!r}")
        for name in ("max_chars", "dpi", "crop_dpi", "ocr_dpi", "ocr_max_pixels"):
            if getattr(self, name) <= 0:
                raise bad(f"{name} must be positive, not {getattr(self, name)}")
        if not 0 <= self.overlap < self.max_chars:
            raise bad(f"overlap must be >= 0 and smaller than max_chars ({self.max_chars}), "
                      f"not {self.overlap}")
        if self.table_strategy not in _TABLE_STRATEGIES:
            raise bad(f"table_strategy must be one of {', '.join(_TABLE_STRATEGIES)}, "
                      f"not {self.table_strategy!r}")
        if self.max_pages is not None and self.max_pages < 1:
            raise bad(f"max_pages must be at least 1 (or None for all), not {self.max_pages}")
        self._ocr_engine: Any = None  # this parser's own OcrEngine, made on first need
        self._ocr_missing = False

    def warm_up(self) -> None:
        """Load the OCR engine when ``ocr="always"`` (``"auto"`` loads it on first need)."""
        if self.ocr == "always":
            self._engine()

    def close(self) -> None:
        """Release the OCR engine's model."""
        if self._ocr_engine is not None:
            self._ocr_engine.close()
            self._ocr_engine = None

    def _password(self) -> str | None:
        return os.environ.get(self.password_env) if self.password_env else None

    def _engine(self) -> Any:
        if self._ocr_engine is None:
            from ragnest.media.ocr import OcrEngine

            self._ocr_engine = OcrEngine()
        self._ocr_engine.warm_up()
        return self._ocr_engine

    # ---------------------------------------------------------------- parsing
    def page_count(self, source: Source) -> int:
        """How many pages :meth:`parse` would read (raises :class:`ParseError`)."""
        doc = open_pdf(source, self._password())
        try:
            n = doc.page_count
        finally:
            doc.close()
        return n if self.max_pages is None else min(n, self.max_pages)

    def parse(self, source: Source) -> Iterator[Chunk]:
        """Yield the chunks of ``source`` page by page (raises :class:`ParseError`)."""
        yield from self.parse_pages(source, 0, None)

    def parse_pages(self, source: Source, start: int, stop: int | None) -> Iterator[Chunk]:
        """Yield the chunks of pages ``start`` (0-based) up to ``stop`` (exclusive).

        Chunk ids depend only on the page, never on the range, so parsing a file in
        ranges gives exactly the chunks of parsing it whole.
        """
        doc = open_pdf(source, self._password())
        try:
            yield from self._pages(doc, source, start, stop)
        finally:
            doc.close()

    def _pages(self, doc: pymupdf.Document, source: Source, start: int,
               stop: int | None) -> Iterator[Chunk]:
        name = source.display_name
        page_count = doc.page_count
        title = (doc.metadata or {}).get("title") or None
        last = page_count if self.max_pages is None else min(page_count, self.max_pages)
        if stop is not None:
            last = min(last, stop)
        for index in range(max(start, 0), last):
            number = index + 1
            try:
                page = doc.load_page(index)
                chunks = self._page(page, number, source, page_count, title)
            except (ParseError, MissingDependencyError):
                raise
            except Exception as err:  # a broken page object: report it, don't hide it
                raise ParseError(name, f"cannot read page {number}: {err}") from err
            finally:
                drain(name)
            yield from chunks
            del page
            if number % _SHRINK_EVERY == 0:
                pymupdf.TOOLS.store_shrink(100)

    def _page(self, page: pymupdf.Page, number: int, source: Source, page_count: int,
              title: str | None) -> list[Chunk]:
        name = source.display_name
        document_id = source.document_id
        image_source = name  # the path (readable form): ImageRefs resolve it
        rect = page.rect
        bbox = (float(rect.x0), float(rect.y0), float(rect.x1), float(rect.y1))
        boxes, clusters = _layout(page, tables=self.tables, figures=self.figures,
                                  table_strategy=self.table_strategy)
        text_source, reason = self._text_source(page, boxes, bbox)
        ocr_dpi = None
        if text_source == "ocr":
            boxes, ocr_dpi = ocr_page(page, boxes, self._engine(), dpi=self.ocr_dpi,
                                      max_pixels=self.ocr_max_pixels)
        segments = [_segment(b, number, image_source, self.crop_dpi) for b in boxes]
        text = "\n\n".join(s.text for s in segments if s.text)
        metadata: dict[str, Any] = {
            "page_count": page_count,
            "title": title,
            "width": float(rect.width),
            "height": float(rect.height),
            "text_source": text_source if text else "none",
        }
        if reason != "ok":
            metadata["text_layer"] = reason
        if ocr_dpi is not None:
            metadata["ocr_dpi"] = round(ocr_dpi, 1)
        shots = layout.extra_regions(clusters, [s.bbox for s in segments
                                                if s.kind != "text" and s.bbox])
        page_ref = ImageRef(source=image_source, page=number, dpi=self.dpi)
        if self.chunking == "interleaved":
            chunks = chunk_segments(segments, document_id=document_id, source=name, page=number,
                                    max_chars=self.max_chars, overlap=self.overlap,
                                    first_position=index_base(number),
                                    image=ImageRef(source=image_source, page=number,
                                                   dpi=self.crop_dpi),
                                    metadata=metadata)
            if chunks:
                return _with_regions(chunks, shots)
            # A page with nothing on it still gets a chunk: its screenshot.
        return [Chunk(
            id=make_chunk_id(document_id, number - 1, f"{text}|page|{number}"),
            document_id=document_id,
            kind="page",
            text=text,
            source=name,
            segments=tuple(segments),
            page=number,
            bbox=bbox,
            image=page_ref,
            metadata={**metadata, _REGIONS: shots} if shots else metadata,
        )]

    # -------------------------------------------------------------------- OCR
    def _text_source(self, page: pymupdf.Page, boxes: list[Box],
                     page_rect: layout.Rect) -> tuple[str, str]:
        """("text-layer" | "ocr" | "none", verdict reason) for one page."""
        wanted, reason = wants_ocr(boxes, page_rect, self.ocr)
        has_text = any(b.text for b in boxes if b.kind in ("text", "table"))
        layer = "text-layer" if has_text else "none"
        if not wanted or self._ocr_missing:
            return layer, reason
        try:
            self._engine()
        except MissingDependencyError:
            if self.ocr == "always":
                raise
            self._ocr_missing = True
            logger.warning("%s: some pages need OCR but RapidOCR is not installed "
                           "(pip install 'ragnest[lite]'); their text layer is used as is",
                           page.parent.name if page.parent else "PDF")
            return layer, reason
        return "ocr", reason


def _with_regions(chunks: list[Chunk], regions: list[list[float]]) -> list[Chunk]:
    """Each region goes to the chunk whose box holds its centre (else the first)."""
    if not regions:
        return chunks
    owned: list[list[list[float]]] = [[] for _ in chunks]
    for r in regions:
        cx, cy = (r[0] + r[2]) / 2, (r[1] + r[3]) / 2
        at = next((i for i, c in enumerate(chunks) if c.bbox and c.bbox[0] <= cx <= c.bbox[2]
                   and c.bbox[1] <= cy <= c.bbox[3]), 0)
        owned[at].append(r)
    return [replace(c, metadata={**c.metadata, _REGIONS: mine}) if mine else c
            for c, mine in zip(chunks, owned)]


def index_base(page_number: int) -> int:
    """The first chunk position of a page in interleaved mode (unique per page)."""
    return (page_number - 1) * 1000
