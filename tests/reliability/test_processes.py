"""Process hygiene: parser workers die with ``ragnest ingest``, however it ends.

Real ``ragnest ingest -w 2`` processes on a PDF busy enough that both workers are
parsing when the parent is killed (SIGKILL), terminated (SIGTERM) or interrupted
(Ctrl-C to the process group). Afterwards no child of it may survive (the workers
and multiprocessing's resource tracker), nothing may say "leaked semaphore", and a
re-run completes.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from ._docs import busy_pdf
from ._procs import (
    alive,
    children,
    cmdline,
    kill_all,
    start_ragnest,
    wait_for,
    wait_gone,
    workers,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc to find the parser processes")

BUSY_PAGES = 1200
PIPELINE = """\
components:
  pdf: {type: parser/pdf, params: {ocr: never}}
  bm25: {type: embedder/bm25}
  store: {type: store/qdrant, params: {path: .ragnest}}
pipeline:
  parsers: [pdf]
  embedders: [bm25]
  store: store
"""


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(folder with a busy PDF, a BM25-only pipeline file)."""
    root = tmp_path_factory.mktemp("busy")
    docs = root / "docs"
    docs.mkdir()
    busy_pdf(docs / "busy.pdf", BUSY_PAGES)
    pipeline = root / "bm25.yaml"
    pipeline.write_text(PIPELINE)
    return docs, pipeline


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_busy(busy: tuple[Path, Path], store: Path):
    """``ragnest ingest -w 2`` with both workers parsing; returns (process, its children)."""
    docs, pipeline = busy
    proc = start_ragnest(["ingest", str(docs), "--pipeline", str(pipeline), "--store", str(store),
                          "-w", "2", "--json"])

    try:
        assert wait_for(lambda: len(workers(proc.pid)) == 2, timeout=60), "no parser workers"
        # both are parsing pages (a forked worker imports nothing: its CPU is all parsing,
        # and 1200 pages take each of two about 1.3 s, so wait for a fraction of that)
        assert wait_for(lambda: all(_cpu_seconds(p) > 0.3 for p in workers(proc.pid)),
                        timeout=60)
        kids = children(proc.pid)
        assert proc.poll() is None, "the ingest ended before it could be interrupted"
    except BaseException:
        kill_all([*children(proc.pid), proc.pid])
        raise
    return proc, kids


def _assert_all_gone(kids: list[int]) -> None:
    left = wait_gone(kids, timeout=15)
    described = [cmdline(p) for p in left]
    kill_all(left)
    assert not left, f"children outlived ragnest ingest: {described}"


def test_sigkill_takes_the_workers_along_and_a_rerun_completes(busy, tmp_path):
    store = tmp_path / "store"
    proc, kids = _start_busy(busy, store)
    assert len(kids) >= 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    _assert_all_gone(kids)

    docs, pipeline = busy
    rerun = start_ragnest(["ingest", str(docs), "--pipeline", str(pipeline), "--store", str(store),
                           "-w", "2", "--json"])
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode(errors="replace")[-3000:]
    report = json.loads(out)
    assert report["files"] == 1 and report["pages"] == BUSY_PAGES and not report["skipped"]


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT to the process group"])
def test_sigterm_and_ctrl_c_stop_cleanly(busy, tmp_path, how):
    proc, kids = _start_busy(busy, tmp_path / "store")
    if how == "SIGTERM":
        os.kill(proc.pid, signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, err = proc.communicate(timeout=60)
    text = err.decode(errors="replace")
    assert proc.returncode != 0
    if how == "SIGTERM":
        assert proc.returncode == 128 + signal.SIGTERM
    assert "leaked semaphore" not in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    _assert_all_gone(kids)
    assert not alive(proc.pid)
