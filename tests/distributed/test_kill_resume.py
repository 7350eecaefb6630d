"""Kill the driver of a Ray ingest (``ragnest ingest --profile ray``) part-way, run it
again: every document is stored exactly once, equal to a local ingest of the same files,
and the killed job's Ray processes are gone. Slow (two Ray start-ups)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from ragnest import Pipeline
from ragnest.errors import StoreError

from ..reliability._procs import alive, children, kill_all, start_ragnest, wait_gone
from ._store import PENDING, local_ingest, snapshot

pytest.importorskip("ray", reason="the Ray engine needs the ray extra: pip install 'ragnest[ray]'")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "docs"
NOTES = 60


def _corpus(folder: Path) -> Path:
    shutil.copytree(EXAMPLES, folder)
    for i in range(NOTES):
        lines = [f"# Service note {i}", ""]
        lines += [f"Step {j}: check valve {i}-{j} and record pressure {i * j} kPa." for j in range(40)]
        (folder / f"note_{i:02d}.md").write_text("\n".join(lines), encoding="utf-8")
    return folder


def _committed(store: Path) -> int:
    """Documents a reader sees committed (0 while the store does not exist yet)."""
    if not store.exists():
        return 0
    overrides = {"components": {"store": {"params": {"mode": "read", "wait": 0.2}}}}
    try:
        with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)},
                                overrides=overrides) as rag:
            rag.open()
            return int(rag.store.stats()["documents"])
    except StoreError:
        return 0


def _tree(pid: int) -> set[int]:
    out, todo = set(), [pid]
    while todo:
        for kid in children(todo.pop()):
            if kid not in out:
                out.add(kid)
                todo.append(kid)
    return out


def _ray_ingest(folder: Path, store: Path):  # noqa: ANN202
    return start_ragnest(["ingest", str(folder), "--store", str(store), "--profile", "ray",
                          "--json"], env={"RAGNEST_RAY_ACTORS": "1", "RAY_AUTH_MODE": "disabled"})


def test_kill_the_driver_then_resume(tmp_path: Path) -> None:
    folder = _corpus(tmp_path / "docs")
    store = tmp_path / "store"
    proc = _ray_ingest(folder, store)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            seen |= _tree(proc.pid)
            if _committed(store) >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the job ended before it could be killed part-way"
        seen |= _tree(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        left = wait_gone(sorted(seen), 60)
        assert not left, f"processes of the killed job still alive: {left}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        kill_all([p for p in seen if alive(p)])
    partial = _committed(store)
    assert 1 <= partial < 3 + NOTES

    again = _ray_ingest(folder, store)
    out, errors = again.communicate(timeout=600)
    assert again.returncode == 0, errors.decode(errors="replace")[-3000:]
    report = json.loads(out)
    statuses = [d["status"] for d in report["documents"]]
    assert len(statuses) == 3 + NOTES and statuses.count("unchanged") >= partial
    assert not report["skipped"]

    local_ingest([folder], tmp_path / "local")
    points = snapshot(store)
    assert points == snapshot(tmp_path / "local")  # each document exactly once, same vectors
    assert not any(PENDING in payload for payload, _ in points.values())
