"""Benchmark: many readers on one embedded store, and readers during an ingest.

On one store of ``examples/docs`` plus the R manuals (``/usr/share/R/doc/manual``, 5.5k
pages with the shipped lite pipeline):

* **throughput**: 1, 4 and 8 reader processes at once, each running queries one after
  another, two ways: ``cli`` (every query is a ``ragnest query --json`` process: startup,
  model load, store open included) and ``api`` (a process opens a read-only ``Pipeline``
  once, then queries; what a server or a notebook sees). Queries per second over the
  whole run, and p50/p95 latency per query.
* **reads during an ingest**: the R manuals are ingested into a store that held only
  ``examples/docs``, while a probe opens a reader (``QdrantStore(mode="read")``) again
  and again, and ``ragnest query`` runs in a loop: how long a reader waits for a
  committed state (the copy it serves included), how many gave up (``--wait`` default,
  5 s), and the query latency meanwhile.

Run::

    python tests/benchmarks/bench_concurrency.py                  # ~4 minutes on 2 cores
    python tests/benchmarks/bench_concurrency.py --store /tmp/s   # reuse a built store

It prints a table and writes ``tests/benchmarks/results/concurrency.json``. Under pytest
only the small ``@pytest.mark.benchmark`` test runs (``-m benchmark``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _bench import HERE, RESULTS, pytest  # first: puts the repo on sys.path

__all__ = ["main", "run"]

REPO = HERE.parents[1]
EXAMPLES = REPO / "examples" / "docs"
R_MANUALS = Path("/usr/share/R/doc/manual")
CLI = [sys.executable, "-m", "ragnest.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1",
       "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
QUESTIONS = [
    "How often should I descale the espresso machine?",
    "What does error code E03 mean?",
    "How do I install add-on packages?",
    "What is a data frame?",
    "How do I read data from a CSV file?",
    "How are environments used in function lookup?",
    "How do I write documentation for a package?",
    "Where should I rinse my eyes after a chemical splash?",
]

# one reader process of the ``api`` kind: open once, then query; print latencies as JSON
API_WORKER = textwrap.dedent("""
    import json, sys, time
    from ragnest.cli._app import DEFAULT_PIPELINE, _config
    from ragnest.pipeline import Pipeline
    store, n, offset = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    questions = json.loads(sys.argv[4])
    t0 = time.perf_counter()
    with Pipeline.from_config(_config(DEFAULT_PIPELINE, store, None, read_wait=60)) as rag:
        rag.open()
        rag.query(questions[0])  # warm the models
        ready = time.perf_counter() - t0
        lat = []
        for i in range(n):
            t = time.perf_counter()
            rag.query(questions[(offset + i) % len(questions)])
            lat.append(time.perf_counter() - t)
    print(json.dumps({"ready_s": ready, "latencies": lat}))
""")

# the probe during an ingest: open a reader again and again, timing each open
PROBE = textwrap.dedent("""
    import json, sys, time
    from ragnest.errors import StoreLockedError
    from ragnest.cli._app import DEFAULT_PIPELINE, _config
    from ragnest.pipeline import Pipeline
    store, stop, wait = sys.argv[1], sys.argv[2], float(sys.argv[3])
    from pathlib import Path
    opens, refused, chunks = [], 0, []
    while not Path(stop).exists():
        t = time.perf_counter()
        try:
            with Pipeline.from_config(_config(DEFAULT_PIPELINE, store, None, read_wait=wait)) as rag:
                rag.open()
                opens.append(time.perf_counter() - t)
                chunks.append(rag.stats()["chunks"])
        except StoreLockedError:
            refused += 1
        time.sleep(0.2)
    print(json.dumps({"opens": opens, "refused": refused, "chunks_seen": chunks}))
""")


def _pct(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] if s else float("nan")


def _summary(lat: Sequence[float], wall: float) -> dict[str, float]:
    return {"queries": len(lat), "wall_s": wall, "qps": len(lat) / wall if wall else 0.0,
            "p50_ms": 1000 * statistics.median(lat), "p95_ms": 1000 * _pct(lat, 0.95)}


def _ingest(store: Path, *paths: Path) -> dict[str, Any]:
    proc = subprocess.run([*CLI, "ingest", *map(str, paths), "--store", str(store), "--json"],
                          capture_output=True, text=True, env=ENV, cwd=str(REPO))
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout)


def _cli_query(store: Path, question: str, wait: float = 60.0) -> tuple[float, int]:
    t = time.perf_counter()
    proc = subprocess.run([*CLI, "query", question, "--store", str(store), "--json",
                           "--wait", str(wait)], capture_output=True, text=True, env=ENV,
                          cwd=str(REPO))
    if proc.returncode == 0:
        json.loads(proc.stdout)
    return time.perf_counter() - t, proc.returncode


def throughput_cli(store: Path, procs: int, per_proc: int) -> dict[str, float]:
    """``procs`` workers, each running ``per_proc`` ``ragnest query`` processes in turn."""
    import concurrent.futures as cf

    def worker(w: int) -> list[float]:
        out = []
        for i in range(per_proc):
            dt, rc = _cli_query(store, QUESTIONS[(w * per_proc + i) % len(QUESTIONS)])
            if rc != 0:
                raise RuntimeError(f"query exited {rc}")
            out.append(dt)
        return out

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(procs) as pool:
        lat = [x for part in pool.map(worker, range(procs)) for x in part]
    return _summary(lat, time.perf_counter() - t0)


def throughput_api(store: Path, procs: int, per_proc: int) -> dict[str, float]:
    """``procs`` reader processes, each opening a Pipeline once and running queries."""
    t0 = time.perf_counter()
    running = [subprocess.Popen([sys.executable, "-c", API_WORKER, str(store), str(per_proc),
                                 str(w), json.dumps(QUESTIONS)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=ENV, cwd=str(REPO))
               for w in range(procs)]
    results = []
    for p in running:
        out, err = p.communicate(timeout=1800)
        if p.returncode != 0:
            raise RuntimeError(err[-3000:])
        results.append(json.loads(out))
    wall = time.perf_counter() - t0
    lat = [x for r in results for x in r["latencies"]]
    # qps over the querying phase: from the last worker ready to the end
    query_wall = max(sum(r["latencies"]) for r in results)
    row = _summary(lat, query_wall)
    row["wall_with_startup_s"] = wall
    row["ready_s_max"] = max(r["ready_s"] for r in results)
    return row


def reads_during_ingest(base: Path, workdir: Path, *, wait: float) -> dict[str, Any]:
    """Ingest the R manuals into a store of examples/docs while readers open and query."""
    store = workdir / "during"
    shutil.copytree(base, store)
    stop = workdir / "stop-probe"
    stop.unlink(missing_ok=True)
    probe = subprocess.Popen([sys.executable, "-c", PROBE, str(store), str(stop), str(wait)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                             cwd=str(REPO))
    t0 = time.perf_counter()
    writer = subprocess.Popen([*CLI, "ingest", str(R_MANUALS), "--store", str(store), "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                              cwd=str(REPO))
    queries: list[float] = []
    failed = 0
    i = 0
    while writer.poll() is None:
        dt, rc = _cli_query(store, QUESTIONS[i % len(QUESTIONS)], wait=wait)
        i += 1
        if rc == 0:
            queries.append(dt)
        else:
            failed += 1
    ingest_s = time.perf_counter() - t0
    out, err = writer.communicate()
    if writer.returncode != 0:
        raise RuntimeError(err[-3000:])
    stop.touch()
    pout, perr = probe.communicate(timeout=600)
    if probe.returncode != 0:
        raise RuntimeError(perr[-3000:])
    seen = json.loads(pout)
    opens = seen["opens"]
    return {
        "ingest_s": ingest_s,
        "ingest": json.loads(out),
        "wait_s": wait,
        "reader_opens": len(opens),
        "reader_refused": seen["refused"],
        "reader_open_p50_ms": 1000 * statistics.median(opens) if opens else None,
        "reader_open_p95_ms": 1000 * _pct(opens, 0.95) if opens else None,
        "reader_open_max_ms": 1000 * max(opens) if opens else None,
        "chunks_seen": sorted(set(seen["chunks_seen"])),
        "cli_queries": len(queries),
        "cli_failed": failed,
        "cli_p50_ms": 1000 * statistics.median(queries) if queries else None,
        "cli_p95_ms": 1000 * _pct(queries, 0.95) if queries else None,
    }


def run(*, store: Path | None, levels: Sequence[int], per_proc: int, api_per_proc: int,
        with_r: bool, during: bool, wait: float, workdir: Path | None) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="ragnest-bench-conc-", dir=workdir))
    report: dict[str, Any] = {"machine": {"python": platform.python_version(),
                                          "platform": platform.platform(),
                                          "cpus": os.cpu_count()}}
    try:
        r = with_r and R_MANUALS.is_dir()
        base = tmp / "base"
        t0 = time.perf_counter()
        _ingest(base, EXAMPLES)
        report["base_ingest_s"] = time.perf_counter() - t0
        if store is None:
            store = tmp / "store"
            shutil.copytree(base, store)
            t0 = time.perf_counter()
            if r:
                _ingest(store, R_MANUALS)
            report["store_ingest_s"] = time.perf_counter() - t0
        report["store"] = {"corpus": "examples/docs" + (" + R manuals" if r else ""),
                           **_stats(store)}
        report["cli"] = {p: throughput_cli(store, p, per_proc) for p in levels}
        report["api"] = {p: throughput_api(store, p, api_per_proc) for p in levels}
        if during and r:
            report["during_ingest"] = reads_during_ingest(base, tmp, wait=wait)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def _stats(store: Path) -> dict[str, Any]:
    proc = subprocess.run([*CLI, "stats", "--store", str(store), "--json"], capture_output=True,
                          text=True, env=ENV, cwd=str(REPO))
    info = json.loads(proc.stdout)
    size = sum(f.stat().st_blocks * 512 for f in (store / "lite").rglob("*") if f.is_file())
    return {"chunks": info["chunks"], "documents": info["documents"],
            "shard_mb_on_disk": round(size / 1e6, 1)}


def table(report: dict[str, Any]) -> str:
    lines = [f"store: {report['store']}", "",
             f"{'kind':5}  {'procs':>5}  {'queries':>7}  {'qps':>6}  {'p50 ms':>7}  {'p95 ms':>7}"]
    for kind in ("cli", "api"):
        for p, row in report[kind].items():
            lines.append(f"{kind:5}  {p:>5}  {row['queries']:>7}  {row['qps']:>6.2f}  "
                         f"{row['p50_ms']:>7.0f}  {row['p95_ms']:>7.0f}")
    during = report.get("during_ingest")
    if during:
        lines += ["", "reads during an ingest of the R manuals "
                  f"({during['ingest_s']:.0f} s, --wait {during['wait_s']:g} s):",
                  f"  reader opens {during['reader_opens']}, refused {during['reader_refused']}, "
                  f"wait+copy p50 {during['reader_open_p50_ms']:.0f} ms, "
                  f"p95 {during['reader_open_p95_ms']:.0f} ms, "
                  f"max {during['reader_open_max_ms']:.0f} ms",
                  f"  ragnest query: {during['cli_queries']} answered, {during['cli_failed']} "
                  f"failed, p50 {during['cli_p50_ms']:.0f} ms, p95 {during['cli_p95_ms']:.0f} ms",
                  f"  chunk counts readers saw: {during['chunks_seen']}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=None, help="a built store to query")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--per-proc", type=int, default=3, help="CLI queries per worker")
    parser.add_argument("--api-per-proc", type=int, default=20, help="API queries per process")
    parser.add_argument("--no-r", action="store_true", help="examples/docs only")
    parser.add_argument("--skip-during", action="store_true")
    parser.add_argument("--wait", type=float, default=5.0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "concurrency.json")
    args = parser.parse_args(argv)
    report = run(store=args.store, levels=args.levels, per_proc=args.per_proc,
                 api_per_proc=args.api_per_proc, with_r=not args.no_r,
                 during=not args.skip_during, wait=args.wait, workdir=args.workdir)
    print(table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return report


if pytest is not None:

    @pytest.mark.benchmark
    def test_concurrency_small(tmp_path: Path) -> None:
        report = main(["--no-r", "--skip-during", "--levels", "1", "2", "--per-proc", "1",
                       "--api-per-proc", "2", "--out", str(tmp_path / "c.json")])
        assert report["cli"][2]["queries"] == 2 and report["api"][2]["queries"] == 4


if __name__ == "__main__":
    main()
