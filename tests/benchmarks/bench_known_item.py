"""Known-item retrieval on real manuals: BM25 vs dense vs hybrid fusions, side by side.

A query is a 14-word window of one page's text with a quarter of its words dropped;
a hit is the source page in the top 1 / top 5. Every retriever runs over the same
store built by the lite pipeline, in one run.

    python tests/benchmarks/bench_known_item.py                       # R manuals (Debian r-doc-pdf)
    python tests/benchmarks/bench_known_item.py --docs DIR --queries 500
    python tests/benchmarks/bench_known_item.py --chunking interleaved   # PDF chunking mode

In ``interleaved`` mode a page holds several chunks; a query still counts as found
when a chunk of its page is in the top 5.

The default folder is /usr/share/R/doc/manual (``apt-get install r-doc-pdf``);
refman/fullrefman are left out unless --include-refman. Writes
tests/benchmarks/results/known_item.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ragnest import Pipeline, Source
from ragnest.parsers.pdf import PdfParser

RESULTS = Path(__file__).parent / "results"
DEFAULT_DOCS = Path("/usr/share/R/doc/manual")


def make_queries(files: list[Path], n: int, seed: int = 7) -> list[tuple[str, str, int]]:
    """(query, source path, page) triples from random pages with enough words."""
    rng = random.Random(seed)
    pages: list[tuple[str, int, list[str]]] = []
    parser = PdfParser()
    for f in files:
        src = Source.from_path(f)
        for chunk in parser.parse(src):
            # words: whitespace tokens holding a letter or digit (". . ." leaders are not words)
            words = [w for w in chunk.text.split() if any(ch.isalnum() for ch in w)]
            if len(words) >= 30:
                pages.append((chunk.source, chunk.page or 0, words))
    queries = []
    for source, page, words in rng.sample(pages, min(n, len(pages))):
        start = rng.randrange(0, len(words) - 14)
        window = words[start : start + 14]
        drop = set(rng.sample(range(14), 14 // 4 + (1 if rng.random() < 0.5 else 0)))  # 3-4 of 14
        queries.append((" ".join(w for i, w in enumerate(window) if i not in drop), source, page))
    return queries


RETRIEVERS = {
    "bm25": {"using": ["bm25"]},
    "dense (wordllama ladder)": {"using": ["dense"]},
    "hybrid relative (lite default)": {"fusion": "relative"},
    "hybrid relative (dense 0.5)": {"fusion": "relative", "weights": {"dense": 0.5, "bm25": 1.0}},
    "hybrid rrf (equal weights)": {"fusion": "rrf", "weights": {"dense": 1.0, "bm25": 1.0}},
    "hybrid rrf (bm25 x3)": {"fusion": "rrf", "weights": {"dense": 1.0, "bm25": 3.0}},
    "hybrid dbsf": {"fusion": "dbsf"},
}


def evaluate(rag: Pipeline, queries, name: str, opts: dict) -> dict:
    saved = dict(rag.retrieval.weights)
    if "weights" in opts:
        rag.retrieval.weights = dict(opts["weights"])
    top1 = top5 = 0
    rr = 0.0
    lat = []
    try:
        for text, source, page in queries:
            t0 = time.perf_counter()
            hits = rag.retrieve(text, k=5, using=opts.get("using"), fusion=opts.get("fusion"))
            lat.append((time.perf_counter() - t0) * 1000)
            ranks = [i for i, h in enumerate(hits) if h.chunk.source == source and h.chunk.page == page]
            if ranks:
                top5 += 1
                top1 += ranks[0] == 0
                rr += 1.0 / (ranks[0] + 1)
    finally:
        rag.retrieval.weights = saved
    n = len(queries)
    return {
        "retriever": name,
        "top1": top1 / n,
        "top5": top5 / n,
        "mrr@5": rr / n,
        "median_ms": statistics.median(lat),
        "p95_ms": sorted(lat)[int(0.95 * (n - 1))],
    }


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
        rows = [evaluate(rag, queries, name, opts) for name, opts in RETRIEVERS.items()]
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
    args = ap.parse_args(argv)
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
