"""A broken store stops an ingest: clear error, non-zero exit, and every document the
report calls ingested is completely stored (nothing half-written, nothing claimed)."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragnest import Pipeline
from ragnest.cli import app
from ragnest.config import IngestConfig
from ragnest.embedders.bm25 import Bm25Embedder
from ragnest.errors import StoreError, StoreUnavailableError
from ragnest.parsers.pdf import PdfParser
from ragnest.parsers.text import TextParser
from ragnest.stores._edge import EdgeBackend
from ragnest.stores.qdrant import QdrantStore
from ragnest.types import Source

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples" / "docs"


def _docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("lab_safety_guide.pdf", "nimbus3_handbook.pdf", "travel_faq.md"):
        shutil.copy(EXAMPLES / name, docs / name)
    return docs


def _fail_on_upsert(monkeypatch: pytest.MonkeyPatch, n: int) -> list[int]:
    """Make the Edge engine refuse the n-th upsert (and every later one), as a full disk
    or a dead server would."""
    calls = [0]
    real = EdgeBackend.upsert

    def upsert(self, points):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] >= n:
            raise StoreUnavailableError("collection 'ragnest': disk full (injected)")
        return real(self, points)

    monkeypatch.setattr(EdgeBackend, "upsert", upsert)
    return calls


def test_store_failing_on_the_third_batch_stops_the_ingest(tmp_path, monkeypatch):
    docs = _docs(tmp_path)
    rag = Pipeline(parsers=[PdfParser(ocr="never"), TextParser()],
                   embedders={"bm25": Bm25Embedder()},
                   store=QdrantStore(path=str(tmp_path / "db")),
                   ingest=IngestConfig(batch_size=2))
    _fail_on_upsert(monkeypatch, 3)  # lab_safety_guide has 4 pages: 2 batches; then nimbus3
    with rag, pytest.raises(StoreUnavailableError, match="disk full") as info:
        rag.ingest([docs], progress=False)
    report = info.value.report
    assert not report.ok and "disk full" in report.error
    assert [Path(d.path).name for d in report.documents] == ["lab_safety_guide.pdf"]
    assert report.skipped == []  # the store broke; no document was blamed for it
    monkeypatch.undo()
    with rag:
        rag.open()
        for name in ("lab_safety_guide.pdf", "nimbus3_handbook.pdf", "travel_faq.md"):
            src = Source.from_path(docs / name)
            stored = rag.store.document_fingerprint(src.document_id)
            if name == "lab_safety_guide.pdf":
                assert stored == src.fingerprint()  # reported, and completely stored
            else:
                assert stored is None  # not reported, and nothing half-written left
                assert rag.store.chunk_ids(src.document_id) == set()
        again = rag.ingest([docs], progress=False)  # the re-run finishes the rest
    assert again.ok and [d.status for d in again.documents] == ["unchanged", "added", "added"]


def test_cli_exits_non_zero_and_reports_only_committed_documents(tmp_path, monkeypatch):
    docs = _docs(tmp_path)
    _fail_on_upsert(monkeypatch, 1)  # the three small files are written in one upsert
    result = CliRunner().invoke(app, ["ingest", str(docs), "--store", str(tmp_path / "db"),
                                      "--json"])
    assert result.exit_code == 2
    assert "disk full" in result.output
    report = json.loads(result.stdout)
    assert report["error"] and "disk full" in report["error"]
    assert report["files"] <= 1 and report["skipped"] == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_with_a_server_that_does_not_answer(tmp_path):
    docs = _docs(tmp_path)
    profile = tmp_path / "dead.yaml"
    profile.write_text(
        "components:\n  store:\n    params: {path: null, retries: 0, "
        f"url: 'http://127.0.0.1:{_free_port()}'}}\n"
    )
    result = CliRunner().invoke(app, ["ingest", str(docs), "--profile", str(profile)])
    assert result.exit_code == 2
    assert "127.0.0.1" in result.output


def test_store_errors_are_not_skipped_documents(tmp_path, monkeypatch):
    """Even a store error raised while planning (reading fingerprints) stops the ingest."""
    docs = _docs(tmp_path)

    def broken(self, document_id):  # type: ignore[no-untyped-def]
        raise StoreUnavailableError("collection 'ragnest': connection refused (injected)")

    monkeypatch.setattr(QdrantStore, "document_fingerprint", broken)
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(tmp_path / "db")}) as rag:
        with pytest.raises(StoreError, match="connection refused"):
            rag.ingest([docs], progress=False)
