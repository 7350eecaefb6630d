"""The office parser: opens, decrypts and routes a document to page or interleaved mode.

See :mod:`ragnest.parsers.office` for what each mode gives::

    >>> OfficeParser(chunking="page").extensions[:3]
    ('.docx', '.pptx', '.xlsx')
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ragnest.errors import ConfigError, MissingDependencyError, ParseError
from ragnest.parsers.chunking import chunk_segments
from ragnest.parsers.office import _unstructured
from ragnest.parsers.office.detect import (
    EXTENSION_FORMATS,
    FORMAT_LABELS,
    INSTALL_HINT,
    LEGACY_TARGETS,
    LIBREOFFICE_FORMATS,
    OfficeDocument,
    detect_format,
    with_article,
)
from ragnest.parsers.office.elements import mark_captions, page_segments
from ragnest.parsers.office.mail import email_headers
from ragnest.parsers.office.markup import archive_title, decode_html, front_matter, html_title
from ragnest.parsers.office.pictures import LinkedImages, Pictures, collecting
from ragnest.parsers.office.render import (
    LIBREOFFICE_MISSING,
    convert_with_libreoffice,
    find_libreoffice,
    render_reflowable,
    write_atomic,
)
from ragnest.parsers.text import decode_text
from ragnest.types import Chunk, Source

__all__ = ["OfficeParser"]

logger = logging.getLogger(__name__)


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

        self._pdf: Any = None  # the PdfParser of page mode (it owns an OCR engine)

    def warm_up(self) -> None:
        """Import unstructured and its partitioners (seconds: it loads spaCy, pandas, ...)."""
        _unstructured.import_unstructured()
        for fmt in _unstructured.PARTITIONERS:
            try:
                _unstructured.partitioner(fmt)
            except MissingDependencyError as err:  # that format fails later, with this reason
                logger.info("%s", err)

    def close(self) -> None:
        """Release page mode's PDF parser (unstructured stays imported)."""
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None

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

    def _open(self, source: Source) -> OfficeDocument:
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
        expected = EXTENSION_FORMATS.get(source.suffix)
        if expected and expected != fmt:
            logger.info("%s: the content is %s; parsing it as that", name,
                        with_article(FORMAT_LABELS[fmt]))
        archive = "" if encrypted else name  # the path (readable form)
        return OfficeDocument(source=source, name=name, data=data, fmt=fmt, archive=archive,
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
                f"decrypting Office files needs 'msoffcrypto-tool': {INSTALL_HINT}") from err
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

    def _pages(self, doc: OfficeDocument) -> Iterator[Chunk]:
        if doc.encrypted:
            raise ParseError(doc.name, "chunking='page' does not render password-protected "
                                       "documents (the rendered pages would be stored "
                                       "unencrypted); use chunking='interleaved'")
        pdf = self._render(doc)
        if self._pdf is None:
            from ragnest.parsers.pdf import PdfParser

            self._pdf = PdfParser(dpi=self.render_dpi)
        title = self._title(doc)
        rendered = Source(path=str(pdf), name=Path(doc.name).name,
                          document_id_override=doc.source.document_id)
        for chunk in self._pdf.parse(rendered):
            meta = {**chunk.metadata, "format": doc.fmt, "rendered_pdf": str(pdf)}
            if title:
                meta["title"] = title
            yield dataclasses.replace(chunk, source=doc.name, metadata=meta)

    def _render(self, doc: OfficeDocument) -> Path:
        """The cached PDF rendering of ``doc`` (made on first use)."""
        target = self._cache(doc.name) / f"{doc.sha256}.pdf"
        if target.is_file() and target.stat().st_size > 0:
            return target
        started = time.perf_counter()
        if doc.fmt in LIBREOFFICE_FORMATS:
            convert_with_libreoffice(self._soffice(doc.name), doc, "pdf", target, self.timeout_s)
        else:
            write_atomic(target, render_reflowable(doc), doc.name)
        logger.info("%s: rendered to %s in %.1f s", doc.name, target,
                    time.perf_counter() - started)
        return target

    # -- interleaved mode --------------------------------------------------------------

    def _interleaved(self, doc: OfficeDocument) -> Iterator[Chunk]:
        _unstructured.import_unstructured()
        fmt = doc.fmt
        if doc.fmt in LEGACY_TARGETS:
            doc = self._convert_legacy(doc)
        captions: set[str] = set()
        pictures = Pictures(archive=doc.archive, enabled=bool(doc.archive))
        try:
            with collecting(pictures):
                elements, extra = _unstructured.partition(doc, pictures, captions)
        except (ParseError, MissingDependencyError):
            raise
        except Exception as err:
            raise ParseError(doc.name, f"unstructured could not parse this "
                                       f"{FORMAT_LABELS[doc.fmt]}: {type(err).__name__}: "
                                       f"{err}") from err
        meta: dict[str, Any] = {"format": fmt, "title": self._title(doc), **extra}
        pages = page_segments(doc, elements, pictures, LinkedImages(doc), self.max_chars)
        if not any(segs for segs, _ in pages.values()):
            raise ParseError(doc.name, f"no text, tables or pictures found in this "
                                       f"{FORMAT_LABELS[doc.fmt]}")
        position = 0
        for page, (segments, page_meta) in pages.items():
            if not segments:
                continue
            chunks = chunk_segments(
                mark_captions(segments, captions),
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

    def _convert_legacy(self, doc: OfficeDocument) -> OfficeDocument:
        """A .doc/.ppt converted to .docx/.pptx by LibreOffice (cached by content hash)."""
        fmt = LEGACY_TARGETS[doc.fmt]
        soffice = self._soffice(
            doc.name, f"{FORMAT_LABELS[doc.fmt]} files need LibreOffice to be converted to "
                      f".{fmt} first; it was not found on PATH (install libreoffice, or save "
                      f"the file as .{fmt})")
        target = self._cache(doc.name) / f"{doc.sha256}.{fmt}"
        if not (target.is_file() and target.stat().st_size > 0):
            convert_with_libreoffice(soffice, doc, fmt, target, self.timeout_s)
        return dataclasses.replace(doc, data=target.read_bytes(), fmt=fmt,
                                   archive="" if doc.encrypted else str(target))

    def _title(self, doc: OfficeDocument) -> str | None:
        """The document's title from its metadata, if it has one."""
        if doc.fmt in ("docx", "pptx", "xlsx", "odt", "epub"):
            return archive_title(doc.data, doc.fmt)
        if doc.fmt == "html":
            return html_title(decode_html(doc.data, doc.name)[0])
        if doc.fmt == "md":
            text, _ = decode_text(doc.data, doc.name)
            return front_matter(text.lstrip("\ufeff"))[1].get("title") or None
        if doc.fmt == "eml":
            return email_headers(doc.data).get("subject")
        return None
