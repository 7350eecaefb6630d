"""Screenshot crops of figures and tables as image queries, on the offline (lite) profile.

What a user does: screenshot a table or a figure out of a manual and ask "where is
this from?" (``ragnest query --image crop.png``). The lite pipeline has no image
embedder, so the crop is read with RapidOCR and searched as text (dense ladder +
BM25). A crop counts as found when its source page is in the top 1 / top 5.

Crops come from the layout ragnest's own PDF parser finds (figure, picture and table
segments at least ``--min-side`` points on each side), rendered at ``--crop-dpi``
straight from the PDF (as a screenshot at that zoom would be), sampled at random:
``ragnest.eval.crop_set``, evaluated by ``ragnest.eval.Evaluator``.

    python tests/benchmarks/bench_image_query.py                    # default corpus
    python tests/benchmarks/bench_image_query.py --crops 200 --chunking interleaved

Default corpus (Debian packages, ``apt-get install r-doc-pdf asymptote-doc
gnuplot-doc octave-doc``): the R manuals (677 pages, few figures), the Asymptote
manual (vector figures), the gnuplot manual and the Octave manual (plots, tables).
Writes tests/benchmarks/results/image_query.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _bench import RESULTS, pytest  # first: puts the repo on sys.path

from ragnest import Pipeline
from ragnest.eval import EvalDataset, Evaluator, Setting, crop_set

R_MANUALS = Path("/usr/share/R/doc/manual")
EXTRA = [
    Path("/usr/share/doc/asymptote/asymptote.pdf"),
    Path("/usr/share/doc/gnuplot/gnuplot.pdf"),
    Path("/usr/share/doc/octave/octave.pdf"),
]


def default_corpus() -> list[Path]:
    files = sorted(p for p in R_MANUALS.glob("*.pdf") if "refman" not in p.name)
    return files + [p for p in EXTRA if p.is_file()]


RETRIEVERS = {
    "ocr text only (dense + bm25)": ("dense", "bm25"),
    "visual fingerprint only": ("visual",),
    "lite default (all fused)": None,
}


def evaluate(rag: Pipeline, crops: EvalDataset) -> dict[str, dict]:
    """Every retriever over the crops through :class:`ragnest.eval.Evaluator` (metrics by
    ir-measures, latency p50/p95 of each query), broken down by crop kind."""
    settings = [Setting(label=name, using=using) for name, using in RETRIEVERS.items()]
    evaluator = Evaluator(rag, crops, measures=["R@1", "R@5"], k=5, answers=False)
    try:
        results = evaluator.run(settings, progress=False)
    finally:
        evaluator.close()
    kinds = {q.id: q.kind.removeprefix("crop-") for q in crops.queries}
    out = {}
    for row in results.rows:
        detail = results.per_query[row["setting"]]
        groups: dict[str, list[dict]] = defaultdict(list)
        for qid, d in detail.items():
            groups[kinds[qid]].append(d)
            groups["all"].append(d)
        out[row["setting"]] = {
            "rows": [{"kind": kind, "crops": len(ds),
                      "top1": sum(d["R@1"] for d in ds) / len(ds),
                      "top5": sum(d["R@5"] for d in ds) / len(ds)}
                     for kind, ds in sorted(groups.items(), key=lambda kv: (kv[0] == "all", kv[0]))],
            "median_ms": row["latency_ms"]["retrieve"]["p50"],
            "p95_ms": row["latency_ms"]["retrieve"]["p95"],
            "no_text_found": sum(not d["ranked"] for d in detail.values()),
        }
    return out


def run(files: list[Path], n_crops: int, crop_dpi: int, min_side: float, chunking: str,
        store: Path, jitter: float = 12.0) -> dict:
    crops = crop_set(files, n_crops, min_side=min_side, dpi=crop_dpi, jitter=jitter)
    overrides = {"components": {"pdf": {"params": {"chunking": chunking}}}}
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)},
                            overrides=overrides) as rag:
        t0 = time.perf_counter()
        report = rag.ingest([str(f) for f in files], progress=False)
        ingest_s = time.perf_counter() - t0
        results = evaluate(rag, crops)
    return {
        "docs": [f.name for f in files],
        "pages": report.pages,
        "chunking": chunking,
        "crop_dpi": crop_dpi,
        "jitter_pt": jitter,
        "ingest_seconds": round(ingest_s, 1),
        "retrievers": results,
        "crops": [{"kind": q.kind, "page": next(iter(crops.qrels[q.id])), "bbox": list(q.boxes[0].box),
                   "shot": [round(v, 1) for v in q.image.clip]} for q in crops.queries
                  if q.image is not None and q.image.clip],
    }


def print_table(result: dict) -> None:
    print(f"\n{len(result['docs'])} PDFs, {result['pages']} pages, chunking={result['chunking']}, "
          f"crops at {result['crop_dpi']} dpi, edges moved up to {result['jitter_pt']} pt; "
          f"ingest {result['ingest_seconds']} s")
    print(f"{'retriever':30} {'crop kind':10} {'crops':>6} {'top1':>6} {'top5':>6} {'med ms':>7}")
    for name, res in result["retrievers"].items():
        for r in res["rows"]:
            print(f"{name:30} {r['kind']:10} {r['crops']:6d} {r['top1']:6.3f} {r['top5']:6.3f} "
                  f"{res['median_ms'] if r['kind'] == 'all' else float('nan'):7.0f}")


@pytest.mark.benchmark
def test_image_crops_find_their_page(tmp_path):
    files = default_corpus()
    if not files:
        pytest.skip("no corpus (apt-get install r-doc-pdf asymptote-doc gnuplot-doc octave-doc)")
    result = run(files, 100, 110, 40.0, "page", tmp_path / "store")
    assert result["retrievers"]["lite default (all fused)"]["rows"][-1]["top5"] >= 0.70


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=Path, nargs="*", help="PDF files (default: see above)")
    ap.add_argument("--crops", type=int, default=150)
    ap.add_argument("--crop-dpi", type=int, default=110, help="screenshot resolution")
    ap.add_argument("--min-side", type=float, default=40.0, help="points")
    ap.add_argument("--chunking", choices=["page", "interleaved"], default="page")
    ap.add_argument("--jitter", type=float, default=12.0,
                    help="move each crop edge by up to this many points (0 = exact boxes)")
    ap.add_argument("--quick", action="store_true", help="40 crops (a smoke run)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    files = args.docs or default_corpus()
    if not files:
        raise SystemExit("no PDFs: apt-get install r-doc-pdf asymptote-doc gnuplot-doc octave-doc")
    if args.quick:
        args.crops = min(args.crops, 40)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(files, args.crops, args.crop_dpi, args.min_side, args.chunking,
                     Path(tmp) / "store", args.jitter)
    print_table(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "image_query.json" if args.chunking == "page" else f"image_query_{args.chunking}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2))
    print(f"\nwrote {RESULTS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
