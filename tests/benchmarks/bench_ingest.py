"""Ingest speed and layout before/after: ragnest trees side by side in one run, vs raw PyMuPDF.

For each corpus group (R manuals: text-heavy; gnuplot/asymptote/octave manuals:
figure-heavy; examples/docs: the sample documents) and each ragnest tree (this checkout,
and every ``--before PATH``, e.g. the pre-session checkout /work/baseline), in fresh
subprocesses (``PYTHONPATH=<tree>``, so each imports its own ragnest), round-robin:

* ``parse``: ``PdfParser(chunking="page", ocr="never")`` over every page (pages/s by wall
  and by process CPU time), the segment counts by kind (text, heading, caption, figure,
  picture, table), and per page a digest of the page text and of the chunk id, so the
  table says how many pages kept exactly the same text and ids as the first tree;
* ``ingest``: the lite pipeline (``Pipeline.from_yaml("lite")``, a fresh store) ingesting
  the group with ``workers=1`` and with each ``--workers`` value (``auto`` where the tree
  knows it): pages/s end to end (parse + WordLlama/BM25/fingerprint embedding + writes),
  by wall clock and by CPU seconds of the process and its parser workers (the CPU
  figure is the one to compare on a machine shared with other work; the last column
  gives those CPU seconds and, in brackets, the ingest process's own share: with
  workers, what stays serial in the writer);
* raw rows: ``pymupdf`` ``get_text()`` per page, and ``get_text()`` + ``get_pixmap(dpi=96)``
  (the reference the issue's targets name).

Each timed row runs ``--repeats`` times; the table shows the best (other work on a shared
machine only adds time), the JSON keeps every run. Imports happen before the clock starts.

    python tests/benchmarks/bench_ingest.py --quick
    python tests/benchmarks/bench_ingest.py --before /work/baseline --workers 2,auto

Writes tests/benchmarks/results/bench_ingest.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import _bench  # noqa: F401  (repo on sys.path)
from _bench import RESULTS, pytest

REPO = Path(__file__).resolve().parents[2]
R_DIR = Path("/usr/share/R/doc/manual")
FIGURE_PDFS = [Path("/usr/share/doc/gnuplot/gnuplot.pdf"),
               Path("/usr/share/doc/asymptote/asymptote.pdf"),
               Path("/usr/share/doc/octave/octave.pdf")]


def groups(quick: bool) -> dict[str, list[str]]:
    """Corpus groups that exist on this machine (``quick``: one small file per group)."""
    r = sorted(str(p) for p in R_DIR.glob("*.pdf") if "refman" not in p.name)
    figs = [str(p) for p in FIGURE_PDFS if p.is_file()]
    examples = sorted(str(p) for p in (REPO / "examples" / "docs").glob("*.pdf"))
    if quick:
        r = [p for p in r if p.endswith("R-intro.pdf")]
        figs = [p for p in figs if "asymptote" in p or "gnuplot" in p]
    out = {"R manuals (text)": r, "figure manuals": figs, "examples/docs": examples}
    return {k: v for k, v in out.items() if v}


# ------------------------------------------------------------------ worker side
def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def work_parse(files: list[str]) -> dict[str, Any]:
    from ragnest.parsers.pdf import PdfParser
    from ragnest.types import Source

    parser = PdfParser(chunking="page", ocr="never")
    kinds: Counter[str] = Counter()
    pages: dict[str, list[str]] = {}
    w0, c0 = time.perf_counter(), time.process_time()
    for f in files:
        for chunk in parser.parse(Source.from_path(f)):
            key = f"{Path(f).name}:{chunk.page}"
            pages[key] = [_digest(chunk.text), chunk.id]
            for seg in chunk.segments:
                kinds[seg.role if seg.role in ("heading", "caption") or seg.kind == "image"
                      else seg.kind] += 1
    return {"seconds": time.perf_counter() - w0, "cpu": time.process_time() - c0,
            "pages": len(pages), "kinds": dict(kinds), "per_page": pages}


def work_ingest(files: list[str], workers: str) -> dict[str, Any]:
    """``workers``: a count, ``auto``, or ``COUNT:METHOD`` (``2:spawn``: the workers'
    start method forced through ``RAGNEST_WORKER_START``)."""
    from ragnest import Pipeline

    workers, _, method = workers.partition(":")
    if method:
        os.environ["RAGNEST_WORKER_START"] = method
    with tempfile.TemporaryDirectory() as tmp:
        with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": tmp}) as rag:
            # What `ragnest ingest` has loaded when it starts parsing: the embedders and the
            # store (OCR loads where a page needs it; warming it here would load ONNX
            # Runtime, and the workers would be spawned where the CLI forks them).
            for embedder in rag.embedders.values():
                embedder.warm_up()
            rag.open()
            c0 = _cpu_seconds()
            m0 = time.process_time()
            w0 = time.perf_counter()
            kw: dict[str, Any] = {}
            if workers != "default":
                kw["workers"] = workers if workers == "auto" else int(workers)
            report = rag.ingest(files, progress=False, **kw)
            seconds = time.perf_counter() - w0
            main = time.process_time() - m0
            cpu = _cpu_seconds() - c0
    return {"seconds": seconds, "cpu": cpu, "cpu_main": main, "pages": report.pages,
            "chunks": report.chunks_added, "skipped": len(report.skipped)}


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (parser workers)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def work_raw(files: list[str], render: bool) -> dict[str, Any]:
    import pymupdf

    n = 0
    w0, c0 = time.perf_counter(), time.process_time()
    for f in files:
        with pymupdf.open(f) as doc:
            for page in doc:
                page.get_text("text")
                if render:
                    page.get_pixmap(dpi=96)
                n += 1
    return {"seconds": time.perf_counter() - w0, "cpu": time.process_time() - c0, "pages": n}


def worker_main(spec: dict[str, Any]) -> None:
    # _bench put this checkout first on sys.path: the tree under test must win.
    tree = Path(spec["tree"]).resolve()
    sys.path[:] = [str(tree)] + [p for p in sys.path if p and Path(p).resolve() != REPO]
    import ragnest

    assert Path(ragnest.__file__).resolve().is_relative_to(tree), ragnest.__file__
    kind = spec["kind"]
    if kind == "parse":
        out = work_parse(spec["files"])
    elif kind == "ingest":
        out = work_ingest(spec["files"], spec["workers"])
    else:
        out = work_raw(spec["files"], render=kind == "raw+render")
    Path(spec["out"]).write_text(json.dumps(out))


# ------------------------------------------------------------------ driver side
def run_one(tree: Path, spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    env = {**os.environ, "PYTHONPATH": str(tree), "RAGNEST_LOG": "warning"}
    cmd = [sys.executable, __file__, "--worker",
           json.dumps({**spec, "out": out, "tree": str(tree)})]
    proc = subprocess.run(cmd, env=env, cwd=str(tree), capture_output=True, text=True)
    try:
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
        return json.loads(Path(out).read_text())
    finally:
        Path(out).unlink(missing_ok=True)


def _label(tree: Path) -> str:
    return "this tree" if tree == REPO else str(tree)


def run(args: argparse.Namespace) -> dict[str, Any]:
    trees = [REPO, *[Path(p).resolve() for p in args.before]]
    corpus = groups(args.quick)
    rows: list[dict[str, Any]] = []
    jobs: list[tuple[str, Path, dict[str, Any]]] = []
    for group, files in corpus.items():
        jobs += [(group, REPO, {"kind": "raw", "files": files}),
                 (group, REPO, {"kind": "raw+render", "files": files})]
        for tree in trees:
            jobs.append((group, tree, {"kind": "parse", "files": files}))
            if not args.no_ingest:
                for w in ["1", *args.workers]:
                    jobs.append((group, tree, {"kind": "ingest", "files": files, "workers": w}))
    results: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(jobs))}
    for _ in range(args.repeats):
        for i, (_group, tree, spec) in enumerate(jobs):
            results[i].append(run_one(tree, spec))
    for i, (group, tree, spec) in enumerate(jobs):
        runs = [r for r in results[i] if "error" not in r]
        row = {"group": group, "tree": _label(tree), "kind": spec["kind"],
               "workers": spec.get("workers"), "runs": results[i]}
        if runs:
            best = min(runs, key=lambda r: r["seconds"])
            row.update(pages=best["pages"], seconds=best["seconds"],
                       pages_per_s=best["pages"] / best["seconds"])
            if "cpu" in best:
                row["cpu_pages_per_s"] = best["pages"] / max(best["cpu"], 1e-9)
            if "cpu_main" in best:  # the ingest's own process (the writer, with workers)
                row["cpu_main_s"] = best["cpu_main"]
                row["cpu_s"] = best["cpu"]
            if "kinds" in best:
                row["kinds"] = best["kinds"]
                row["per_page"] = best["per_page"]
        rows.append(row)
    _compare(rows)
    return {"uptime": _uptime(), "cpus": os.cpu_count(), "groups": corpus, "rows": rows}


def _compare(rows: list[dict[str, Any]]) -> None:
    """Per parse row: pages whose text / chunk id equal this tree's, and the ratio of
    pages/s to raw text+render of the same group."""
    for row in rows:
        ref = next((r for r in rows if r["group"] == row["group"] and r["kind"] == "raw+render"
                    and "pages_per_s" in r), None)
        if ref and "pages_per_s" in row:
            row["vs_render"] = row["pages_per_s"] / ref["pages_per_s"]
        if row["kind"] != "parse" or "per_page" not in row:
            continue
        mine = next(r for r in rows if r["group"] == row["group"] and r["kind"] == "parse"
                    and r["tree"] == "this tree")
        a, b = row["per_page"], mine.get("per_page", {})
        row["same_text"] = sum(1 for k, v in a.items() if k in b and b[k][0] == v[0])
        row["same_id"] = sum(1 for k, v in a.items() if k in b and b[k][1] == v[1])


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


KINDS = ("text", "heading", "caption", "figure", "picture", "table")


def print_table(result: dict[str, Any]) -> None:
    print(f"\n{result['uptime']}  ({result['cpus']} CPUs)")
    print(f"{'group':18} {'tree':22} {'row':12} {'pages':>6} {'p/s':>7} {'cpu p/s':>8} "
          f"{'x render':>8}  same text/id   " + " ".join(f"{k[:7]:>7}" for k in KINDS)
          + "   cpu s (main)")
    for r in result["rows"]:
        what = r["kind"] + (f" w={r['workers']}" if r["workers"] else "")
        if "pages_per_s" not in r:
            print(f"{r['group'][:18]:18} {r['tree'][-22:]:22} {what:12} failed: {r['runs'][0]}")
            continue
        same = (f"{r['same_text']:5d}/{r['same_id']:<5d}   " if "same_text" in r else " " * 14)
        cpu = f"{r['cpu_pages_per_s']:8.1f}" if "cpu_pages_per_s" in r else " " * 8
        kinds = " ".join(f"{r['kinds'].get(k, 0):7d}" for k in KINDS) if "kinds" in r else ""
        split = (f"   {r['cpu_s']:5.2f} ({r['cpu_main_s']:.2f})" if "cpu_main_s" in r else "")
        print(f"{r['group'][:18]:18} {r['tree'][-22:]:22} {what:12} {r['pages']:6d} "
              f"{r['pages_per_s']:7.1f} {cpu} {r.get('vs_render', 0):8.2f}  {same} {kinds}"
              f"{split}")


@pytest.mark.benchmark
def test_ingest_bench_quick(tmp_path):
    if not (R_DIR / "R-intro.pdf").is_file():
        pytest.skip("no R manuals (apt-get install r-doc-pdf)")
    args = parse_args(["--quick", "--repeats", "1", "--no-ingest"])
    result = run(args)
    parse = [r for r in result["rows"] if r["kind"] == "parse"]
    assert parse and all(r.get("pages", 0) > 0 for r in parse)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="R-intro, gnuplot, asymptote, examples")
    ap.add_argument("--before", action="append", default=[], metavar="TREE",
                    help="another ragnest checkout to compare (repeatable)")
    ap.add_argument("--workers", default="2", help="comma-separated worker counts besides 1 "
                    "for the ingest rows ('auto' too, '2:spawn' to force the start "
                    "method; '' for none)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-ingest", action="store_true", help="parse and raw rows only")
    ap.add_argument("--output", type=Path, default=RESULTS / "bench_ingest.json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.workers = [w for w in args.workers.split(",") if w]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(json.loads(args.worker))
        return 0
    result = run(args)
    print_table(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    slim = {**result, "rows": [{k: v for k, v in r.items() if k != "per_page"}
                               for r in result["rows"]]}
    args.output.write_text(json.dumps(slim, indent=2))
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
