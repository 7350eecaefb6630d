"""What an ingest did: per document, per skipped file, in total (``--json`` prints it).

    >>> from ragnest.ingest.report import DocumentReport, IngestReport
    >>> report = IngestReport(documents=[DocumentReport("a.pdf", "id", 3, 3, 0, 0, "added")])
    >>> report.to_dict()["chunks_added"], report.ok
    (3, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ragnest._paths import readable_path
from ragnest.types import HtmlRepr

__all__ = ["SkippedFile", "DocumentReport", "IngestReport"]


@dataclass(frozen=True)
class SkippedFile:
    """A file that was not ingested, and why (``path`` is readable text: a name that is
    not UTF-8 is written with ``\\xNN`` escapes, see :mod:`ragnest._paths`)."""

    path: str
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", readable_path(self.path))


@dataclass(frozen=True)
class DocumentReport:
    """What an ingest did to one document."""

    path: str
    document_id: str
    pages: int
    added: int
    unchanged: int
    removed: int
    status: str  # "added" | "updated" | "unchanged" | "moved" | "removed"
    previous_path: str | None = None  # where a moved document's file was
    #: What the parsing libraries said about this file (MuPDF's warnings and errors
    #: about a damaged object, ...), each distinct message once, with its count.
    warnings: tuple[str, ...] = ()


@dataclass
class IngestReport(HtmlRepr):
    """The summary of one ``Pipeline.ingest`` call (``to_dict()`` is what ``--json`` prints;
    notebooks show it as a table with first-page thumbnails, see :mod:`ragnest.display`)."""

    documents: list[DocumentReport] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None  # why the ingest stopped early (a broken store), if it did
    removed: list[DocumentReport] = field(default_factory=list)  # documents taken out
    dry_run: bool = False  # a plan only: nothing was changed

    @property
    def files(self) -> int:
        """Files ingested (new, updated, moved or unchanged)."""
        return len(self.documents)

    @property
    def documents_moved(self) -> int:
        """Stored documents re-pointed at a file's new path (nothing re-embedded)."""
        return sum(d.status == "moved" for d in self.documents)

    @property
    def documents_removed(self) -> int:
        """Stored documents removed (their files are gone, or ``delete`` named them)."""
        return len(self.removed)

    @property
    def pages(self) -> int:
        return sum(d.pages for d in self.documents)

    @property
    def chunks_added(self) -> int:
        return sum(d.added for d in self.documents)

    @property
    def chunks_unchanged(self) -> int:
        return sum(d.unchanged for d in self.documents)

    @property
    def chunks_removed(self) -> int:
        """Stale chunks of updated documents plus every chunk of removed ones."""
        return sum(d.removed for d in (*self.documents, *self.removed))

    @property
    def ok(self) -> bool:
        """True when the ingest ran to the end and nothing failed, or at least one file
        was ingested."""
        return self.error is None and (not self.skipped or bool(self.documents))

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "pages": self.pages,
            "chunks_added": self.chunks_added,
            "chunks_unchanged": self.chunks_unchanged,
            "chunks_removed": self.chunks_removed,
            "documents_moved": self.documents_moved,
            "documents_removed": self.documents_removed,
            "skipped": [asdict(s) for s in self.skipped],
            "documents": [asdict(d) for d in self.documents],
            "removed": [asdict(d) for d in self.removed],
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }
