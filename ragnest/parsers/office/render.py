"""Office documents as PDF pages: LibreOffice for Office formats, MuPDF for the rest.

``chunking="page"`` needs a PDF of the document: LibreOffice converts Office formats
(``soffice --headless --convert-to pdf``, also used to turn legacy ``.doc``/``.ppt``
into ``.docx``/``.pptx``), and MuPDF's Story engine lays HTML, Markdown and e-mail out
on A4 pages (EPUB through MuPDF's own reflow), so those need no LibreOffice::

    >>> find_libreoffice("/nonexistent/soffice") is None
    True
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from ragnest.errors import ParseError
from ragnest.parsers.office.detect import FORMAT_LABELS, OfficeDocument
from ragnest.parsers.office.mail import email_html, fix_email_charsets
from ragnest.parsers.office.markup import decode_html, markdown_html

__all__ = [
    "find_libreoffice",
    "run_libreoffice",
    "convert_with_libreoffice",
    "write_atomic",
    "render_reflowable",
    "story_pdf",
    "LIBREOFFICE_MISSING",
]

#: The error for ``chunking="page"`` without LibreOffice.
LIBREOFFICE_MISSING = (
    "chunking='page' needs LibreOffice to render Office documents to page images; it was "
    "not found on PATH (install libreoffice, or use chunking='interleaved')"
)


def find_libreoffice(explicit: str | None = None) -> str | None:
    """The LibreOffice executable: ``explicit`` (a path or command name) when given,
    else ``soffice`` or ``libreoffice`` on ``PATH``; ``None`` when there is none.

    >>> find_libreoffice("/nonexistent/soffice") is None
    True
    """
    if explicit:
        return shutil.which(explicit)
    return shutil.which("soffice") or shutil.which("libreoffice")


def run_libreoffice(soffice: str, src: Path, target: str, outdir: Path, timeout: int,
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


def write_atomic(path: Path, data: bytes, name: str) -> None:
    """Write ``data`` to ``path`` so concurrent readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ParseError(name, f"cannot write {path}: {err}") from err


def convert_with_libreoffice(soffice: str, doc: OfficeDocument, target_fmt: str,
                             target: Path, timeout: int) -> None:
    """Convert ``doc`` to ``target_fmt`` (``"pdf"``, ``"docx"``, ...) and write the
    result to ``target`` atomically."""
    with tempfile.TemporaryDirectory(prefix="ragnest-convert-") as tmp:
        src = Path(tmp) / f"{doc.sha256}.{doc.fmt}"
        src.write_bytes(doc.data)
        out = run_libreoffice(soffice, src, target_fmt, Path(tmp) / "out", timeout, doc.name)
        write_atomic(target, out.read_bytes(), doc.name)


def render_reflowable(doc: OfficeDocument) -> bytes:
    """HTML, Markdown, e-mail and EPUB laid out on A4 pages by MuPDF; the PDF bytes."""
    from ragnest.media.mupdf import pymupdf

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
            text = decode_html(doc.data, doc.name)[0]
        elif doc.fmt == "md":
            text = markdown_html(doc.data, doc.name)
        else:
            text = email_html(doc.data, fix_email_charsets(doc.data)[1])
            base = None
        return story_pdf(pymupdf, text, base)
    except ParseError:
        raise
    except Exception as err:
        raise ParseError(doc.name, f"cannot lay out the {FORMAT_LABELS[doc.fmt]} as pages "
                                   f"({type(err).__name__}: {err})") from err


def story_pdf(pymupdf: Any, html: str, base: str | None) -> bytes:
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
