"""Known-item retrieval on real manuals: BM25 vs dense vs hybrid fusions, side by side.

A query is a 14-word window of one page's text with a quarter of its words dropped;
a hit is the source page in the top 1 / top 5. Every retriever runs over the same
store built by the lite pipeline, in one run.

    python tests/benchmarks/bench_known_item.py                       # R manuals (Debian r-doc-pdf)
    python tests/benchmarks/bench_known_item.py --docs DIR --queries 500
    python tests/benchmarks/bench_known_item.py --chunking interleaved   # PDF chunking mode
    python tests/benchmarks/bench_known_item.py --quick                   # 60 queries

In ``interleaved`` mode a page holds several chunks; a query still counts as found
when a chunk of its page is in the top 5 (ranks count distinct pages).

The default folder is /usr/share/R/doc/manual (``apt-get install r-doc-pdf``);
refman/fullrefman are left out unless --include-refman. Writes
tests/benchmarks/results/known_item.json. The queries, the metrics and the latency
percentiles come from ``ragnest.eval`` (``ragnest eval DIR --make known-item`` runs the
same evaluation from the command line).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from _bench import RESULTS, pytest  # first: puts the repo on sys.path

from ragnest import Pipeline
from ragnest.eval import EvalDataset, Evaluator, Setting, known_item_set

DEFAULT_DOCS = Path("/usr/share/R/doc/manual")


def make_queries(files: list[Path], n: int, seed: int = 7) -> EvalDataset:
    """Known-item queries from random pages with enough words (the library's method:
    :func:`ragnest.eval.known_item_set`)."""
    return known_item_set(files, n, seed=seed)


RETRIEVERS = {
    "bm25": {"using": ("bm25",)},
    "dense (wordllama ladder)": {"using": ("dense",)},
    "hybrid relative (lite default)": {"fusion": "relative"},
    "hybrid relative (dense 0.5)": {"fusion": "relative",
                                    "retrieval": {"weights": {"dense": 0.5, "bm25": 1.0}}},
    "hybrid rrf (equal weights)": {"fusion": "rrf",
                                   "retrieval": {"weights": {"dense": 1.0, "bm25": 1.0}}},
    "hybrid rrf (bm25 x3)": {"fusion": "rrf", "retrieval": {"weights": {"dense": 1.0, "bm25": 3.0}}},
    "hybrid dbsf": {"fusion": "dbsf"},
}
MEASURES = ["R@1", "R@5", "RR@5"]  # one gold page a query: R@1 = top-1 found, R@5 = top-5


def evaluate(rag: Pipeline, queries: EvalDataset) -> list[dict]:
    """Every retriever over the queries through :class:`ragnest.eval.Evaluator` (metrics
    by ir-measures; latency: the wall time of each query, p50/p95)."""
    settings = [Setting(label=name, **opts) for name, opts in RETRIEVERS.items()]
    evaluator = Evaluator(rag, queries, measures=MEASURES, k=5, answers=False)
    try:
        results = evaluator.run(settings, progress=False)
    finally:
        evaluator.close()
    return [
        {"retriever": r["setting"], "top1": r["R@1"], "top5": r["R@5"], "mrr@5": r["RR@5"],
         "median_ms": r["latency_ms"]["retrieve"]["p50"], "p95_ms": r["latency_ms"]["retrieve"]["p95"]}
        for r in results.rows
    ]


def run(docs: Path, n_queries: int, include_refman: bool, store_dir: Path,
        chunking: str = "page") -> dict:
    files = sorted(
        p for p in docs.glob("*.pdf")
        if p.name != "refman.pdf" and (include_refman or "refman" not in p.name)
    )
    if not files:
        raise SystemExit(f"no PDFs in {docs}")
    queries = make_queries(files, n_queries)
    overrides = {"components": {"pdf": {"params": {"chunking": chunking}}}}
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store_dir)},
                            overrides=overrides) as rag:
        t0 = time.perf_counter()
        report = rag.ingest([str(f) for f in files], progress=False)
        ingest_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = rag.ingest([str(f) for f in files], progress=False)
        reingest_s = time.perf_counter() - t0
        stats = rag.stats()
        rows = evaluate(rag, queries)
    return {
        "docs": [f.name for f in files],
        "chunking": chunking,
        "pages": report.pages,
        "chunks": stats["chunks"],
        "queries": len(queries),
        "ingest_seconds": round(ingest_s, 2),
        "pages_per_second": round(report.pages / ingest_s, 1),
        "reingest_added": again.chunks_added,
        "reingest_seconds": round(reingest_s, 2),
        "rows": rows,
    }


def print_table(result: dict) -> None:
    print(
        f"\n{len(result['docs'])} PDFs, {result['pages']} pages, {result['chunks']} chunks "
        f"({result.get('chunking', 'page')}), {result['queries']} queries; "
        f"ingest {result['ingest_seconds']} s ({result['pages_per_second']} pages/s), "
        f"re-ingest added {result['reingest_added']} in {result['reingest_seconds']} s"
    )
    print(f"{'retriever':38} {'top1':>6} {'top5':>6} {'mrr@5':>6} {'med ms':>7} {'p95 ms':>7}")
    for r in result["rows"]:
        print(
            f"{r['retriever']:38} {r['top1']:6.3f} {r['top5']:6.3f} {r['mrr@5']:6.3f} "
            f"{r['median_ms']:7.2f} {r['p95_ms']:7.2f}"
        )


@pytest.mark.benchmark
@pytest.mark.parametrize("chunking", ["page", "interleaved"])
def test_known_item_r_manuals(tmp_path, chunking):
    if not DEFAULT_DOCS.is_dir():
        pytest.skip("R manuals not installed (apt-get install r-doc-pdf)")
    result = run(DEFAULT_DOCS, 200, False, tmp_path / "store", chunking)
    rows = {r["retriever"]: r for r in result["rows"]}
    assert rows["hybrid relative (lite default)"]["top5"] >= 0.95
    best_single = max(rows["bm25"]["top5"], rows["dense (wordllama ladder)"]["top5"])
    assert rows["hybrid relative (lite default)"]["top5"] >= best_single
    assert result["reingest_added"] == 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--include-refman", action="store_true",
                    help="also ingest fullrefman.pdf (2,415 pages); refman.pdf is the same file")
    ap.add_argument("--store", type=Path, default=None, help="keep the store here")
    ap.add_argument("--chunking", choices=["page", "interleaved"], default="page")
    ap.add_argument("--quick", action="store_true", help="60 queries (a smoke run)")
    args = ap.parse_args(argv)
    if args.quick:
        args.queries = min(args.queries, 60)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or Path(tmp) / "store"
        result = run(args.docs, args.queries, args.include_refman, store, args.chunking)
    print_table(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "known_item.json" if args.chunking == "page" else f"known_item_{args.chunking}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2))
    print(f"\nwrote {RESULTS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
