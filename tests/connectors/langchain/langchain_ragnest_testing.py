"""The shared sample pipeline of langchain-ragnest's tests (a module with a name of its
own, so it never collides with another folder's ``conftest``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ragnest import Pipeline

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "examples" / "docs"

_PIPELINE: Pipeline | None = None


def sample_pipeline() -> Pipeline:
    """The ``lite`` pipeline with ``examples/docs`` ingested into a temporary embedded
    store (built once per session; :func:`close_sample_pipeline` closes it)."""
    global _PIPELINE
    if _PIPELINE is None:
        store = tempfile.mkdtemp(prefix="langchain-ragnest-tests-")
        rag = Pipeline.from_yaml("lite", env={"RAGNEST_STORE": store})
        report = rag.ingest([DOCS], progress=False)
        assert report.files == 3, report
        _PIPELINE = rag
    return _PIPELINE


def close_sample_pipeline() -> None:
    global _PIPELINE
    if _PIPELINE is not None:
        _PIPELINE.close()
        _PIPELINE = None
