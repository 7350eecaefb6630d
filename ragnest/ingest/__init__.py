"""Ingest as library functions: discover files, plan, parse in a pool, embed, write, report;
and the rest of a document's life: moved files, sync, delete (:mod:`ragnest.ingest.lifecycle`).

A Ray job, a server or an evaluation loop calls these directly; ``Pipeline.ingest``
is :func:`run_ingest` on the pipeline's components::

    >>> from ragnest.ingest import discover
    >>> files, skipped = discover(["examples/docs"])
    >>> all(p.is_file() for p in files)
    True
"""

from __future__ import annotations

from ragnest.ingest.discover import discover
from ragnest.ingest.embed import embed_chunks, fit_embedders, needs_fit
from ragnest.ingest.identity import Relocation
from ragnest.ingest.lifecycle import delete_documents, find_documents, run_sync
from ragnest.ingest.plan import Planned, pick_parser, plan_source
from ragnest.ingest.pool import ParsePool, parse_all
from ragnest.ingest.report import DocumentReport, IngestReport, SkippedFile
from ragnest.ingest.run import ingest_source, run_ingest
from ragnest.ingest.sample import sample_chunks
from ragnest.ingest.writer import DocumentWriter

__all__ = [
    "DocumentReport",
    "DocumentWriter",
    "IngestReport",
    "ParsePool",
    "Planned",
    "Relocation",
    "SkippedFile",
    "delete_documents",
    "discover",
    "embed_chunks",
    "find_documents",
    "fit_embedders",
    "ingest_source",
    "needs_fit",
    "parse_all",
    "pick_parser",
    "plan_source",
    "run_ingest",
    "run_sync",
    "sample_chunks",
]
