"""Planning one document: which parser reads it, and whether the store already holds it.

    >>> from ragnest.ingest.plan import pick_parser
    >>> from ragnest.parsers import PdfParser, TextParser
    >>> from ragnest.types import Source
    >>> parser = pick_parser(Source.from_bytes(b"%PDF-1.7 ...", name="notes.txt"),
    ...                      [TextParser(), PdfParser()])
    >>> type(parser).__name__
    'PdfParser'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ragnest.errors import ParseError
from ragnest.ingest.report import DocumentReport
from ragnest.media.sniff import sniff
from ragnest.protocols import Parser, Store, StoreAdmin
from ragnest.types import Source

__all__ = ["Planned", "pick_parser", "plan_source", "stored_pages"]

# Sniffed kind -> the suffix a parser must accept to read it.
_KIND_SUFFIX = {"pdf": ".pdf", "png": ".png", "jpeg": ".jpg", "tiff": ".tiff", "webp": ".webp"}
# Binary kinds that never go to a text parser, whatever their file name says.
_BINARY = ("pdf", "png", "jpeg", "tiff", "webp", "zip")


@dataclass(frozen=True)
class Planned:
    """A document to parse and write: its source, the parser, its content fingerprint."""

    source: Source
    parser: Parser
    fingerprint: str


def pick_parser(source: Source, parsers: Sequence[Parser]) -> Parser | None:
    """The parser for ``source``, chosen by its real type (sniffed from the bytes), then
    by its suffix; ``None`` when no parser reads it."""
    kind = sniff(source)
    suffix = _KIND_SUFFIX.get(kind or "", source.suffix)
    for parser in parsers:
        if suffix in parser.extensions:
            return parser
    if kind in _BINARY:
        return None  # binary of a known type no parser reads: never feed it to a text parser
    if kind == "text" and not source.suffix:
        for parser in parsers:
            if ".txt" in parser.extensions:
                return parser
    return None


def stored_pages(store: Store, chunk_ids: set[str]) -> int:
    """Pages of a stored document, read back from one of its chunks (0 when unknown)."""
    if not chunk_ids or not isinstance(store, StoreAdmin):
        return 0
    chunks = store.get(sorted(chunk_ids)[:1])
    if chunks and chunks[0].metadata.get("page_count"):
        return int(chunks[0].metadata["page_count"])
    return len(chunk_ids) if chunks and chunks[0].kind == "page" else 0


def plan_source(source: Source, parsers: Sequence[Parser], store: Store) -> Planned | DocumentReport:
    """What to do with one source: a :class:`Planned` parse, or the report of a document
    the store already holds unchanged. Raises :class:`ParseError` (naming the file) for
    empty and unsupported files; store errors propagate."""
    name = source.display_name
    if source.data is None and source.path is not None:
        if Path(source.path).stat().st_size == 0:
            raise ParseError(name, "file is empty (0 bytes)")
    elif source.data is not None and not source.data:
        raise ParseError(name, "file is empty (0 bytes)")
    parser = pick_parser(source, parsers)
    if parser is None:
        raise ParseError(name, f"unsupported file type {source.suffix or '(no extension)'!r}")
    doc_id = source.document_id
    fingerprint = source.fingerprint()
    if store.document_fingerprint(doc_id) == fingerprint:
        ids = store.chunk_ids(doc_id)
        return DocumentReport(name, doc_id, stored_pages(store, ids), 0, len(ids), 0, "unchanged")
    return Planned(source, parser, fingerprint)
