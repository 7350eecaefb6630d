"""SIGKILL in the middle of a move (a real `ragnest ingest` process, killed after its
first batch of re-pointed chunks): the next run completes the move, and the store ends
as an uninterrupted move leaves it: one document, its ids, every chunk at the new path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from ragnest.embedders.bm25 import Bm25Embedder
from ragnest.parsers.pdf import PdfParser
from ragnest.pipeline import Pipeline
from ragnest.stores.qdrant import QdrantStore
from tests._long_pdf import make_long_pdf

PIPELINE = """\
components:
  pdf: {type: parser/pdf, params: {ocr: never}}
  bm25: {type: embedder/bm25}
  store: {type: store/qdrant, params: {path: .ragnest}}
pipeline: {parsers: [pdf], embedders: [bm25], store: store}
"""


def _pipeline(db: Path) -> Pipeline:
    return Pipeline(parsers=[PdfParser(ocr="never")], embedders={"bm25": Bm25Embedder()},
                    store=QdrantStore(path=str(db)))


def _state(db: Path) -> tuple[list[tuple[str, dict[str, int], int, str | None]], str]:
    with _pipeline(db) as rag:
        rag.open()
        docs = [(d.document_id, dict(d.sources), d.chunks, d.fingerprint)
                for d in rag.store.catalog()]
        payloads = sorted(rag.store._require().payloads_where([], None))
    return docs, json.dumps(payloads, sort_keys=True)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ragnest.cli", *args]


def test_sigkill_during_a_move_then_rerun_completes_it(tmp_path):
    yaml = tmp_path / "p.yaml"
    yaml.write_text(PIPELINE)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
           "HF_HUB_OFFLINE": "1"}
    docs, moved, db = tmp_path / "docs", tmp_path / "moved", tmp_path / "db"
    docs.mkdir()
    make_long_pdf(docs / "long.pdf", 4000)
    opts = ["--pipeline", str(yaml), "--store", str(db)]
    subprocess.run(_cli("ingest", str(docs), *opts), env=env, check=True, capture_output=True,
                   timeout=300)
    before_docs, before_payloads = _state(db)
    docs.rename(moved)

    proc = subprocess.Popen(_cli("ingest", str(moved), *opts, "-v"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # the first batch of re-pointed chunks is durable: kill now
        if "rewrote" in line and "chunk payloads" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    [(_, sources, _, _)] = _state(db)[0]
    assert len(sources) == 2  # killed half-way: its chunks cite both paths

    again = subprocess.run(_cli("ingest", str(moved), *opts, "--json"), env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["documents_moved"] == 1 and report["chunks_added"] == 0
    after_docs, after_payloads = _state(db)
    [(doc_id, _, n, fp)] = before_docs
    assert after_docs == [(doc_id, {str(moved / "long.pdf"): n}, n, fp)] and n == 4000
    # every chunk as it was (same ids, same fields), citing the new path
    assert after_payloads == before_payloads.replace(str(docs) + "/", str(moved) + "/")
