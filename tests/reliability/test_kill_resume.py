"""SIGKILL at random points of a real ``ragnest ingest -w 2``, then a re-run: the store
must be identical to a clean ingest (point ids, whole payloads, every stored vector),
and no parser process may outlive the killed one.

The corpus is ``examples/docs`` plus a few R manuals (when R is installed). Slow: each
trial is a partial ingest and a full re-run (``pytest -m slow tests/reliability``).
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ..distributed._store import snapshot
from ._docs import EXAMPLES, R_MANUALS, busy_pdf
from ._procs import children, kill_all, start_ragnest, wait_gone, workers

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]

TRIALS = 8
SEED = 20261130
MANUALS = ("R-data.pdf", "R-intro.pdf", "R-FAQ.pdf")


def _sources(points: dict, ids: set[str]) -> dict[str, int]:
    """How many of ``ids`` each source file holds (for a readable failure)."""
    counts: dict[str, int] = {}
    for pid in ids:
        source = str(points[pid][0].get("source", points[pid][0].get("document_id", "?")))
        counts[source] = counts.get(source, 0) + 1
    return counts


def _start(folder: Path, store: Path):
    return start_ragnest(["ingest", str(folder), "--store", str(store), "-w", "2", "--json"])


def _until_workers(proc, kids: set[int], timeout: float = 120) -> float:  # noqa: ANN001
    """Wait until the parser workers exist (parsing has begun) or the ingest ended;
    collect the children seen in ``kids``; returns when that was (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        now = children(proc.pid)
        kids.update(now)
        if len(workers(proc.pid)) >= 2:
            break
        time.sleep(0.02)
    return time.monotonic()


def _finish(proc) -> dict:  # noqa: ANN001
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    return json.loads(out)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus") / "docs"
    shutil.copytree(EXAMPLES, folder)
    for name in MANUALS:
        if (R_MANUALS / name).is_file():
            shutil.copy(R_MANUALS / name, folder / name)
    busy_pdf(folder / "busy.pdf", 300)  # a longer parse: more points to kill at
    return folder


def test_sigkill_at_random_points_then_rerun_equals_a_clean_ingest(corpus, tmp_path):
    proc = _start(corpus, tmp_path / "clean")
    started = _until_workers(proc, set())
    clean_report = _finish(proc)
    busy_seconds = time.monotonic() - started  # from the first parse to the end
    assert not clean_report["skipped"]
    clean = snapshot(tmp_path / "clean")
    assert len(clean) == clean_report["chunks_added"]

    rng = random.Random(SEED)
    trials: list[dict[str, Any]] = []
    for trial in range(2 * TRIALS):  # an ingest that ends before its kill does not count
        if sum(not t["finished_first"] for t in trials) >= TRIALS:
            break
        store = tmp_path / f"trial{trial}"
        delay = rng.uniform(0.0, 0.8 * busy_seconds)
        proc = _start(corpus, store)
        kids: set[int] = set()
        deadline = _until_workers(proc, kids) + delay
        while time.monotonic() < deadline and proc.poll() is None:
            kids.update(children(proc.pid))
            time.sleep(0.05)
        finished = proc.poll() is not None
        if not finished:
            kids.update(children(proc.pid))
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        left = wait_gone(sorted(kids), timeout=15)
        kill_all(left)
        assert not left, f"trial {trial}: children outlived the killed ingest"
        committed = len(snapshot(store, live=False)) if store.exists() else 0

        report = _finish(_start(corpus, store))
        after = snapshot(store)
        trials.append({"kill_after_workers_s": round(delay, 2), "finished_first": finished,
                       "chunks_at_kill": committed, "rerun_added": report["chunks_added"],
                       "identical": after == clean})
        assert set(after) == set(clean), (
            f"trial {trial}: other point ids than a clean ingest; "
            f"missing {_sources(clean, set(clean) - set(after))}, "
            f"extra {_sources(after, set(after) - set(clean))}; trials {trials}")
        for pid, (payload, vectors) in clean.items():
            assert after[pid][0] == payload, f"trial {trial}: payload of {pid} differs"
            assert after[pid][1] == vectors, f"trial {trial}: vectors of {pid} differ"
    killed = sum(not t["finished_first"] for t in trials)
    print(f"\nkill-and-resume: {killed} ingests killed ({len(trials)} started), parsing to the "
          f"end {busy_seconds:.1f} s, {len(clean)} chunks: {json.dumps(trials)}")
    assert killed >= TRIALS // 2, trials
