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
from dataclasses import dataclass, replace
from pathlib import Path

from ragnest.errors import ParseError
from ragnest.ingest.identity import Relocation, has_catalog, resolve_path, stored_pages
from ragnest.ingest.report import DocumentReport
from ragnest.media.sniff import sniff
from ragnest.protocols import Parser, Store
from ragnest.types import Source

__all__ = ["Planned", "Relocation", "pick_parser", "plan_source", "stored_pages"]

# Sniffed kind -> the suffix a parser must accept to read it.
_KIND_SUFFIX = {"pdf": ".pdf", "png": ".png", "jpeg": ".jpg", "tiff": ".tiff", "webp": ".webp"}
# Binary kinds that never go to a text parser, whatever their file name says.
_BINARY = ("pdf", "png", "jpeg", "tiff", "webp", "zip")


@dataclass(frozen=True)
class Planned:
    """A document to parse and write: its source (whose ``document_id`` is the stored
    document's), the parser, its content fingerprint, and ``replaces``: ids of other
    documents citing the same path, removed once it is written."""

    source: Source
    parser: Parser
    fingerprint: str
    replaces: tuple[str, ...] = ()


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


def plan_source(
    source: Source, parsers: Sequence[Parser], store: Store, *, claimed: set[str] | None = None
) -> Planned | Relocation | DocumentReport:
    """What to do with one source: a :class:`Planned` parse, a :class:`Relocation` (the
    file moved: its stored document is re-pointed, nothing parsed), or the report of a
    document the store already holds unchanged. Raises :class:`ParseError` (naming the
    file) for empty and unsupported files; store errors propagate.

    For files, the stored document is found by path, then (when none holds this
    content) by content fingerprint among documents whose files are gone (see
    :mod:`ragnest.ingest.identity`); ``claimed`` collects the documents moved in one run.
    """
    name = source.display_name
    if source.data is None and source.path is not None:
        if Path(source.path).stat().st_size == 0:
            raise ParseError(name, "file is empty (0 bytes)")
    elif source.data is not None and not source.data:
        raise ParseError(name, "file is empty (0 bytes)")
    parser = pick_parser(source, parsers)
    if parser is None:
        raise ParseError(name, f"unsupported file type {source.suffix or '(no extension)'!r}")
    fingerprint = source.fingerprint()
    stale: tuple[str, ...] = ()
    if source.path and source.data is None and not source.document_id_override \
            and has_catalog(store):
        found = resolve_path(source, store, fingerprint, set() if claimed is None else claimed)
        if isinstance(found, Relocation):
            return replace(found, source=_with_id(found.source, found.document_id))
        doc_id, stale = found
        source = _with_id(source, doc_id)
    doc_id = source.document_id
    if not stale and store.document_fingerprint(doc_id) == fingerprint:
        ids = store.chunk_ids(doc_id)
        return DocumentReport(name, doc_id, stored_pages(store, ids), 0, len(ids), 0, "unchanged")
    return Planned(source, parser, fingerprint, stale)


def _with_id(source: Source, document_id: str) -> Source:
    """``source`` whose chunks get ``document_id`` (parsers derive chunk ids from it)."""
    if source.document_id == document_id:
        return source
    return replace(source, document_id_override=document_id)
