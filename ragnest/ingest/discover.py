"""Finding the files an ingest reads: files and folders, recursively, sorted.

    >>> from ragnest.ingest.discover import discover
    >>> files, skipped = discover(["examples/docs", "no/such/file.pdf"])
    >>> all(p.is_file() for p in files), [s.reason for s in skipped]
    (True, ['no such file or directory'])
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ragnest.ingest.report import SkippedFile

__all__ = ["discover"]


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
