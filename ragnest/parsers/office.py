"""Office documents, web pages, Markdown, e-mail and e-books into chunks (via unstructured).

The only ragnest module that imports `unstructured <https://github.com/Unstructured-IO/
unstructured>`_; it does so lazily (in :meth:`OfficeParser.warm_up` or on the first
:meth:`~OfficeParser.parse`), so importing this module is cheap::

    >>> from ragnest.parsers.office import OfficeParser
    >>> from ragnest.types import Source
    >>> parser = OfficeParser(max_chars=1200)
    >>> ".docx" in parser.extensions and ".eml" in parser.extensions
    True
    >>> for chunk in parser.parse(Source.from_path("report.docx")):  # doctest: +SKIP
    ...     print(chunk.page, [s.kind for s in chunk.segments], chunk.text[:40])

Two chunking modes:

``chunking="interleaved"`` (default)
    unstructured's partitioner for the document's *real* type (sniffed from its bytes
    and, for ZIP containers, from ``[Content_Types].xml`` / the ``mimetype`` member, so
    a ``.pptx`` named ``.docx`` still parses) gives elements in reading order; they
    become :class:`~ragnest.types.Segment` s -- titles are ``"heading"`` text, list items
    ``"list"``, code ``"code"``, figure captions ``"caption"``, tables are Markdown
    ``table`` segments (long tables are cut into several, each repeating the header
    row), pictures are ``image`` segments -- and
    :func:`~ragnest.parsers.chunking.chunk_segments` groups them into ``interleaved``
    chunks, one page at a time (slides for PPTX, sheets for XLSX, rendered pages for
    DOCX files saved by Word; page ``None`` for HTML, Markdown, e-mail and EPUB).
    Headers, footers and page breaks are dropped.

``chunking="page"``
    the document is rendered to PDF and :class:`~ragnest.parsers.pdf.PdfParser` makes
    one ``page`` chunk per page, whose image reference points at the rendered PDF (kept
    in ``cache_dir``, named by the sha256 of the document, so re-ingesting reuses it).
    Office formats (DOCX, PPTX, XLSX, ODT, RTF, DOC, PPT, XLS) are rendered with
    LibreOffice (``soffice --headless --convert-to pdf``); page-less formats need no
    LibreOffice: HTML, Markdown, e-mail (.eml) and EPUB are laid out on A4 pages by
    MuPDF's HTML engine (the one PyMuPDF ships). Outlook ``.msg`` files have no page
    form: they fall back to interleaved chunks, with a warning.

Pictures: DOCX, PPTX and ODT pictures and EPUB, HTML and Markdown images become
``image`` segments (role ``"picture"``, alt text in ``text``) at their place in the
reading order: DOCX pictures after the body paragraph holding them, PPTX pictures in
the slide's top-to-bottom order (slide notes are not included). DOCX pictures that are
not in a body paragraph (in table cells) come at the end of the document. Pictures are never
extracted here: an archive member is referenced lazily as
``ImageRef(blob="/abs/report.docx::word/media/image1.png")`` (loaded by
:func:`ragnest.media.render.render_array`), a local image next to an HTML or Markdown file as
``ImageRef(blob="/abs/dir/pic.png")``. Icons and bullets (smaller than 32x32 px or
2 KB), repeated pictures (logos), vector formats (EMF/WMF/SVG) and remote or inline
(``data:``/``cid:``) images are skipped; their alt text is kept as text. XLSX
images and charts are not extracted.

Every failure raises :class:`~ragnest.errors.ParseError` naming the file: empty
files, corrupt ZIP containers, password-protected (encrypted) Office files -- unless
``password_env`` names an environment variable holding the password --, content of
another type (a PDF or an image named ``.docx``), legacy binary formats without
LibreOffice. Text formats (HTML, Markdown, e-mail parts without a declared charset)
are decoded from a BOM (UTF-8/UTF-16), a declared charset, UTF-8, else cp1252.

unstructured's text-type heuristics want spaCy's ``en_core_web_sm`` model and try to
download and install it into site-packages at first use. When that model is not
installed, this module gives unstructured a small rule-based stand-in (sentence
splitting, "a lower-case content word counts as a verb") instead, so parsing works
offline; install the model for unstructured's own heading detection. Importing
unstructured through this module also sets ``SCARF_NO_ANALYTICS`` and
``UNSTRUCTURED_DISABLE_NOTICE`` (unless already set): no usage pings from ingestion.
"""

from __future__ import annotations

import contextvars
import dataclasses
import email
import email.policy
import functools
import hashlib
import html as html_lib
import importlib
import io
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from ragnest.errors import ConfigError, MissingDependencyError, ParseError
from ragnest.media.sniff import SNIFF_BYTES, sniff_bytes
from ragnest.parsers.chunking import chunk_segments
from ragnest.parsers.text import decode_text
from ragnest.types import Chunk, ImageRef, Segment, Source

__all__ = [
    "OfficeParser",
    "detect_format",
    "html_table_to_markdown",
    "markdown_table_parts",
    "find_libreoffice",
    "FORMAT_LABELS",
    "LIBREOFFICE_MISSING",
]

logger = logging.getLogger(__name__)

_INSTALL_HINT = "pip install 'ragnest[office]'"

#: Human names of the formats :func:`detect_format` returns.
FORMAT_LABELS: dict[str, str] = {
    "docx": "Word document (.docx)",
    "pptx": "PowerPoint presentation (.pptx)",
    "xlsx": "Excel workbook (.xlsx)",
    "odt": "OpenDocument text (.odt)",
    "epub": "EPUB e-book (.epub)",
    "html": "HTML page",
    "md": "Markdown file",
    "eml": "e-mail message (.eml)",
    "msg": "Outlook message (.msg)",
    "rtf": "RTF document (.rtf)",
    "doc": "legacy Word 97-2003 document (.doc)",
    "ppt": "legacy PowerPoint 97-2003 presentation (.ppt)",
    "xls": "legacy Excel 97-2003 workbook (.xls)",
}

_EXTENSION_FORMATS: dict[str, str] = {
    ".docx": "docx", ".docm": "docx", ".dotx": "docx",
    ".pptx": "pptx", ".pptm": "pptx", ".ppsx": "pptx",
    ".xlsx": "xlsx", ".xlsm": "xlsx",
    ".odt": "odt", ".epub": "epub",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".md": "md", ".markdown": "md",
    ".eml": "eml", ".msg": "msg", ".rtf": "rtf",
    ".doc": "doc", ".ppt": "ppt", ".xls": "xls",
}

#: Formats LibreOffice renders for ``chunking="page"``.
_LIBREOFFICE_FORMATS = frozenset({"docx", "pptx", "xlsx", "odt", "rtf", "doc", "ppt", "xls"})
#: Legacy binary formats unstructured can only read after a LibreOffice conversion.
_LEGACY_TARGETS = {"doc": "docx", "ppt": "pptx"}

#: The error for ``chunking="page"`` without LibreOffice.
LIBREOFFICE_MISSING = (
    "chunking='page' needs LibreOffice to render Office documents to page images; it was "
    "not found on PATH (install libreoffice, or use chunking='interleaved')"
)

_MIN_IMAGE_BYTES = 2048
_MIN_IMAGE_SIDE = 32
_VECTOR_IMAGE = re.compile(r"(emf|wmf|svg|emz|wmz|x-pict)", re.IGNORECASE)
_CAPTION = re.compile(
    r"^\s*(figure|fig\.?|table|tab\.|image|photo|picture|chart|diagram|illustration|"
    r"exhibit|plate|abbildung|abb\.|tabelle|bild)\s*[\dIVXivx]+\b",
    re.IGNORECASE,
)
_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)",
                           re.DOTALL)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""",
                           re.IGNORECASE)
_FILE_NAME = re.compile(r"^[\w\-. ]+\.(png|jpe?g|gif|bmp|tiff?|webp|emf|wmf|svg)$", re.IGNORECASE)
_GENERIC_ALT = frozenset({"image", "img", "picture", "photo", "graphic", "figure"})
_EMAIL_HEADER = re.compile(
    r"^(received|return-path|from|to|subject|date|message-id|mime-version|delivered-to)\s*:",
    re.IGNORECASE,
)

_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_WP = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
_VML = "urn:schemas-microsoft-com:vml"


# --------------------------------------------------------------------------------------
# Format detection
# --------------------------------------------------------------------------------------


def detect_format(data: bytes, name: str = "<bytes>") -> str:
    """The real format of a document from its bytes (the name's extension breaks ties).

    Returns a key of :data:`FORMAT_LABELS`, or ``"encrypted"`` for a password-protected
    Office file. Raises :class:`ParseError` for empty input, corrupt ZIP containers and
    content of another kind (a PDF, an image, plain text named ``.docx``).

    >>> detect_format(b"<!doctype html><p>hi</p>", "page.bin")
    'html'
    >>> detect_format(b"# Title\\n\\nbody", "notes.md")
    'md'
    >>> detect_format(b"%PDF-1.7 ...", "report.docx")
    Traceback (most recent call last):
    ...
    ragnest.errors.ParseError: report.docx: the content is a PDF, not a Word document (.docx); parse it with the PDF parser (parser/pdf)
    """
    suffix = Path(name).suffix.lower()
    expected = _EXTENSION_FORMATS.get(suffix)
    wanted = (_with_article(FORMAT_LABELS[expected]) if expected
              else f"a '{suffix or 'extension-less'}' document")
    if not data:
        raise ParseError(name, "file is empty (0 bytes)")
    kind = sniff_bytes(data[:SNIFF_BYTES])
    if kind == "zip":
        return _zip_format(data, name)
    if kind == "ole":
        return _ole_format(data, name, expected)
    if kind == "rtf":
        return "rtf"
    if kind in ("html", "xml", "text"):
        if expected in ("md", "eml", "html"):
            return expected
        if kind == "html":
            return "html"
        head = data[:SNIFF_BYTES].decode("utf-8", errors="replace").lstrip("\ufeff \r\n\t")
        if _EMAIL_HEADER.match(head):
            return "eml"
        what = "XML" if kind == "xml" else "plain text"
        raise ParseError(name, f"the content is {what}, not {wanted}")
    if kind == "pdf":
        raise ParseError(
            name, f"the content is a PDF, not {wanted}; parse it with the PDF parser (parser/pdf)"
        )
    if kind is None:
        raise ParseError(name, f"unrecognised binary content, not {wanted}")
    what = {"gzip": "a gzip archive", "postscript": "PostScript"}.get(kind, f"a {kind.upper()} image")
    raise ParseError(name, f"the content is {what}, not {wanted}")


def _with_article(label: str) -> str:
    vowel = label[0].lower() in "aeiou" or label.startswith(("HTML", "RTF", "EPUB"))
    return f"{'an' if vowel else 'a'} {label}"


def _zip_format(data: bytes, name: str) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if "mimetype" in names:
                mimetype = zf.read("mimetype")[:200].decode("ascii", "replace").strip()
                if mimetype == "application/epub+zip":
                    return "epub"
                if mimetype.startswith("application/vnd.oasis.opendocument.text"):
                    return "odt"
                if mimetype.startswith("application/vnd.oasis.opendocument"):
                    kind = mimetype.rsplit(".", 1)[-1]
                    raise ParseError(name, f"OpenDocument {kind} files are not supported "
                                           "(only OpenDocument text, .odt); save it as an "
                                           "Office Open XML file (.pptx, .xlsx)")
            if "[Content_Types].xml" in names:
                fmt = _ooxml_format(zf, names)
                if fmt:
                    return fmt
    except ParseError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, KeyError) as err:
        raise ParseError(name, f"corrupt file: not a readable ZIP container ({err})") from err
    raise ParseError(name, "a ZIP archive, but not an Office document or e-book "
                           "(no [Content_Types].xml or mimetype member)")


_OOXML_MAIN = (("wordprocessingml", "docx"), ("ms-word", "docx"),
               ("presentationml", "pptx"), ("ms-powerpoint", "pptx"),
               ("spreadsheetml", "xlsx"), ("ms-excel", "xlsx"))
_OOXML_FOLDERS = {"word": "docx", "ppt": "pptx", "xl": "xlsx"}


def _ooxml_format(zf: zipfile.ZipFile, names: set[str]) -> str | None:
    """docx/pptx/xlsx from the content type of the package's main part (the target of
    the ``officeDocument`` relationship), else from that part's folder."""
    main = ""
    if "_rels/.rels" in names:
        rels = zf.read("_rels/.rels").decode("utf-8", "replace")
        for rel in re.findall(r"<Relationship\b[^>]*>", rels):
            if re.search(r'Type="[^"]*/officeDocument"', rel):
                target = re.search(r'Target="([^"]+)"', rel)
                main = target.group(1).lstrip("/") if target else ""
                break
    types = zf.read("[Content_Types].xml").decode("utf-8", "replace")
    for override in re.findall(r"<Override\b[^>]*>", types):
        part = re.search(r'PartName="/?([^"]+)"', override)
        ctype = re.search(r'ContentType="([^"]+)"', override)
        if part and ctype and part.group(1) == main and ".main+xml" in ctype.group(1):
            for marker, fmt in _OOXML_MAIN:
                if marker in ctype.group(1):
                    return fmt
    folder = (main or next((n for n in sorted(names) if n.split("/")[0] in _OOXML_FOLDERS),
                           "")).split("/")[0]
    return _OOXML_FOLDERS.get(folder)


def _ole_format(data: bytes, name: str, expected: str | None) -> str:
    """Legacy Office, Outlook and encrypted OOXML files share the OLE container."""
    try:
        import olefile
    except ImportError:  # comes with unstructured's extras (msoffcrypto-tool, oxmsg)
        if expected in ("doc", "ppt", "xls", "msg"):
            return expected
        raise ParseError(name, "an OLE compound file (legacy Office or encrypted); "
                               f"cannot tell which without olefile: {_INSTALL_HINT}") from None
    try:
        ole = olefile.OleFileIO(data)
    except Exception as err:
        raise ParseError(name, f"corrupt OLE compound file ({err})") from err
    try:
        streams = {"/".join(entry) for entry in ole.listdir(streams=True, storages=True)}
    finally:
        ole.close()
    top = {s.split("/")[0] for s in streams}
    if "EncryptionInfo" in top and "EncryptedPackage" in top:
        return "encrypted"
    if "WordDocument" in top:
        fmt = "doc"
    elif "Workbook" in top or "Book" in top:
        fmt = "xls"
    elif "PowerPoint Document" in top:
        fmt = "ppt"
    elif any(s.startswith(("__substg1.0_", "__properties_version1.0")) for s in top):
        return "msg"
    else:
        raise ParseError(name, "an OLE compound file that is not a Word, Excel, PowerPoint "
                               "or Outlook document")
    if _legacy_encrypted(data):
        return "encrypted"
    return fmt


def _legacy_encrypted(data: bytes) -> bool:
    try:
        import msoffcrypto

        return bool(msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted())
    except Exception:  # no msoffcrypto, or a stream it cannot read: let the parser decide
        return False


# --------------------------------------------------------------------------------------
# HTML tables to Markdown
# --------------------------------------------------------------------------------------


class _TableParser(HTMLParser):
    """Rows of cell texts of the first table in an HTML fragment (nested tables flattened
    into their cell), with ``colspan``/``rowspan`` expanded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[str, int, int]]] = []
        self.depth = 0
        self.cell: list[str] | None = None
        self.span = (1, 1)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.depth += 1
        elif self.depth == 1 and tag == "tr":
            self.rows.append([])
        elif self.depth == 1 and tag in ("td", "th"):
            self._close_cell()
            values = dict(attrs)
            self.cell = []
            self.span = (_int_attr(values.get("colspan")), _int_attr(values.get("rowspan")))
        if self.cell is not None and tag in ("br", "p", "div", "li", "td", "th", "tr"):
            self.cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.depth -= 1
        elif self.depth == 1 and tag in ("td", "th", "tr"):
            self._close_cell()

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)

    def _close_cell(self) -> None:
        if self.cell is None:
            return
        if not self.rows:
            self.rows.append([])
        text = " ".join("".join(self.cell).split())
        self.rows[-1].append((text, *self.span))
        self.cell = None


def _int_attr(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 1000))
    except ValueError:
        return 1


def _table_grid(html: str) -> list[list[str]]:
    parser = _TableParser()
    parser.feed(html)
    parser.close()
    parser._close_cell()
    grid: list[list[str]] = []
    pending: dict[int, tuple[int, str]] = {}  # column -> (rows still spanned, text)
    for row in parser.rows:
        out: list[str] = []
        cells = iter(row)
        col = 0
        while True:
            if col in pending:
                left, text = pending[col]
                out.append("")  # a row-spanned cell is shown once, in its first row
                if left <= 1:
                    del pending[col]
                else:
                    pending[col] = (left - 1, text)
                col += 1
                continue
            cell = next(cells, None)
            if cell is None:
                if any(c >= col for c in pending):
                    out.append("")
                    col += 1
                    continue
                break
            text, colspan, rowspan = cell
            for k in range(colspan):
                out.append(text if k == 0 else "")
                if rowspan > 1:
                    pending[col] = (rowspan - 1, text)
                col += 1
        if out:
            grid.append(out)
    return grid


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def html_table_to_markdown(html: str) -> str:
    """A Markdown (GFM) table from an HTML ``<table>``; the first row is the header.

    Merged cells are shown once (in their first row and column). Returns ``""`` when
    the HTML holds no cell text.

    >>> print(html_table_to_markdown(
    ...     "<table><tr><th>Part</th><th>Qty</th></tr><tr><td>Pump</td><td>1</td></tr>"
    ...     "<tr><td colspan='2'>a|b</td></tr></table>"))
    | Part | Qty |
    | --- | --- |
    | Pump | 1 |
    | a\\|b |  |
    """
    grid = _table_grid(html)
    if not any(cell for row in grid for cell in row):
        return ""
    width = max(len(row) for row in grid)
    lines = []
    for i, row in enumerate(grid):
        cells = [_md_cell(c) for c in row] + [""] * (width - len(row))
        lines.append("| " + " | ".join(cells) + " |")
        if i == 0:
            lines.append("| " + " | ".join(["---"] * width) + " |")
    return "\n".join(lines)


def markdown_table_parts(table: str, max_chars: int) -> list[str]:
    """Cut a Markdown table longer than ``max_chars`` into tables of whole rows, each
    repeating the header row (a single over-long row stays whole).

    >>> md = "| a |\\n| --- |\\n| 1 |\\n| 2 |\\n| 3 |"
    >>> markdown_table_parts(md, 25)
    ['| a |\\n| --- |\\n| 1 |\\n| 2 |', '| a |\\n| --- |\\n| 3 |']
    """
    if len(table) <= max_chars:
        return [table]
    lines = table.split("\n")
    if len(lines) < 3 or not lines[1].startswith("| ---"):
        return [table]
    head = "\n".join(lines[:2])
    parts: list[str] = []
    current = head
    for line in lines[2:]:
        if current != head and len(current) + 1 + len(line) > max_chars:
            parts.append(current)
            current = head
        current = f"{current}\n{line}"
    if current != head:
        parts.append(current)
    return parts


# --------------------------------------------------------------------------------------
# unstructured: lazy import, offline NLP stand-in, picture sub-partitioners
# --------------------------------------------------------------------------------------

_IMPORT_LOCK = threading.RLock()
_READY = False
_PARTITIONERS: dict[str, tuple[str, str]] = {
    "docx": ("unstructured.partition.docx", "partition_docx"),
    "pptx": ("unstructured.partition.pptx", "partition_pptx"),
    "xlsx": ("unstructured.partition.xlsx", "partition_xlsx"),
    "html": ("unstructured.partition.html", "partition_html"),
    "md": ("unstructured.partition.md", "partition_md"),
    "eml": ("unstructured.partition.email", "partition_email"),
    "msg": ("unstructured.partition.msg", "partition_msg"),
    "odt": ("unstructured.partition.odt", "partition_odt"),
}


def _import_unstructured() -> None:
    """Import unstructured once: telemetry off, picture hooks in, NLP stand-in if needed."""
    global _READY
    with _IMPORT_LOCK:
        if _READY:
            return
        os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
        os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
        started = time.perf_counter()
        try:
            import unstructured  # noqa: F401
        except ImportError as err:
            raise MissingDependencyError(
                f"parser/office needs the 'unstructured' package: {_INSTALL_HINT}"
            ) from err
        for fmt in ("docx", "pptx"):
            _partitioner(fmt)
        _install_picture_hooks()
        _install_nlp_stand_in()
        _READY = True
        logger.debug("unstructured imported in %.2f s", time.perf_counter() - started)


def _partitioner(fmt: str) -> Any:
    module, func = _PARTITIONERS[fmt]
    try:
        return getattr(importlib.import_module(module), func)
    except ImportError as err:
        raise MissingDependencyError(
            f"parsing {FORMAT_LABELS[fmt]} files needs unstructured's '{fmt}' extra "
            f"({err.name or err}): {_INSTALL_HINT}"
        ) from err


class _StandInNlp:
    """What unstructured's text-type heuristics need from spaCy, without a model:
    sentence boundaries (spaCy's rule-based sentencizer) and POS tags where any
    lower-case content word is taken for a verb (so a sentence in running text reads
    as narrative text and a capitalised short line as a title)."""

    max_length = 1_000_000

    def __init__(self) -> None:
        import spacy

        self._nlp = spacy.blank("en")
        self._nlp.add_pipe("sentencizer")

    def __call__(self, text: str) -> Any:
        doc = self._nlp(text)
        for token in doc:
            if token.is_alpha and token.is_lower and len(token) > 1 and not token.is_stop:
                token.tag_ = "VB"
        return doc


def _install_nlp_stand_in() -> None:
    try:
        import spacy.util
        from unstructured.nlp import tokenize
    except ImportError:  # older unstructured (NLTK based): nothing to do
        return
    if spacy.util.is_package("en_core_web_sm") or not hasattr(tokenize, "_get_nlp"):
        return
    stand_in = _StandInNlp()
    tokenize._get_nlp = lambda: stand_in  # type: ignore[attr-defined]
    logger.info("spaCy model en_core_web_sm is not installed: unstructured's text-type "
                "heuristics use ragnest's rule-based stand-in (install the model for "
                "better heading detection)")


@dataclass
class _Pictures:
    """Per-parse state of the picture sub-partitioners (held in a context variable)."""

    archive: str  # the file the ImageRef blobs point into
    enabled: bool = True
    crc_members: dict[tuple[int, int], str] | None = None  # ODT: (crc32, size) -> member
    seen: set[str] = dataclasses.field(default_factory=set)
    document_part: Any = None  # DOCX: the main document part (for pictures not in paragraphs)

    def accept(self, member: str, blob: bytes | None, *, nbytes: int, content_type: str = "",
               head: bytes | None = None) -> str | None:
        """The member to reference for this picture, or ``None`` to skip it."""
        if not self.enabled:
            return None
        if _VECTOR_IMAGE.search(content_type) or _VECTOR_IMAGE.search(Path(member).suffix):
            logger.debug("%s: skipping vector picture %s (%s)", self.archive, member,
                         content_type or "by extension")
            return None
        if nbytes < _MIN_IMAGE_BYTES:
            logger.debug("%s: skipping small picture %s (%d bytes)", self.archive, member, nbytes)
            return None
        size = _pixel_size(head if head is not None else blob or b"")
        if size is not None and min(size) < _MIN_IMAGE_SIDE:
            logger.debug("%s: skipping small picture %s (%dx%d px)", self.archive, member, *size)
            return None
        if self.crc_members is not None:
            key = (zlib.crc32(blob or b""), nbytes)
            original = self.crc_members.get(key)
            if original is None:
                logger.debug("%s: picture %s not found in the original file", self.archive,
                             member)
                return None
            member = original
        if member in self.seen:
            return None
        self.seen.add(member)
        return member

    def ref(self, member: str) -> ImageRef:
        return ImageRef(blob=f"{self.archive}::{member}")


_PICTURES: contextvars.ContextVar[_Pictures | None] = contextvars.ContextVar(
    "ragnest_office_pictures", default=None
)


def _pixel_size(head: bytes) -> tuple[int, int] | None:
    if not head:
        return None
    try:
        from PIL import Image as PILImage

        with PILImage.open(io.BytesIO(head)) as img:
            return int(img.size[0]), int(img.size[1])
    except Exception:  # no Pillow, or a format it cannot size: keep the picture
        return None


def _image_element(alt: str, member: str, page: int | None) -> Any:
    from unstructured.documents.elements import ElementMetadata, Image

    return Image(text=alt, metadata=ElementMetadata(image_path=member, page_number=page),
                 detection_origin="ragnest")


class _DocxPictures:
    """unstructured DOCX picture sub-partitioner: an Image element per picture of a
    paragraph, while a ragnest parse is running (else the previously registered one)."""

    previous: ClassVar[Any] = None

    @classmethod
    def iter_elements(cls, paragraph: Any, opts: Any) -> Iterator[Any]:
        state = _PICTURES.get()
        if state is None:
            if cls.previous is not None:
                yield from cls.previous.iter_elements(paragraph, opts)
            return
        if state.document_part is None:
            state.document_part = opts.document.part
        element = paragraph._p
        rids: list[tuple[str, str]] = []
        for blip in element.iter(f"{{{_A}}}blip"):
            rid = blip.get(f"{{{_R}}}embed")
            if rid:
                rids.append((rid, _docx_alt_text(blip)))
        for imagedata in element.iter(f"{{{_VML}}}imagedata"):
            rid = imagedata.get(f"{{{_R}}}id")
            if rid:
                rids.append((rid, imagedata.get("title") or ""))
        for rid, alt in rids:
            part = paragraph.part.related_parts.get(rid)
            member = _accept_part(state, part)
            if member is not None:
                yield _image_element(alt, member, opts.metadata_page_number)


def _docx_alt_text(blip: Any) -> str:
    node = blip.getparent()
    while node is not None and node.tag not in (f"{{{_WP}}}inline", f"{{{_WP}}}anchor"):
        node = node.getparent()
    if node is None:
        return ""
    doc_pr = node.find(f"{{{_WP}}}docPr")
    if doc_pr is None:
        return ""
    return (doc_pr.get("descr") or doc_pr.get("title") or "").strip()


def _accept_part(state: _Pictures, part: Any) -> str | None:
    if part is None or not hasattr(part, "blob"):
        return None
    blob = part.blob
    member = str(part.partname).lstrip("/")
    return state.accept(member, blob, nbytes=len(blob), content_type=part.content_type or "")


class _PptxPictures:
    """unstructured PPTX picture sub-partitioner (see :class:`_DocxPictures`)."""

    previous: ClassVar[Any] = None

    @classmethod
    def iter_elements(cls, picture: Any, opts: Any) -> Iterator[Any]:
        state = _PICTURES.get()
        if state is None:
            if cls.previous is not None:
                yield from cls.previous.iter_elements(picture, opts)
            return
        try:
            rid = picture._element.blip_rId
            part = picture.part.related_part(rid) if rid else None
            alt = picture._element._nvXxPr.cNvPr.get("descr") or ""
        except (AttributeError, KeyError) as err:
            logger.debug("%s: skipping unreadable picture: %s", state.archive, err)
            return
        member = _accept_part(state, part)
        if member is not None:
            yield _image_element(alt.strip(), member, opts.page_number)


def _install_picture_hooks() -> None:
    from unstructured.partition import docx as docx_module
    from unstructured.partition import pptx as pptx_module

    docx_options = docx_module.DocxPartitionerOptions
    if docx_options._PicturePartitionerCls is not _DocxPictures:
        _DocxPictures.previous = docx_options._PicturePartitionerCls
        docx_module.register_picture_partitioner(_DocxPictures)
    pptx_options = pptx_module.PptxPartitionerOptions
    if pptx_options._PicturePartitionerCls is not _PptxPictures:
        _PptxPictures.previous = pptx_options._PicturePartitionerCls
        pptx_module.register_picture_partitioner(_PptxPictures)


# --------------------------------------------------------------------------------------
# Text decoding helpers
# --------------------------------------------------------------------------------------


def _decode_html(data: bytes, name: str) -> tuple[str, str]:
    """HTML bytes to text: BOM, then a ``<meta charset>``, then UTF-8, then cp1252."""
    if not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        match = _META_CHARSET.search(data[:4096])
        if match:
            charset = match.group(1).decode("ascii").lower()
            try:
                text = data.decode(charset)
            except (LookupError, UnicodeDecodeError):
                pass
            else:
                return text, charset
    text, encoding = decode_text(data, name)
    return text.lstrip("\ufeff"), encoding


def _fix_email_charsets(data: bytes) -> tuple[bytes, Any]:
    """Give text parts without a (correct) charset one, so non-UTF-8 mail decodes."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    changed = False
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        if part.get_content_disposition() == "attachment":
            continue
        raw = part.get_payload(decode=True) or b""
        charset = part.get_content_charset()
        if raw.isascii():
            continue
        if charset not in (None, "us-ascii", "ascii"):
            try:
                raw.decode(charset)
                continue  # declared and right
            except (LookupError, UnicodeDecodeError):
                pass
        text, _ = decode_text(raw)  # UTF-8, else cp1252
        part.set_content(text, subtype=part.get_content_subtype(), charset="utf-8")
        changed = True
    return (bytes(msg) if changed else data), msg


def _email_headers(data: bytes) -> dict[str, str]:
    """Subject, From, To, Cc and Date, decoded: RFC 2047 words, else raw 8-bit bytes
    (UTF-8, else cp1252 -- old mailers put those in headers without declaring them)."""
    from email.header import decode_header, make_header

    block = re.split(rb"\r?\n\r?\n", data, maxsplit=1)[0]
    block = re.sub(rb"\r?\n[ \t]+", b" ", block)  # unfold continuation lines
    out: dict[str, str] = {}
    for line in block.split(b"\n"):
        key, sep, raw = line.partition(b":")
        field = key.strip().lower().decode("ascii", "replace")
        if not sep or field not in ("subject", "from", "to", "cc", "date") or field in out:
            continue
        raw = raw.strip()
        try:
            if raw.isascii():
                text = str(make_header(decode_header(raw.decode("ascii"))))
            else:
                text = decode_text(raw)[0]
        except (UnicodeError, LookupError, ValueError, ParseError):
            text = raw.decode("utf-8", "replace")
        text = " ".join(text.split())
        if text:
            out[field] = text
    return out


def _email_html(data: bytes, msg: Any) -> str:
    """An HTML page for an e-mail: its headers, then the HTML (else plain-text) body."""
    rows = "".join(
        f"<tr><th align='left'>{key.title()}</th><td>{html_lib.escape(value)}</td></tr>"
        for key, value in _email_headers(data).items()
    )
    body = ""
    part = msg.get_body(preferencelist=("html", "plain"))
    if part is not None:
        content = part.get_content()
        if part.get_content_subtype() == "html":
            body = content
        else:
            body = f"<pre style='white-space: pre-wrap'>{html_lib.escape(content)}</pre>"
    names = [a.get_filename() for a in msg.iter_attachments() if a.get_filename()]
    attached = (f"<p>Attachments: {html_lib.escape(', '.join(names))}</p>" if names else "")
    return f"<html><body><table>{rows}</table><hr/>{body}{attached}</body></html>"


def _html_title(text: str) -> str | None:
    match = re.search(r"<title[^>]*>(.*?)</title>", text[:20000], re.IGNORECASE | re.DOTALL)
    if not match:
        return None
    title = " ".join(html_lib.unescape(re.sub(r"<[^>]+>", "", match.group(1))).split())
    return title or None


def _unwrap_figures(text: str) -> tuple[str, set[str]]:
    """unstructured drops ``<figure>`` blocks whole; turn them into ``<div>``/``<p>``
    so their images and captions are kept, and return the caption texts."""
    captions = {
        " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", m)).split())
        for m in re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", text,
                            re.IGNORECASE | re.DOTALL)
    }
    text = re.sub(r"<(/?)figure\b", r"<\1div", text, flags=re.IGNORECASE)
    text = re.sub(r"<(/?)figcaption\b", r"<\1p", text, flags=re.IGNORECASE)
    return text, {c for c in captions if c}


def _front_matter(text: str) -> tuple[str, dict[str, str]]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return text, {}
    fields: dict[str, str] = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith((" ", "\t", "-")):
            fields[key.strip().lower()] = value.strip().strip("'\"")
    return text[match.end():], fields


def _xml_title(xml: bytes) -> str | None:
    match = re.search(rb"<dc:title[^>]*>(.*?)</dc:title>", xml, re.DOTALL)
    if not match:
        return None
    title = html_lib.unescape(match.group(1).decode("utf-8", "replace"))
    return " ".join(re.sub(r"<[^>]+>", "", title).split()) or None


def _archive_title(data: bytes, fmt: str) -> str | None:
    """The title stored in an OOXML/ODT/EPUB container's metadata, if any."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            if fmt in ("docx", "pptx", "xlsx") and "docProps/core.xml" in names:
                return _xml_title(zf.read("docProps/core.xml"))
            if fmt == "odt" and "meta.xml" in names:
                return _xml_title(zf.read("meta.xml"))
            if fmt == "epub":
                for member in names:
                    if member.endswith(".opf"):
                        return _xml_title(zf.read(member))
    except (zipfile.BadZipFile, OSError, KeyError):
        return None
    return None


# --------------------------------------------------------------------------------------
# LibreOffice and MuPDF rendering
# --------------------------------------------------------------------------------------


def find_libreoffice(explicit: str | None = None) -> str | None:
    """The LibreOffice executable: ``explicit`` (a path or command name) when given,
    else ``soffice`` or ``libreoffice`` on ``PATH``; ``None`` when there is none.

    >>> find_libreoffice("/nonexistent/soffice") is None
    True
    """
    if explicit:
        return shutil.which(explicit)
    return shutil.which("soffice") or shutil.which("libreoffice")


def _run_libreoffice(soffice: str, src: Path, target: str, outdir: Path, timeout: int,
                     name: str) -> Path:
    """Convert ``src`` with LibreOffice into ``outdir``; the converted file's path."""
    with tempfile.TemporaryDirectory(prefix="ragnest-lo-") as profile:
        # A private profile per run: concurrent conversions would fight over one.
        cmd = [soffice, f"-env:UserInstallation={Path(profile).as_uri()}", "--headless",
               "--norestore", "--convert-to", target, "--outdir", str(outdir), str(src)]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as err:
            raise ParseError(name, f"LibreOffice did not finish converting to {target} "
                                   f"within {timeout} s") from err
        except OSError as err:
            raise ParseError(name, f"cannot run LibreOffice ({soffice}): {err}") from err
    out = outdir / f"{src.stem}.{target.split(':')[0]}"
    if proc.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        detail = (proc.stderr or proc.stdout or b"").decode("utf-8", "replace").strip()
        detail = " ".join(detail.split())[-300:] or f"exit status {proc.returncode}"
        raise ParseError(name, f"LibreOffice could not convert the document to {target}: "
                               f"{detail}")
    return out


def _write_atomic(path: Path, data: bytes, name: str) -> None:
    """Write ``data`` to ``path`` so concurrent readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ParseError(name, f"cannot write {path}: {err}") from err


# --------------------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------------------


@dataclass
class _Document:
    """One document being parsed: its bytes, real format and where pictures point."""

    source: Source
    name: str
    data: bytes
    fmt: str
    archive: str  # what ImageRef blobs point into ("" when pictures cannot be referenced)
    encrypted: bool = False

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(kw_only=True)
class OfficeParser:
    """Parser for Office documents, HTML, Markdown, e-mail and EPUB (via unstructured).

    ``chunking`` is ``"interleaved"`` (text, tables and pictures in reading order,
    ``max_chars``/``overlap`` as in :func:`~ragnest.parsers.chunking.chunk_segments`)
    or ``"page"`` (one page chunk per rendered page; ``render_dpi`` is the resolution
    recorded in the page ImageRefs). ``libreoffice`` is the path of ``soffice`` (default:
    looked up on ``PATH``), needed for page mode on Office formats and for legacy
    ``.doc``/``.ppt`` files; ``cache_dir`` holds rendered PDFs and converted legacy files
    (default ``~/.cache/ragnest/rendered``); ``timeout_s`` bounds one LibreOffice run.
    ``password_env`` names an environment variable holding the password of encrypted
    Office files (their pictures are not referenced: the file on disk stays encrypted).

    For :class:`Source` objects made from bytes, picture and page ImageRefs name the
    display name (``"report.docx::word/media/image1.png"``), which loads later only if a
    file by that name exists; ingest from paths when pictures matter.

    Chunk metadata: ``format``, ``title`` (document properties, HTML ``<title>``,
    Markdown front matter, e-mail subject), ``sheet`` (XLSX), ``subject``, ``from``,
    ``to``, ``cc``, ``date`` and ``attachments`` (e-mail; attachments are listed, not
    parsed), plus ``position`` from the chunker.

    >>> OfficeParser(chunking="page", render_dpi=144).chunking
    'page'
    >>> OfficeParser(chunking="slides")
    Traceback (most recent call last):
    ...
    ragnest.errors.ConfigError: OfficeParser.chunking must be 'interleaved' or 'page', not 'slides'
    """

    chunking: str = "interleaved"
    max_chars: int = 1500
    overlap: int = 200
    libreoffice: str | None = None
    render_dpi: int = 96
    cache_dir: str | None = None
    timeout_s: int = 300
    password_env: str | None = None
    extensions: ClassVar[tuple[str, ...]] = (
        ".docx", ".pptx", ".xlsx", ".html", ".htm", ".md", ".markdown", ".eml", ".epub",
        ".odt", ".xls", ".rtf", ".msg", ".doc", ".ppt",
    )

    def __post_init__(self) -> None:
        if self.chunking not in ("interleaved", "page"):
            raise ConfigError(f"OfficeParser.chunking must be 'interleaved' or 'page', "
                              f"not {self.chunking!r}")
        if self.max_chars <= 0 or not 0 <= self.overlap < self.max_chars:
            raise ConfigError("OfficeParser needs max_chars > 0 and 0 <= overlap < max_chars")
        if self.render_dpi <= 0 or self.timeout_s <= 0:
            raise ConfigError("OfficeParser.render_dpi and timeout_s must be positive")

    def warm_up(self) -> None:
        """Import unstructured and its partitioners (seconds: it loads spaCy, pandas, ...)."""
        _import_unstructured()
        for fmt in _PARTITIONERS:
            try:
                _partitioner(fmt)
            except MissingDependencyError as err:  # that format fails later, with this reason
                logger.info("%s", err)

    def close(self) -> None:
        """Nothing to release (unstructured stays imported)."""

    # -- entry point ---------------------------------------------------------------

    def parse(self, source: Source) -> Iterator[Chunk]:
        """Yield the chunks of ``source`` (raises :class:`ParseError` on bad input)."""
        doc = self._open(source)
        started = time.perf_counter()
        if self.chunking == "page" and doc.fmt != "msg":
            yield from self._pages(doc)
        else:
            if self.chunking == "page":
                logger.warning("%s: Outlook messages have no page form; making interleaved "
                               "chunks", doc.name)
            yield from self._interleaved(doc)
        logger.debug("parsed %s (%s) in %.2f s", doc.name, doc.fmt,
                     time.perf_counter() - started)

    def _open(self, source: Source) -> _Document:
        name = source.display_name
        try:
            data = source.read_bytes()
        except OSError as err:
            raise ParseError(name, f"cannot read file: {err.strerror or err}") from err
        except ValueError as err:
            raise ParseError(name, str(err)) from err
        fmt = detect_format(data, name)
        encrypted = False
        if fmt == "encrypted":
            data = self._decrypt(data, name)
            encrypted = True
            fmt = detect_format(data, name)
        expected = _EXTENSION_FORMATS.get(source.suffix)
        if expected and expected != fmt:
            logger.info("%s: the content is %s; parsing it as that", name,
                        _with_article(FORMAT_LABELS[fmt]))
        archive = "" if encrypted else (source.path or name)
        return _Document(source=source, name=name, data=data, fmt=fmt, archive=archive,
                         encrypted=encrypted)

    def _decrypt(self, data: bytes, name: str) -> bytes:
        password = os.environ.get(self.password_env) if self.password_env else None
        if not password:
            hint = (f"the environment variable {self.password_env} is not set"
                    if self.password_env else
                    "pass its password via OfficeParser(password_env='VAR') and set that "
                    "environment variable")
            raise ParseError(name, f"the document is password-protected (encrypted); {hint}")
        try:
            import msoffcrypto
        except ImportError as err:
            raise MissingDependencyError(
                f"decrypting Office files needs 'msoffcrypto-tool': {_INSTALL_HINT}") from err
        out = io.BytesIO()
        try:
            office = msoffcrypto.OfficeFile(io.BytesIO(data))
            office.load_key(password=password)
            office.decrypt(out)
        except Exception as err:
            raise ParseError(name, "the document is password-protected and could not be "
                                   f"decrypted with the password given ({err})") from err
        return out.getvalue()

    # -- page mode ---------------------------------------------------------------------

    def _cache(self, name: str) -> Path:
        path = Path(self.cache_dir).expanduser() if self.cache_dir else (
            Path.home() / ".cache" / "ragnest" / "rendered")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ParseError(name, f"cannot create cache_dir {path}: {err}") from err
        return path

    def _soffice(self, name: str, why: str = LIBREOFFICE_MISSING) -> str:
        soffice = find_libreoffice(self.libreoffice)
        if soffice is None:
            if self.libreoffice:
                why = (f"{why.split(';')[0]}; libreoffice={self.libreoffice!r} was not found "
                       "(install libreoffice, or fix the path)")
            raise ParseError(name, why)
        return soffice

    def _pages(self, doc: _Document) -> Iterator[Chunk]:
        if doc.encrypted:
            raise ParseError(doc.name, "chunking='page' does not render password-protected "
                                       "documents (the rendered pages would be stored "
                                       "unencrypted); use chunking='interleaved'")
        pdf = self._render(doc)
        from ragnest.parsers.pdf import PdfParser

        title = self._title(doc)
        rendered = Source(path=str(pdf), name=Path(doc.name).name,
                          document_id_override=doc.source.document_id)
        for chunk in PdfParser(dpi=self.render_dpi).parse(rendered):
            meta = {**chunk.metadata, "format": doc.fmt, "rendered_pdf": str(pdf)}
            if title:
                meta["title"] = title
            yield dataclasses.replace(chunk, source=doc.name, metadata=meta)

    def _render(self, doc: _Document) -> Path:
        """The cached PDF rendering of ``doc`` (made on first use)."""
        target = self._cache(doc.name) / f"{doc.sha256}.pdf"
        if target.is_file() and target.stat().st_size > 0:
            return target
        started = time.perf_counter()
        if doc.fmt in _LIBREOFFICE_FORMATS:
            soffice = self._soffice(doc.name)
            with tempfile.TemporaryDirectory(prefix="ragnest-render-") as tmp:
                src = Path(tmp) / f"{doc.sha256}.{doc.fmt}"
                src.write_bytes(doc.data)
                out = _run_libreoffice(soffice, src, "pdf", Path(tmp) / "out", self.timeout_s,
                                       doc.name)
                _write_atomic(target, out.read_bytes(), doc.name)
        else:
            _write_atomic(target, self._render_reflowable(doc), doc.name)
        logger.info("%s: rendered to %s in %.1f s", doc.name, target,
                    time.perf_counter() - started)
        return target

    def _render_reflowable(self, doc: _Document) -> bytes:
        """HTML, Markdown, e-mail and EPUB laid out on A4 pages by MuPDF."""
        import pymupdf

        try:
            if doc.fmt == "epub":
                book = pymupdf.open(stream=doc.data, filetype="epub")
                try:
                    book.layout(rect=pymupdf.paper_rect("a4"), fontsize=11)
                    return book.convert_to_pdf()
                finally:
                    book.close()
            base = str(Path(doc.source.path).parent) if doc.source.path else None
            if doc.fmt == "html":
                text = _decode_html(doc.data, doc.name)[0]
            elif doc.fmt == "md":
                text = self._markdown_html(doc)
            else:
                text = _email_html(doc.data, _fix_email_charsets(doc.data)[1])
                base = None
            return _story_pdf(pymupdf, text, base)
        except ParseError:
            raise
        except Exception as err:
            raise ParseError(doc.name, f"cannot lay out the {FORMAT_LABELS[doc.fmt]} as pages "
                                       f"({type(err).__name__}: {err})") from err

    def _markdown_html(self, doc: _Document) -> str:
        text, _ = decode_text(doc.data, doc.name)
        body, _ = _front_matter(text.lstrip("\ufeff"))
        try:
            import markdown
        except ImportError as err:
            raise MissingDependencyError(
                f"Markdown needs the 'markdown' package (unstructured's 'md' extra): "
                f"{_INSTALL_HINT}") from err
        return markdown.markdown(body, extensions=["tables", "fenced_code"])

    # -- interleaved mode --------------------------------------------------------------

    def _interleaved(self, doc: _Document) -> Iterator[Chunk]:
        _import_unstructured()
        fmt = doc.fmt
        if doc.fmt in _LEGACY_TARGETS:
            doc = self._convert_legacy(doc)
        captions: set[str] = set()
        pictures = _Pictures(archive=doc.archive, enabled=bool(doc.archive))
        images = _ImageResolver(doc)
        token = _PICTURES.set(pictures)
        try:
            elements, extra = self._partition(doc, pictures, captions)
        except (ParseError, MissingDependencyError):
            raise
        except Exception as err:
            raise ParseError(doc.name, f"unstructured could not parse this "
                                       f"{FORMAT_LABELS[doc.fmt]}: {type(err).__name__}: "
                                       f"{err}") from err
        finally:
            _PICTURES.reset(token)
        meta: dict[str, Any] = {"format": fmt, "title": self._title(doc), **extra}
        pages = self._segments(doc, elements, pictures, images, captions)
        if not any(segs for segs, _ in pages.values()):
            raise ParseError(doc.name, f"no text, tables or pictures found in this "
                                       f"{FORMAT_LABELS[doc.fmt]}")
        position = 0
        for page, (segments, page_meta) in pages.items():
            if not segments:
                continue
            chunks = chunk_segments(
                _mark_captions(segments, captions),
                document_id=doc.source.document_id,
                source=doc.name,
                page=page,
                max_chars=self.max_chars,
                overlap=self.overlap,
                first_position=position,
                metadata={k: v for k, v in {**meta, **page_meta}.items() if v not in (None, "")},
            )
            position += len(chunks)
            yield from chunks

    def _convert_legacy(self, doc: _Document) -> _Document:
        """A .doc/.ppt converted to .docx/.pptx by LibreOffice (cached by content hash)."""
        fmt = _LEGACY_TARGETS[doc.fmt]
        soffice = self._soffice(
            doc.name, f"{FORMAT_LABELS[doc.fmt]} files need LibreOffice to be converted to "
                      f".{fmt} first; it was not found on PATH (install libreoffice, or save "
                      f"the file as .{fmt})")
        target = self._cache(doc.name) / f"{doc.sha256}.{fmt}"
        if not (target.is_file() and target.stat().st_size > 0):
            with tempfile.TemporaryDirectory(prefix="ragnest-convert-") as tmp:
                src = Path(tmp) / f"{doc.sha256}.{doc.fmt}"
                src.write_bytes(doc.data)
                out = _run_libreoffice(soffice, src, fmt, Path(tmp) / "out", self.timeout_s,
                                       doc.name)
                _write_atomic(target, out.read_bytes(), doc.name)
        return dataclasses.replace(doc, data=target.read_bytes(), fmt=fmt,
                                   archive="" if doc.encrypted else str(target))

    def _title(self, doc: _Document) -> str | None:
        """The document's title from its metadata, if it has one."""
        if doc.fmt in ("docx", "pptx", "xlsx", "odt", "epub"):
            return _archive_title(doc.data, doc.fmt)
        if doc.fmt == "html":
            return _html_title(_decode_html(doc.data, doc.name)[0])
        if doc.fmt == "md":
            text, _ = decode_text(doc.data, doc.name)
            return _front_matter(text.lstrip("\ufeff"))[1].get("title") or None
        if doc.fmt == "eml":
            return _email_headers(doc.data).get("subject")
        return None

    def _partition(self, doc: _Document, pictures: _Pictures,
                   captions: set[str]) -> tuple[list[Any], dict[str, Any]]:
        """unstructured's elements for ``doc`` and document-level metadata."""
        fmt = doc.fmt
        stream = io.BytesIO(doc.data)
        extra: dict[str, Any] = {}
        if fmt == "docx":
            return _partitioner("docx")(file=stream, infer_table_structure=True,
                                        include_page_breaks=True), extra
        if fmt == "pptx":
            return _partitioner("pptx")(file=stream, infer_table_structure=True,
                                        include_page_breaks=True), extra
        if fmt in ("xlsx", "xls"):
            return _partitioner("xlsx")(file=stream, infer_table_structure=True,
                                        find_subtable=True), extra
        if fmt == "odt":
            if pictures.enabled:
                with zipfile.ZipFile(stream) as zf:
                    pictures.crc_members = {
                        (info.CRC, info.file_size): info.filename for info in zf.infolist()
                        if info.filename.startswith("Pictures/")
                    }
            return _partitioner("odt")(file=io.BytesIO(doc.data), infer_table_structure=True), extra
        if fmt == "html":
            text, encoding = _decode_html(doc.data, doc.name)
            text, found = _unwrap_figures(text)
            captions.update(found)
            extra["encoding"] = encoding
            return _partitioner("html")(text=text), extra
        if fmt == "md":
            text, encoding = decode_text(doc.data, doc.name)
            body, _ = _front_matter(text.lstrip("\ufeff"))
            extra["encoding"] = encoding
            if not body.strip():
                return [], extra
            return _partitioner("md")(text=body), extra
        if fmt in ("epub", "rtf"):
            from unstructured.file_utils.file_conversion import (
                convert_file_to_html_text_using_pandoc,
            )

            html_text = convert_file_to_html_text_using_pandoc(source_format=fmt, file=stream)
            html_text, found = _unwrap_figures(html_text)
            captions.update(found)
            return _partitioner("html")(text=html_text), extra
        if fmt == "eml":
            fixed, msg = _fix_email_charsets(doc.data)
            extra.update(_email_metadata(doc.data, msg))
            elements = _partitioner("eml")(file=io.BytesIO(fixed), process_attachments=False)
            return elements, extra
        if fmt == "msg":
            elements = _partitioner("msg")(file=stream, process_attachments=False)
            extra.update(_msg_metadata(elements, doc.data))
            extra["title"] = extra.get("subject")
            return elements, extra
        raise ParseError(doc.name, f"no partitioner for {FORMAT_LABELS.get(fmt, fmt)}")

    def _segments(self, doc: _Document, elements: Sequence[Any], pictures: _Pictures,
                  images: _ImageResolver, captions: set[str],
                  ) -> dict[int | None, tuple[list[Segment], dict[str, Any]]]:
        """Segments grouped by page (in first-seen order), with per-page metadata."""
        pages: dict[int | None, tuple[list[Segment], dict[str, Any]]] = {}
        current: int | None = None
        for element in elements:
            meta = element.metadata
            page = meta.page_number if meta.page_number is not None else current
            current = page
            if page not in pages:
                pages[page] = ([], {"sheet": meta.page_name} if doc.fmt in ("xlsx", "xls")
                               and meta.page_name else {})
            pages[page][0].extend(self._element_segments(doc, element, page, pictures, images))
        # DOCX pictures outside body paragraphs (table cells, text frames): at the end.
        part = pictures.document_part
        if part is not None and pictures.enabled:
            tail: list[Segment] = []
            for rel in list(part.rels.values()):
                if rel.is_external or not rel.reltype.endswith("/image"):
                    continue
                member = _accept_part(pictures, rel.target_part)
                if member is not None:
                    tail.append(Segment(kind="image", image=pictures.ref(member), page=current,
                                        role="picture"))
            if tail:
                pages.setdefault(current, ([], {}))[0].extend(tail)
        return pages

    def _element_segments(self, doc: _Document, element: Any, page: int | None,
                          pictures: _Pictures, images: _ImageResolver) -> list[Segment]:
        category = getattr(element, "category", type(element).__name__)
        text = (element.text or "").strip()
        if category in ("Header", "Footer", "PageBreak", "PageNumber"):
            return []
        if category in ("Table", "TableChunk"):
            html = element.metadata.text_as_html
            table = html_table_to_markdown(html) if html else ""
            if not table:
                return [Segment(kind="text", text=text, page=page)] if text else []
            return [Segment(kind="table", text=part, page=page)
                    for part in markdown_table_parts(table, self.max_chars)]
        if category == "Image":
            member = element.metadata.image_path
            if member and member in pictures.seen:  # set by the DOCX/PPTX picture hooks
                ref: ImageRef | None = pictures.ref(member)
            else:
                ref = images.resolve(element.metadata.image_url)
            if _FILE_NAME.match(text) or text.lower() in _GENERIC_ALT:
                text = ""  # python-pptx and others store the file name as alt text
            if ref is not None:
                return [Segment(kind="image", text=text, image=ref, page=page, role="picture")]
            return [Segment(kind="text", text=text, page=page)] if text else []
        if not text:
            return []
        role = {"Title": "heading", "ListItem": "list", "CodeSnippet": "code",
                "FigureCaption": "caption"}.get(category)
        if role == "heading" and doc.fmt in ("eml", "msg"):
            role = None  # in mail bodies "titles" are greetings and signatures
        return [Segment(kind="text", text=text, page=page, role=role)]


def _story_pdf(pymupdf: Any, html: str, base: str | None) -> bytes:
    """Lay out ``html`` on A4 pages with MuPDF's Story engine; the PDF bytes."""
    archive = pymupdf.Archive(base) if base else None
    story = pymupdf.Story(html=html, archive=archive,
                          user_css="body {font-family: sans-serif; font-size: 11pt;}")
    buffer = io.BytesIO()
    writer = pymupdf.DocumentWriter(buffer)
    mediabox = pymupdf.paper_rect("a4")
    where = mediabox + (48, 48, -48, -48)
    more = True
    pages = 0
    while more and pages < 10_000:
        device = writer.begin_page(mediabox)
        more, _ = story.place(where)
        story.draw(device)
        writer.end_page()
        pages += 1
    writer.close()
    return buffer.getvalue()


class _ImageResolver:
    """HTML/Markdown/EPUB image sources to lazy ImageRefs (local files and EPUB members)."""

    def __init__(self, doc: _Document) -> None:
        self.doc = doc
        self.seen: set[str] = set()
        self._members: dict[str, zipfile.ZipInfo] | None = None

    def resolve(self, url: str | None) -> ImageRef | None:
        if not url or not self.doc.archive:
            return None
        parts = urlsplit(url.strip())
        if parts.scheme or parts.netloc or not parts.path:  # http:, data:, cid:, ...
            return None
        path = unquote(parts.path)
        if self.doc.fmt == "epub":
            return self._epub_member(path)
        if self.doc.fmt in ("html", "md") and self.doc.source.path:
            return self._local_file(path)
        return None

    def _accept(self, key: str, nbytes: int, head: bytes) -> bool:
        if key in self.seen:
            return False
        state = _Pictures(archive=self.doc.name)
        if state.accept(key, None, nbytes=nbytes, head=head) is None:
            return False
        self.seen.add(key)
        return True

    def _epub_member(self, path: str) -> ImageRef | None:
        if self._members is None:
            with zipfile.ZipFile(io.BytesIO(self.doc.data)) as zf:
                self._members = {info.filename: info for info in zf.infolist()}
        clean = os.path.normpath(path).lstrip("./").replace("\\", "/")
        hits = sorted(m for m in self._members if m == clean or m.endswith("/" + clean))
        if not hits:
            logger.debug("%s: image %s not in the e-book", self.doc.name, path)
            return None
        member = hits[0]
        with zipfile.ZipFile(io.BytesIO(self.doc.data)) as zf, zf.open(member) as fh:
            head = fh.read(65536)
        if not self._accept(member, self._members[member].file_size, head):
            return None
        return ImageRef(blob=f"{self.doc.archive}::{member}")

    def _local_file(self, path: str) -> ImageRef | None:
        base = Path(str(self.doc.source.path)).parent
        candidate = (base / path).resolve() if not os.path.isabs(path) else Path(path)
        if not candidate.is_file():
            logger.debug("%s: image %s not found", self.doc.name, candidate)
            return None
        with open(candidate, "rb") as fh:
            head = fh.read(65536)
        if not self._accept(str(candidate), candidate.stat().st_size, head):
            return None
        return ImageRef(blob=str(candidate))


def _mark_captions(segments: list[Segment], captions: set[str]) -> list[Segment]:
    """Give the caption role to text next to an image or table that reads like one
    ("Figure 2: ...", an HTML ``<figcaption>``); drop captions that repeat alt text."""
    out: list[Segment] = []
    for i, seg in enumerate(segments):
        if seg.kind == "text" and seg.role in (None, "caption"):
            prev = segments[i - 1] if i else None
            nxt = segments[i + 1] if i + 1 < len(segments) else None
            beside = [s for s in (prev, nxt) if s is not None and s.kind in ("image", "table")]
            if seg.text in captions or (beside and _CAPTION.match(seg.text)):
                if prev is not None and prev.kind == "image" and prev.text.strip() == seg.text:
                    continue  # pandoc repeats alt text as the figure caption
                seg = dataclasses.replace(seg, role="caption")
        out.append(seg)
    return out


def _email_metadata(data: bytes, msg: Any) -> dict[str, Any]:
    meta: dict[str, Any] = dict(_email_headers(data))
    names = [str(part.get_filename()) for part in msg.iter_attachments() if part.get_filename()]
    if names:
        meta["attachments"] = names
    return meta


def _msg_metadata(elements: Iterable[Any], data: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for element in elements:
        m = element.metadata
        if m.subject and "subject" not in meta:
            meta["subject"] = m.subject
        if m.sent_from and "from" not in meta:
            meta["from"] = ", ".join(m.sent_from)
        if m.sent_to and "to" not in meta:
            meta["to"] = ", ".join(m.sent_to)
    try:
        from oxmsg import Message

        msg = Message.load(io.BytesIO(data))
        names = [a.file_name for a in msg.attachments if a.file_name]
        if names:
            meta["attachments"] = names
        if msg.sent_date and "date" not in meta:
            meta["date"] = msg.sent_date.isoformat()
    except Exception as err:  # metadata only: never fail the parse for it
        logger.debug("cannot read .msg attachments list: %s", err)
    return meta
