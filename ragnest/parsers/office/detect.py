"""Which Office, web, mail or e-book format a document really is, from its bytes.

Names lie (a ``.pptx`` saved as ``.docx``, a PDF named ``.doc``): the format comes from
the content -- magic numbers, then ``[Content_Types].xml`` / the ``mimetype`` member of
ZIP containers, then the streams of OLE files -- and the extension only breaks ties
between text formats::

    >>> detect_format(b"<!doctype html><p>hi</p>", "page.bin")
    'html'
    >>> FORMAT_LABELS["pptx"]
    'PowerPoint presentation (.pptx)'
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ragnest.errors import ParseError
from ragnest.media.sniff import SNIFF_BYTES, sniff_bytes
from ragnest.types import Source

__all__ = [
    "detect_format",
    "with_article",
    "OfficeDocument",
    "FORMAT_LABELS",
    "EXTENSION_FORMATS",
    "LIBREOFFICE_FORMATS",
    "LEGACY_TARGETS",
    "INSTALL_HINT",
]

#: What to install for the office parser.
INSTALL_HINT = "pip install 'ragnest[office]'"

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

#: The format each file extension suggests (the content decides; see :func:`detect_format`).
EXTENSION_FORMATS: dict[str, str] = {
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
LIBREOFFICE_FORMATS = frozenset({"docx", "pptx", "xlsx", "odt", "rtf", "doc", "ppt", "xls"})
#: Legacy binary formats unstructured can only read after a LibreOffice conversion.
LEGACY_TARGETS = {"doc": "docx", "ppt": "pptx"}

_EMAIL_HEADER = re.compile(
    r"^(received|return-path|from|to|subject|date|message-id|mime-version|delivered-to)\s*:",
    re.IGNORECASE,
)


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
    expected = EXTENSION_FORMATS.get(suffix)
    wanted = (with_article(FORMAT_LABELS[expected]) if expected
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


def with_article(label: str) -> str:
    """``label`` with "a" or "an" before it.

    >>> with_article("HTML page"), with_article("Word document (.docx)")
    ('an HTML page', 'a Word document (.docx)')
    """
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
                               f"cannot tell which without olefile: {INSTALL_HINT}") from None
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


@dataclass
class OfficeDocument:
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
