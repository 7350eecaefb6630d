"""Office documents, web pages, Markdown, e-mail and e-books into chunks (via unstructured).

`unstructured <https://github.com/Unstructured-IO/unstructured>`_ is imported in one
adapter module (:mod:`~ragnest.parsers.office._unstructured`), lazily (in
:meth:`OfficeParser.warm_up` or on the first :meth:`~OfficeParser.parse`), so importing
this package is cheap::

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
``ImageRef(blob="/abs/report.docx::word/media/image1.png")`` (read through the one
resolver, :mod:`ragnest.media.resolve`, when rendered), a local image next to an HTML or
Markdown file as
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
unstructured through this package also sets ``SCARF_NO_ANALYTICS`` and
``UNSTRUCTURED_DISABLE_NOTICE`` (unless already set): no usage pings from ingestion.

The package, by job: :mod:`~ragnest.parsers.office.detect` (real formats),
:mod:`~ragnest.parsers.office.tables` (HTML tables to Markdown),
:mod:`~ragnest.parsers.office.markup` (HTML/Markdown text and titles),
:mod:`~ragnest.parsers.office.mail` (e-mail headers, charsets, bodies),
:mod:`~ragnest.parsers.office.render` (LibreOffice and MuPDF pages),
:mod:`~ragnest.parsers.office.pictures` (picture refs),
:mod:`~ragnest.parsers.office.elements` (elements to segments),
:mod:`~ragnest.parsers.office._unstructured` (the adapter and its patches) and
:mod:`~ragnest.parsers.office.parser` (:class:`OfficeParser`).
"""

from __future__ import annotations

from ragnest.parsers.office.detect import FORMAT_LABELS, detect_format
from ragnest.parsers.office.parser import OfficeParser
from ragnest.parsers.office.render import LIBREOFFICE_MISSING, find_libreoffice
from ragnest.parsers.office.tables import html_table_to_markdown, markdown_table_parts

__all__ = [
    "OfficeParser",
    "detect_format",
    "html_table_to_markdown",
    "markdown_table_parts",
    "find_libreoffice",
    "FORMAT_LABELS",
    "LIBREOFFICE_MISSING",
]
