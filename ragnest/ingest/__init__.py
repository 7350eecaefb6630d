"""Ingest as library functions: discover files, plan, parse in a pool, write, report.

    >>> from ragnest.ingest import discover
    >>> files, skipped = discover(["examples/docs"])
    >>> all(p.is_file() for p in files)
    True
"""

from __future__ import annotations

from ragnest.ingest.pool import ParsePool, parse_all
from ragnest.ingest.report import DocumentReport, IngestReport, SkippedFile, discover

__all__ = ["DocumentReport", "IngestReport", "ParsePool", "SkippedFile", "discover", "parse_all"]
