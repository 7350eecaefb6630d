"""Detect a document's real type from its first bytes (magic numbers).

File names lie: a PDF saved as ``.txt`` or an HTML error page saved as ``.pdf``
are common in real corpora. The pipeline picks a parser by sniffed type first and
by extension second::

    >>> from ragnest.media.sniff import sniff
    >>> from ragnest.types import Source
    >>> sniff(Source.from_bytes(b"%PDF-1.7\\n...", name="report.txt"))
    'pdf'
    >>> sniff(b"plain words, nothing else")
    'text'
    >>> extension_for("jpeg")
    '.jpg'

Only the first 8 KB are read, so sniffing is cheap even for huge files.
"""

from __future__ import annotations

import os
from pathlib import Path

from ragnest.types import Source

__all__ = ["sniff", "sniff_bytes", "extension_for", "SNIFF_BYTES", "KIND_EXTENSIONS"]

#: How many leading bytes :func:`sniff` reads.
SNIFF_BYTES = 8192

#: The canonical file extension for each kind :func:`sniff` can return.
KIND_EXTENSIONS: dict[str, str] = {
    "pdf": ".pdf",
    "png": ".png",
    "jpeg": ".jpg",
    "gif": ".gif",
    "webp": ".webp",
    "tiff": ".tiff",
    "bmp": ".bmp",
    "zip": ".zip",
    "ole": ".doc",
    "rtf": ".rtf",
    "html": ".html",
    "xml": ".xml",
    "postscript": ".ps",
    "gzip": ".gz",
    "text": ".txt",
}

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def extension_for(kind: str | None) -> str | None:
    """The canonical extension (with the dot) for a sniffed kind, or ``None``."""
    return KIND_EXTENSIONS.get(kind) if kind else None


def sniff(source: Source | str | os.PathLike[str] | bytes) -> str | None:
    """The real type of a document from its first bytes, or ``None`` if unknown.

    ``source`` may be a :class:`~ragnest.types.Source`, a path, or bytes. Returns one
    of the keys of :data:`KIND_EXTENSIONS` (``"pdf"``, ``"png"``, ``"jpeg"``,
    ``"zip"`` for Office Open XML / EPUB / ZIP, ``"ole"`` for legacy Office,
    ``"html"``, ``"text"``, ...). Unreadable or empty input gives ``None``.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        head = bytes(source[:SNIFF_BYTES])
    elif isinstance(source, Source):
        if source.data is not None:
            head = bytes(source.data[:SNIFF_BYTES])
        elif source.path is not None:
            head = _read_head(source.path)
        else:
            return None
    else:
        head = _read_head(source)
    return sniff_bytes(head)


def _read_head(path: str | os.PathLike[str]) -> bytes:
    try:
        with open(Path(path), "rb") as fh:
            return fh.read(SNIFF_BYTES)
    except OSError:
        return b""


def sniff_bytes(head: bytes) -> str | None:
    """Classify a byte prefix (see :func:`sniff`)."""
    if not head:
        return None
    # PDF: the header may follow up to 1024 bytes of junk (spec, implementation note).
    if head.startswith(b"%PDF-") or b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"BM") and len(head) >= 26 and head[6:10] == b"\x00\x00\x00\x00":
        return "bmp"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if head.startswith(b"%!PS"):
        return "postscript"
    text = _as_text(head)
    if text is None:
        return None
    lead = text.lstrip("\ufeff \t\r\n")[:512].lower()
    if lead.startswith(("<!doctype html", "<html")) or (
        lead.startswith("<") and "<html" in lead
    ):
        return "html"
    if lead.startswith("<?xml"):
        return "html" if "<html" in lead else "xml"
    return "text"


def _as_text(head: bytes) -> str | None:
    """Decode a prefix if it looks like text, else ``None``."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return head.decode("utf-16", errors="ignore")
        except UnicodeDecodeError:  # pragma: no cover - errors="ignore"
            return None
    if b"\x00" in head:
        return None
    try:
        # The prefix may end inside a multi-byte character: ignore a short tail.
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start >= len(head) - 3 and err.reason == "unexpected end of data":
            text = head[: err.start].decode("utf-8")
        else:
            text = head.decode("cp1252", errors="replace")
    controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\n\r\f\v\x1b")
    if controls > max(2, len(text) // 100):
        return None
    return text
