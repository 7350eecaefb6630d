"""Where a lite ingest's CPU goes, stage by stage (one process, ``workers=1``).

A real ingest (``Pipeline.from_yaml("lite")``, a fresh store) of a corpus group, with
the stages timed by process CPU through thin wrappers (no profiler, whose overhead
distorts Python-heavy stages): the PDF parser (its text extraction, drawings, table
finder, drawing clustering), each embedder, and the Edge store's upsert (with the
``Point`` conversion of payloads and vectors inside it) and flush. Stages nest (the
indented rows are parts of the row above); the rest (writer, transactions, planning) is
``other``. ``raw+render`` is PyMuPDF's ``get_text()`` + ``get_pixmap(dpi=96)`` on the
same pages, the reference the ingest targets name.

    python tests/benchmarks/bench_ingest_stages.py            # the figure manuals
    python tests/benchmarks/bench_ingest_stages.py --group r  # R-intro

Writes tests/benchmarks/results/bench_ingest_stages.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _bench  # noqa: F401  (repo on sys.path)
from _bench import RESULTS, pytest

GROUPS = {
    "figures": ["/usr/share/doc/gnuplot/gnuplot.pdf", "/usr/share/doc/asymptote/asymptote.pdf"],
    "r": ["/usr/share/R/doc/manual/R-intro.pdf"],
}
STAGES = [  # (key, depth)
    ("parse", 0), ("text (get_text dict + blocks)", 1), ("drawings", 1),
    ("get_cdrawings", 2), ("table finder", 2), ("cluster_rects", 2),
    ("embed: dense", 0), ("embed: bm25", 0), ("embed: visual", 0),
    ("upsert", 0), ("Point() conversion", 1), ("flush", 0),
]


def _timed(acc: dict[str, float], key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[key] += time.process_time() - t0
    return wrapper


def measure(files: list[str]) -> dict[str, Any]:
    """Ingest ``files`` once with the stage wrappers in place; CPU seconds per stage."""
    import pymupdf

    from ragnest import Pipeline
    from ragnest.ingest import pool
    from ragnest.parsers import pdf, pdf_drawings
    from ragnest.stores._edge import _backend

    acc: dict[str, float] = defaultdict(float)
    patches = [(pool, "parse_all", "parse"), (pdf, "_text_boxes", "text (get_text dict + blocks)"),
               (pdf, "page_drawings", "drawings"), (pdf_drawings, "find_tables", "table finder"),
               (pymupdf.Page, "get_cdrawings", "get_cdrawings"),
               (pdf_drawings.layout, "cluster_rects", "cluster_rects"),
               (_backend.EdgeBackend, "upsert", "upsert"), (_backend, "Point", "Point() conversion"),
               (_backend.EdgeBackend, "flush", "flush")]
    for owner, name, key in patches:
        setattr(owner, name, _timed(acc, key, getattr(owner, name)))
    with tempfile.TemporaryDirectory() as tmp:
        with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": tmp}) as rag:
            rag.warm_up()
            for key, emb in rag.embedders.items():
                emb.embed_documents = _timed(acc, f"embed: {key}", emb.embed_documents)
            c0 = time.process_time()
            report = rag.ingest(files, progress=False, workers=1)
            total = time.process_time() - c0
    c0 = time.process_time()
    for f in files:
        with pymupdf.open(f) as doc:
            for page in doc:
                page.get_text("text")
                page.get_pixmap(dpi=96)
    raw = time.process_time() - c0
    return {"pages": report.pages, "total": total, "raw_render": raw, "stages": dict(acc)}


def print_table(result: dict[str, Any]) -> None:
    n, total = result["pages"], result["total"]
    print(f"\n{result['uptime']}")
    print(f"lite ingest, workers=1: {n} pages, {total:.2f} s CPU ({total / n * 1e3:.2f} ms/page); "
          f"raw text+render {result['raw_render'] / n * 1e3:.2f} ms/page "
          f"(ingest at {result['raw_render'] / total:.2f}x of it)")
    print(f"{'stage':36} {'cpu s':>7} {'ms/page':>8} {'share':>6}")
    stages = result["stages"]
    top = sum(stages.get(k, 0.0) for k, depth in STAGES if depth == 0)
    for key, depth in STAGES:
        v = stages.get(key, 0.0)
        print(f"{'  ' * depth + key:36} {v:7.2f} {v / n * 1e3:8.2f} {100 * v / total:5.1f}%")
    print(f"{'other':36} {total - top:7.2f} {(total - top) / n * 1e3:8.2f} "
          f"{100 * (total - top) / total:5.1f}%")


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


@pytest.mark.benchmark
def test_ingest_stages_quick():
    files = [f for f in GROUPS["r"] if Path(f).is_file()]
    if not files:
        pytest.skip("no R manuals (apt-get install r-doc-pdf)")
    result = measure(files)
    assert result["pages"] > 0 and result["stages"]["parse"] > 0
    assert sum(result["stages"][k] for k, d in STAGES if d == 0) <= result["total"] * 1.05


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--group", choices=sorted(GROUPS), default="figures")
    ap.add_argument("--output", type=Path, default=RESULTS / "bench_ingest_stages.json")
    args = ap.parse_args(argv)
    files = [f for f in GROUPS[args.group] if Path(f).is_file()]
    if not files:
        print(f"none of {GROUPS[args.group]} on this machine")
        return 1
    result = {"uptime": _uptime(), "group": args.group, "files": files, **measure(files)}
    print_table(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
