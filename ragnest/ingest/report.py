"""Ingest bookkeeping: finding files and reporting what happened to each.

    >>> from ragnest.ingest import discover
    >>> files, skipped = discover(["examples/docs"])
    >>> all(p.is_file() for p in files)
    True
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SkippedFile", "DocumentReport", "IngestReport", "discover"]


@dataclass(frozen=True)
class SkippedFile:
    """A file that was not ingested, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class DocumentReport:
    """What an ingest did to one document."""

    path: str
    document_id: str
    pages: int
    added: int
    unchanged: int
    removed: int
    status: str  # "added" | "updated" | "unchanged"


@dataclass
class IngestReport:
    """The summary of one ``Pipeline.ingest`` call (``to_dict()`` is what ``--json`` prints)."""

    documents: list[DocumentReport] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def files(self) -> int:
        """Files ingested (new, updated or unchanged)."""
        return len(self.documents)

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
        return sum(d.removed for d in self.documents)

    @property
    def ok(self) -> bool:
        """True when nothing failed, or when at least one file was ingested."""
        return not self.skipped or bool(self.documents)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "pages": self.pages,
            "chunks_added": self.chunks_added,
            "chunks_unchanged": self.chunks_unchanged,
            "chunks_removed": self.chunks_removed,
            "skipped": [asdict(s) for s in self.skipped],
            "documents": [asdict(d) for d in self.documents],
            "seconds": round(self.seconds, 3),
        }


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def discover(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[SkippedFile]]:
    """Expand files and folders (recursively, sorted, hidden entries ignored).

    Paths that do not exist come back as skipped entries, never as exceptions.
    """
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    f = Path(root) / name
                    if not _hidden(f) and f.is_file():
                        key = f.absolute()
                        if key not in seen:
                            seen.add(key)
                            files.append(f)
        elif p.is_file():
            key = p.absolute()
            if key not in seen:
                seen.add(key)
                files.append(p)
        elif p.exists():
            skipped.append(SkippedFile(str(p), "not a regular file"))
        else:
            skipped.append(SkippedFile(str(p), "no such file or directory"))
    return files, skipped
