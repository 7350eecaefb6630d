"""PDF pages into ``page`` chunks with PyMuPDF (the only parser module importing it).

One chunk per page: the page's text layer in reading order plus a lazy
:class:`~ragnest.types.ImageRef` to its pixels (rendered later, only when an embedder,
reranker or generator needs them)::

    >>> from ragnest.parsers.pdf import PdfParser
    >>> from ragnest.types import Source
    >>> parser = PdfParser(dpi=96)
    >>> for chunk in parser.parse(Source.from_path("examples/docs/nimbus3_handbook.pdf")):
    ...     print(chunk.page, chunk.text[:40])  # doctest: +SKIP

Pages are streamed: the document is opened once and only the current page's text is
held, so a 2,000-page manual parses in bounded memory.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pymupdf

from ragnest.errors import ParseError
from ragnest.parsers.sniff import sniff_bytes
from ragnest.types import Chunk, ImageRef, Source, make_chunk_id

__all__ = ["PdfParser", "page_text", "open_pdf"]

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


def page_text(page: pymupdf.Page) -> str:
    """A page's text layer in reading order: blocks separated by blank lines.

    Blocks are ordered top to bottom; blocks whose tops align (table cells, side by
    side boxes) are read left to right. Lines inside a block are joined with spaces
    (hyphenated line ends are joined), runs of whitespace collapse to one space.
    Two-column layouts read row by row, not column by column (a known limit).
    """
    blocks = [b for b in page.get_text("blocks", flags=_FLAGS) if b[6] == 0]
    parts: list[str] = []
    for block in _reading_order(blocks):
        text = block[4]
        if "-\n" in text:
            text = _HYPHEN_BREAK.sub("", text)
        text = _DOT_LEADER.sub(" ... ", text)
        text = " ".join(text.split())  # joins lines, collapses all whitespace
        if text:
            parts.append(text)
    return "\n\n".join(parts)


def _reading_order(blocks: list[tuple]) -> list[tuple]:
    """Sort blocks top to bottom; blocks overlapping the row's first block by at least
    half their height (table cells, side-by-side boxes) are read left to right."""
    blocks = sorted(blocks, key=lambda b: (b[1], b[0]))
    ordered: list[tuple] = []
    row: list[tuple] = []
    for block in blocks:
        if row:
            first = row[0]
            overlap = min(first[3], block[3]) - block[1]
            if overlap < 0.5 * min(first[3] - first[1], block[3] - block[1]):
                ordered.extend(sorted(row, key=lambda b: b[0]))
                row = []
        row.append(block)
    ordered.extend(sorted(row, key=lambda b: b[0]))
    return ordered


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
            doc = pymupdf.open(source.path, filetype="pdf")
    except Exception as err:  # pymupdf raises FileDataError / RuntimeError subclasses
        raise ParseError(name, f"not a valid PDF: {err}") from err
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


@dataclass(kw_only=True)
class PdfParser:
    """Parser for ``.pdf``: one ``page`` chunk per page.

    ``dpi`` is the resolution recorded in each page's ImageRef (pixels are not
    rendered here). ``password_env`` names an environment variable holding the
    password of encrypted PDFs (secrets never go in YAML). ``max_pages`` stops after
    that many pages.

    For :class:`Source` objects made from bytes the ImageRef's ``source`` is the
    display name, so the pages cannot be rendered later unless a file by that name
    exists; ingest from paths when page images are needed.

    >>> PdfParser(dpi=144, max_pages=10).extensions
    ('.pdf',)
    """

    dpi: int = 96
    password_env: str | None = None
    max_pages: int | None = None
    extensions: ClassVar[tuple[str, ...]] = (".pdf",)

    def warm_up(self) -> None:
        """Nothing to load."""

    def close(self) -> None:
        """Nothing to release."""

    def _password(self) -> str | None:
        return os.environ.get(self.password_env) if self.password_env else None

    def parse(self, source: Source) -> Iterator[Chunk]:
        """Yield one chunk per page of ``source`` (raises :class:`ParseError`)."""
        doc = open_pdf(source, self._password())
        try:
            yield from self._pages(doc, source)
        finally:
            doc.close()

    def _pages(self, doc: pymupdf.Document, source: Source) -> Iterator[Chunk]:
        name = source.display_name
        document_id = source.document_id
        image_source = source.path or name
        page_count = doc.page_count
        title = (doc.metadata or {}).get("title") or None
        last = page_count if self.max_pages is None else min(page_count, self.max_pages)
        empty = 0
        for index in range(last):
            number = index + 1
            try:
                page = doc.load_page(index)
                text = page_text(page)
                rect = page.rect
            except Exception as err:  # a broken page object: report it, don't hide it
                raise ParseError(name, f"cannot read page {number}: {err}") from err
            bbox = (float(rect.x0), float(rect.y0), float(rect.x1), float(rect.y1))
            metadata: dict[str, Any] = {
                "page_count": page_count,
                "title": title,
                "width": float(rect.width),
                "height": float(rect.height),
                "text_layer": "present" if text else "empty",
            }
            if not text:
                empty += 1
            yield Chunk(
                id=make_chunk_id(document_id, index, f"{text}|page|{number}"),
                document_id=document_id,
                kind="page",
                text=text,
                source=name,
                page=number,
                bbox=bbox,
                image=ImageRef(source=image_source, page=number, dpi=self.dpi),
                metadata=metadata,
            )
            del page
            if number % _SHRINK_EVERY == 0:
                pymupdf.TOOLS.store_shrink(100)
        logger.debug("parsed %s: %d of %d pages, %d without text", name, last, page_count, empty)
