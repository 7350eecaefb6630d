"""Screenshot crops of figures and tables as image queries, on the offline (lite) profile.

What a user does: screenshot a table or a figure out of a manual and ask "where is
this from?" (``ragnest query --image crop.png``). The lite pipeline has no image
embedder, so the crop is read with RapidOCR and searched as text (dense ladder +
BM25). A crop counts as found when its source page is in the top 1 / top 5.

Crops come from the layout ragnest's own PDF parser finds (figure, picture and table
segments at least ``--min-side`` points on each side), rendered at ``--crop-dpi``
straight from the PDF (as a screenshot at that zoom would be), sampled at random.

    python tests/benchmarks/bench_image_query.py                    # default corpus
    python tests/benchmarks/bench_image_query.py --crops 200 --chunking interleaved
    python tests/benchmarks/bench_image_query.py --drawings --crops 80   # vector drawings

``--drawings`` samples crops of drawing clusters found by PyMuPDF alone (not by ragnest's
layout: see :func:`drawing_crops`) on the gnuplot and asymptote manuals, and splits the
table by whether the parser's layout covers the crop with a figure/table segment. Run it
with ``PYTHONPATH`` on two checkouts to compare them on the same crops (the crops depend
on PyMuPDF and the seed only).

Default corpus (Debian packages, ``apt-get install r-doc-pdf asymptote-doc
gnuplot-doc octave-doc``): the R manuals (677 pages, few figures), the Asymptote
manual (vector figures), the gnuplot manual and the Octave manual (plots, tables).
Writes tests/benchmarks/results/image_query.json.
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
from collections import defaultdict
from pathlib import Path

import pymupdf
import pytest

from ragnest import Pipeline, Source
from ragnest.parsers.pdf import PdfParser

RESULTS = Path(__file__).parent / "results"
R_MANUALS = Path("/usr/share/R/doc/manual")
EXTRA = [
    Path("/usr/share/doc/asymptote/asymptote.pdf"),
    Path("/usr/share/doc/gnuplot/gnuplot.pdf"),
    Path("/usr/share/doc/octave/octave.pdf"),
]


def default_corpus() -> list[Path]:
    files = sorted(p for p in R_MANUALS.glob("*.pdf") if "refman" not in p.name)
    return files + [p for p in EXTRA if p.is_file()]


def find_crops(files: list[Path], n: int, min_side: float, seed: int = 11) -> list[dict]:
    """Figure/picture/table regions found by ragnest's layout, sampled at random."""
    parser = PdfParser(chunking="page", ocr="never")
    regions = []
    for f in files:
        for chunk in parser.parse(Source.from_path(f)):
            for seg in chunk.segments:
                if seg.kind == "text" or not seg.bbox:
                    continue
                x0, y0, x1, y1 = seg.bbox
                if x1 - x0 < min_side or y1 - y0 < min_side:
                    continue
                regions.append({"source": chunk.source, "page": chunk.page,
                                "kind": seg.role or seg.kind, "bbox": [x0, y0, x1, y1]})
    rng = random.Random(seed)
    return rng.sample(regions, min(n, len(regions)))


def drawing_crops(files: list[Path], n: int, min_side: float, seed: int = 13,
                  gap: float = 10.0) -> list[dict]:
    """Crops of vector drawings found WITHOUT ragnest's layout: PyMuPDF's own
    ``cluster_drawings`` (``gap`` points tolerance) over each page's paths, page rules
    (thin lines across half the page) and page-sized backgrounds left out, clusters at
    least ``min_side`` points on each side; what a user sees as "a drawing" and might
    screenshot, whether or not the parser calls it a figure. Sampled at random."""
    regions = []
    for f in files:
        with pymupdf.open(f) as doc:
            for page in doc:
                paths = page.get_drawings()
                if len(paths) < 3:
                    continue
                pr = page.rect
                keep = [p for p in paths
                        if p["rect"].width * p["rect"].height < 0.85 * pr.width * pr.height
                        and not (p["rect"].height <= 1.5 and p["rect"].width >= 0.5 * pr.width)
                        and not (p["rect"].width <= 1.5 and p["rect"].height >= 0.5 * pr.height)]
                if not keep:
                    continue
                for r in page.cluster_drawings(drawings=keep, x_tolerance=gap, y_tolerance=gap):
                    if r.width < min_side or r.height < min_side:
                        continue
                    if r.width * r.height > 0.85 * pr.width * pr.height:
                        continue
                    regions.append({"source": str(f), "page": page.number + 1,
                                    "kind": "drawing", "bbox": [r.x0, r.y0, r.x1, r.y1]})
    rng = random.Random(seed)
    return rng.sample(regions, min(n, len(regions)))


def mark_layout_cover(crops: list[dict], min_overlap: float = 0.5) -> None:
    """Set ``crop["layout"]``: the kind of the parser's visual segment covering at least
    ``min_overlap`` of the crop's region (``"none"`` when no segment does): which crops
    the layout classifies, so the table can split found/not found by it."""
    parser = PdfParser(chunking="page", ocr="never")
    by_page: dict[tuple[str, int], list] = defaultdict(list)
    for crop in crops:
        by_page[(crop["source"], crop["page"])].append(crop)
    for (source, page), group in by_page.items():
        segs = [s for c in parser.parse_pages(Source.from_path(source), page - 1, page)
                for s in c.segments if s.kind != "text" and s.bbox]
        for crop in group:
            x0, y0, x1, y1 = crop["bbox"]
            area = max((x1 - x0) * (y1 - y0), 1e-6)
            best = "none"
            for s in segs:
                a0, b0, a1, b1 = s.bbox
                inter = max(0.0, min(x1, a1) - max(x0, a0)) * max(0.0, min(y1, b1) - max(y0, b0))
                if inter / area >= min_overlap:
                    best = s.role or s.kind
                    break
            crop["layout"] = best


def render_crops(crops: list[dict], out: Path, dpi: int, jitter: float, seed: int = 5) -> None:
    """Render each crop; with ``jitter`` each side moves out or in by up to that many
    points (a hand-made screenshot never matches the detected box exactly)."""
    rng = random.Random(seed)
    for i, crop in enumerate(crops):
        with pymupdf.open(crop["source"]) as doc:
            page = doc[crop["page"] - 1]
            x0, y0, x1, y1 = crop["bbox"]
            if jitter:
                x0, y0 = x0 - rng.uniform(-jitter / 3, jitter), y0 - rng.uniform(-jitter / 3, jitter)
                x1, y1 = x1 + rng.uniform(-jitter / 3, jitter), y1 + rng.uniform(-jitter / 3, jitter)
            rect = pymupdf.Rect(x0, y0, x1, y1) & page.rect
            path = out / f"crop{i:04d}.png"
            page.get_pixmap(dpi=dpi, clip=rect).save(path)
            crop["png"] = str(path)
            crop["shot"] = [round(v, 1) for v in rect]


def evaluate(rag: Pipeline, crops: list[dict], using: list[str] | None = None) -> dict:
    per_kind: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    latency = []
    for crop in crops:
        t0 = time.perf_counter()
        hits = rag.retrieve(Pipeline.image_query(crop["png"]), k=5, using=using)
        latency.append((time.perf_counter() - t0) * 1000)
        ranks = [i for i, h in enumerate(hits)
                 if h.chunk.source == crop["source"] and h.chunk.page == crop["page"]]
        found = (bool(ranks) and ranks[0] == 0, bool(ranks))
        crop["found_top1"], crop["found_top5"] = found
        crop["no_hits"] = not hits
        per_kind[crop["kind"]].append(found)
        per_kind["all"].append(found)
    rows = []
    for kind, results in sorted(per_kind.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        rows.append({
            "kind": kind,
            "crops": len(results),
            "top1": sum(a for a, _ in results) / len(results),
            "top5": sum(b for _, b in results) / len(results),
        })
    return {
        "rows": rows,
        "median_ms": statistics.median(latency),
        "p95_ms": sorted(latency)[int(0.95 * (len(latency) - 1))],
        "no_text_found": sum(c["no_hits"] for c in crops),
    }


RETRIEVERS = {
    "ocr text only (dense + bm25)": ["dense", "bm25"],
    "visual fingerprint only": ["visual"],
    "lite default (all fused)": None,
}


def run(files: list[Path], n_crops: int, crop_dpi: int, min_side: float, chunking: str,
        store: Path, crop_dir: Path, jitter: float = 12.0) -> dict:
    crops = find_crops(files, n_crops, min_side)
    render_crops(crops, crop_dir, crop_dpi, jitter)
    overrides = {"components": {"pdf": {"params": {"chunking": chunking}}}}
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)},
                            overrides=overrides) as rag:
        t0 = time.perf_counter()
        report = rag.ingest([str(f) for f in files], progress=False)
        ingest_s = time.perf_counter() - t0
        results = {name: evaluate(rag, crops, using) for name, using in RETRIEVERS.items()}
    return {
        "docs": [f.name for f in files],
        "pages": report.pages,
        "chunking": chunking,
        "crop_dpi": crop_dpi,
        "jitter_pt": jitter,
        "ingest_seconds": round(ingest_s, 1),
        "retrievers": results,
        "crops": [{k: v for k, v in c.items() if k != "png"} for c in crops],
    }


def run_drawings(files: list[Path], n_crops: int, crop_dpi: int, min_side: float,
                 store: Path, crop_dir: Path, jitter: float = 12.0) -> dict:
    """:func:`run` on crops of drawing clusters (:func:`drawing_crops`), with the visual
    route alone and the lite default, split by whether the layout covers the crop."""
    crops = drawing_crops(files, n_crops, min_side)
    mark_layout_cover(crops)
    render_crops(crops, crop_dir, crop_dpi, jitter)
    for crop in crops:
        crop["kind"] = "drawing, layout " + ("covers" if crop["layout"] != "none" else "misses")
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}) as rag:
        t0 = time.perf_counter()
        report = rag.ingest([str(f) for f in files], progress=False)
        ingest_s = time.perf_counter() - t0
        retrievers = {k: v for k, v in RETRIEVERS.items() if k != "ocr text only (dense + bm25)"}
        results = {name: evaluate(rag, crops, using) for name, using in retrievers.items()}
    return {
        "docs": [f.name for f in files],
        "pages": report.pages,
        "chunking": "page",
        "crops_from": "drawing clusters (PyMuPDF cluster_drawings, 10 pt)",
        "crop_dpi": crop_dpi,
        "jitter_pt": jitter,
        "ingest_seconds": round(ingest_s, 1),
        "retrievers": results,
        "crops": [{k: v for k, v in c.items() if k != "png"} for c in crops],
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
    crop_dir = tmp_path / "crops"
    crop_dir.mkdir()
    result = run(files, 100, 110, 40.0, "page", tmp_path / "store", crop_dir)
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
    ap.add_argument("--drawings", action="store_true",
                    help="crops of vector-drawing clusters found without ragnest's layout "
                         "(default corpus: the gnuplot and asymptote manuals)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.drawings:
        files = args.docs or [p for p in EXTRA[:2] if p.is_file()]
        if not files:
            raise SystemExit("no PDFs: apt-get install asymptote-doc gnuplot-doc")
        with tempfile.TemporaryDirectory() as tmp:
            crop_dir = Path(tmp) / "crops"
            crop_dir.mkdir()
            result = run_drawings(files, args.crops, args.crop_dpi, args.min_side,
                                  Path(tmp) / "store", crop_dir, args.jitter)
        print_table(result)
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / "image_query_drawings.json"
        out.write_text(json.dumps(result, indent=2))
        print(f"\nwrote {out}")
        return 0
    files = args.docs or default_corpus()
    if not files:
        raise SystemExit("no PDFs: apt-get install r-doc-pdf asymptote-doc gnuplot-doc octave-doc")
    with tempfile.TemporaryDirectory() as tmp:
        crop_dir = Path(tmp) / "crops"
        crop_dir.mkdir()
        result = run(files, args.crops, args.crop_dpi, args.min_side, args.chunking,
                     Path(tmp) / "store", crop_dir, args.jitter)
    print_table(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "image_query.json" if args.chunking == "page" else f"image_query_{args.chunking}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2))
    print(f"\nwrote {RESULTS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
