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

``--before-after`` (see :func:`run_before_after`): screenshots of text passages too
(and of vector drawings the layout does not mark as figures), from the sample handbook
(examples/docs) and the manuals above, each searched with the settings before screenshot
routing (OCR of every crop, weights dense 1 / bm25 1 / visual 3 for every query) and
with the lite defaults now (OCR only for crops that hold text; the text routes lead
for those that are mostly text), on one store in one run: top 1 / top 5 and latency p50 / p95 per crop
kind, plus how many crops were read by OCR. Writes results/image_query_before_after.json::

    python tests/benchmarks/bench_image_query.py --before-after [--quick]

``--before DIR`` (with ``--before-after`` or ``--drawings``) evaluates older code too, on
the same store and crops in the same run (a subprocess importing ragnest from DIR, run
first); ``--defaults-only`` keeps only the lite defaults::

    git archive 12afb04 | tar -x -C /tmp/before_12afb
    python tests/benchmarks/bench_image_query.py --before-after --defaults-only --before /tmp/before_12afb
    python tests/benchmarks/bench_image_query.py --drawings --crops 80 --before /tmp/before_12afb
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
from typing import Any

import pymupdf
from _bench import RESULTS, pytest  # first: puts the repo on sys.path

from ragnest import Pipeline, RagnestError, Source
from ragnest.eval import EvalDataset, EvalQuery, Evaluator, GoldBox, Setting, crop_set
from ragnest.eval.generate import _files, _unit
from ragnest.parsers.pdf import PdfParser
from ragnest.types import ImageRef

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


def timed_ingest(rag: Pipeline, files: list[Path]) -> tuple[Any, float]:
    """Ingest ``files`` into ``rag``: the report and the seconds it took."""
    t0 = time.perf_counter()
    report = rag.ingest([str(f) for f in files], progress=False)
    return report, time.perf_counter() - t0


def run(files: list[Path], n_crops: int, crop_dpi: int, min_side: float, chunking: str,
        store: Path, jitter: float = 12.0) -> dict:
    crops = crop_set(files, n_crops, min_side=min_side, dpi=crop_dpi, jitter=jitter)
    overrides = {"components": {"pdf": {"params": {"chunking": chunking}}}}
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)},
                            overrides=overrides) as rag:
        report, ingest_s = timed_ingest(rag, files)
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
    print(f"{'retriever':38} {'crop kind':22} {'crops':>6} {'top1':>6} {'top5':>6} "
          f"{'p50 ms':>7} {'p95 ms':>7}")
    for name, res in result["retrievers"].items():
        for r in res["rows"]:
            last = r["kind"] == "all"
            print(f"{name:38} {r['kind']:22} {r['crops']:6d} {r['top1']:6.3f} {r['top5']:6.3f} "
                  f"{res['median_ms'] if last else float('nan'):7.0f} "
                  f"{res['p95_ms'] if last else float('nan'):7.0f}")


@pytest.mark.benchmark
def test_image_crops_find_their_page(tmp_path):
    files = default_corpus()
    if not files:
        pytest.skip("no corpus (apt-get install r-doc-pdf asymptote-doc gnuplot-doc octave-doc)")
    result = run(files, 100, 110, 40.0, "page", tmp_path / "store")
    assert result["retrievers"]["lite default (all fused)"]["rows"][-1]["top5"] >= 0.70


# -- before / after screenshot routing: text passages, figures, tables, drawings --------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "docs"
QUICK_CORPUS = [EXAMPLES / "nimbus3_handbook.pdf", EXAMPLES / "lab_safety_guide.pdf",
                R_MANUALS / "R-intro.pdf", EXTRA[0], EXTRA[1]]
# What changed, as retrieval settings over the lite pipeline's (``{}``: as shipped).
SETTINGS = {
    "before (OCR always, weights 1/1/3)": {"image_ocr": True, "image_weights": {}},
    "after (lite defaults)": {},
}


# --- --before-after: its own crop sampling (text passages, layout regions, drawings)


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


def find_text_crops(files: list[Path], n: int, min_words: int = 12, seed: int = 13) -> list[dict]:
    """Text blocks of at least ``min_words`` words, ``n`` spread evenly over ``files``."""
    rng = random.Random(seed)
    out: list[dict] = []
    for i, f in enumerate(files):
        blocks = []
        with pymupdf.open(f) as doc:
            for page in doc:
                blocks += [{"source": str(Path(f).absolute()), "page": page.number + 1,
                            "kind": "text", "bbox": list(b[:4])}
                           for b in page.get_text("blocks")
                           if b[6] == 0 and len(b[4].split()) >= min_words and b[3] - b[1] >= 18]
        share = n // len(files) + (1 if i < n % len(files) else 0)
        out += rng.sample(blocks, min(share, len(blocks)))
    return out


def find_drawing_crops(files: list[Path], n: int, min_side: float = 60.0,
                       seed: int = 17) -> list[dict]:
    """Clusters of vector drawings (``Page.cluster_drawings``) that no figure or table
    region of ragnest's layout covers: figures a user can screenshot that get no visual
    fingerprint on main."""
    if n <= 0:
        return []
    parser = PdfParser(chunking="page", ocr="never")
    found = []
    for f in files:
        regions: dict[int, list[pymupdf.Rect]] = defaultdict(list)
        for chunk in parser.parse(Source.from_path(f)):
            regions[chunk.page] += [pymupdf.Rect(s.bbox) for s in chunk.segments
                                    if s.kind != "text" and s.bbox]
        with pymupdf.open(f) as doc:
            for page in doc:
                if len(page.get_drawings()) < 8:
                    continue
                for r in page.cluster_drawings():
                    covered = any((r & q).get_area() > 0.3 * r.get_area()
                                  for q in regions[page.number + 1])
                    if r.width >= min_side and r.height >= min_side and not covered:
                        found.append({"source": str(Path(f).absolute()), "page": page.number + 1,
                                      "kind": "drawing", "bbox": list(r)})
    return random.Random(seed).sample(found, min(n, len(found)))


def _group(kind: str) -> str:
    return {"text": "text passage", "drawing": "drawing (no region)", "table": "table"}.get(
        kind, "figure")


def evaluate_settings(rag: Pipeline, crops: list[dict], changes: dict,
                      using: list[str] | None = None) -> dict:
    """Top 1 / top 5, latency p50 / p95 and OCR share per crop group (and ``ranks``: each
    crop's rank, ``None`` past 5), with the pipeline's retrieval settings changed by
    ``changes`` (a Retriever of its own on the same store)."""
    from dataclasses import replace

    from ragnest.retrieval import Retriever

    retriever = Retriever(rag.embedders, rag.store, replace(rag.retrieval, **changes))
    try:
        retriever.run(Pipeline.image_query(crops[0]["png"]), k=5, using=using)  # loads OCR
        groups: dict[str, list[dict]] = defaultdict(list)
        for crop in crops:
            t0 = time.perf_counter()
            try:
                result = retriever.run(Pipeline.image_query(crop["png"]), k=5, using=using)
            except RagnestError:  # no route read it (a blank crop without OCR)
                result = None
            ms = (time.perf_counter() - t0) * 1000
            hits = result.hits if result is not None else []
            ranks = [i for i, h in enumerate(hits)
                     if h.chunk.source == crop["source"] and h.chunk.page == crop["page"]]
            rank = ranks[0] if ranks else None
            row = {"rank": rank, "ms": ms, "ocr": result is not None and "ocr" in result.timings
                   and getattr(result.query, "ocr", True)}
            groups[_group(crop["kind"])].append(row)
            groups["all"].append(row)
    finally:
        retriever.close()
    out: dict = {"ranks": [r["rank"] for r in groups["all"]]}  # per crop, in crop order
    for name, rows in sorted(groups.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        ms = sorted(r["ms"] for r in rows)
        out[name] = {
            "crops": len(rows),
            "top1": sum(r["rank"] == 0 for r in rows) / len(rows),
            "top5": sum(r["rank"] is not None for r in rows) / len(rows),
            "p50_ms": statistics.median(ms),
            "p95_ms": ms[int(0.95 * (len(ms) - 1))],
            "ocr_share": sum(bool(r["ocr"]) for r in rows) / len(rows),
        }
    return out


def run_before_after(files: list[Path], n_text: int, n_figure: int, n_drawing: int,
                     crop_dpi: int, min_side: float, store: Path, crop_dir: Path,
                     jitter: float = 12.0, before: Path | None = None,
                     defaults_only: bool = False) -> dict:
    """Ingest ``files`` once; evaluate every entry of :data:`SETTINGS` (plus the text and
    visual routes alone, as references) on the same crops. ``before``: a checkout of
    older code, whose lite defaults run first on the same store and crops (in a
    subprocess, see :func:`in_code`); ``defaults_only``: only the lite defaults."""
    crops = (find_text_crops(files, n_text) + find_crops(files, n_figure, min_side)
             + find_drawing_crops(files, n_drawing))
    render_crops(crops, crop_dir, crop_dpi, jitter)
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}) as rag:
        report, ingest_s = timed_ingest(rag, files)
    settings = {}
    if before is not None:
        settings[f"before code {before.name} (lite defaults)"] = in_code(
            before, "evaluate_on_store", str(store), crops, {})
    names = ["after (lite defaults)"] if defaults_only else list(SETTINGS)
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}) as rag:
        rag.open()
        settings.update({name: evaluate_settings(rag, crops, SETTINGS[name]) for name in names})
        if not defaults_only:
            settings["text routes only (OCR always)"] = evaluate_settings(
                rag, crops, {"image_ocr": True}, using=["dense", "bm25"])
            settings["visual route only"] = evaluate_settings(rag, crops, {"image_ocr": False},
                                                              using=["visual"])
    return {"docs": [f.name for f in files], "pages": report.pages, "crop_dpi": crop_dpi,
            "jitter_pt": jitter, "ingest_seconds": round(ingest_s, 1), "settings": settings,
            "crops": [{k: v for k, v in c.items() if k != "png"} for c in crops]}


def evaluate_on_store(store: str, crops: list[dict], changes: dict) -> dict:
    """:func:`evaluate_settings` with the lite pipeline on an ingested ``store``."""
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": store}) as rag:
        rag.open()
        return evaluate_settings(rag, crops, changes)


def evaluate_drawings_on_store(store: str, crops: list[dict], dpi: int) -> dict:
    """:func:`evaluate` of the drawing crops with the lite pipeline on ``store``."""
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": store}) as rag:
        rag.open()
        return evaluate(rag, drawing_dataset(crops, dpi))


def in_code(code: Path, function: str, *args: object) -> dict:
    """Call this module's ``function(*args)`` with ragnest imported from the checkout
    ``code`` (another version, e.g. ``git archive`` of an older commit), in a
    subprocess; arguments and result travel as JSON."""
    import subprocess

    here = Path(__file__).resolve().parent
    script = ("import json, sys; sys.path[:0] = [sys.argv[1], sys.argv[2], sys.argv[3]]; "
              "import bench_image_query as b, ragnest; "
              "assert ragnest.__file__.startswith(sys.argv[1]), ragnest.__file__; "
              "args = json.load(sys.stdin); "
              "print('\\nRESULT ' + json.dumps(getattr(b, args['f'])(*args['a'])))")
    done = subprocess.run(
        [sys.executable, "-c", script, str(code.resolve()), str(here.parents[1]), str(here)],
        input=json.dumps({"f": function, "a": list(args)}), capture_output=True, text=True,
        check=False, env={**__import__("os").environ, "PYTHONPATH": ""})
    if done.returncode != 0:
        raise SystemExit(f"{code}: {function} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.rsplit("\nRESULT ", 1)[1])


def drawing_dataset(crops: list[dict], dpi: int) -> EvalDataset:
    """The rendered drawing crops as an eval set (the query is the shot region, the
    gold page the crop's page)."""
    paths, root = _files(sorted({c["source"] for c in crops}))
    queries, qrels = [], {}
    for i, crop in enumerate(crops):
        qid, unit = f"drawing{i}", _unit(root, crop["source"], crop["page"])
        ref = ImageRef(source=crop["source"], page=crop["page"], clip=tuple(crop["shot"]), dpi=dpi)
        queries.append(EvalQuery(id=qid, image=ref, kind=f"crop-{crop['kind']}",
                                 boxes=(GoldBox(unit, tuple(crop["bbox"])),)))
        qrels[qid] = {unit: 1}
    return EvalDataset("drawings", queries, qrels, documents=paths, root=root)


def run_drawings(files: list[Path], n_crops: int, crop_dpi: int, min_side: float,
                 store: Path, crop_dir: Path, jitter: float = 12.0,
                 before: Path | None = None) -> dict:
    """:func:`run` on crops of drawing clusters (:func:`drawing_crops`), split by
    whether the layout covers the crop; ``before``: older code evaluated first on the
    same store and crops (its retrievers' names prefixed with ``before:``)."""
    crops = drawing_crops(files, n_crops, min_side)
    mark_layout_cover(crops)
    render_crops(crops, crop_dir, crop_dpi, jitter)
    for crop in crops:
        crop["kind"] = "drawing, layout " + ("covers" if crop["layout"] != "none" else "misses")
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}) as rag:
        report, ingest_s = timed_ingest(rag, files)
    results = {}
    if before is not None:
        old = in_code(before, "evaluate_drawings_on_store", str(store), crops, crop_dpi)
        results.update({f"before: {name}": res for name, res in old.items()})
    results.update(evaluate_drawings_on_store(str(store), crops, crop_dpi))
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


def print_before_after(result: dict) -> None:
    print(f"\n{len(result['docs'])} PDFs, {result['pages']} pages, crops at "
          f"{result['crop_dpi']} dpi, edges moved up to {result['jitter_pt']} pt; "
          f"ingest {result['ingest_seconds']} s")
    print(f"{'settings':36} {'crop kind':20} {'crops':>5} {'top1':>6} {'top5':>6} "
          f"{'p50 ms':>7} {'p95 ms':>7} {'OCR':>5}")
    for name, groups in result["settings"].items():
        for kind, g in groups.items():
            if kind == "ranks":
                continue
            print(f"{name:36} {kind:20} {g['crops']:5d} {g['top1']:6.3f} {g['top5']:6.3f} "
                  f"{g['p50_ms']:7.0f} {g['p95_ms']:7.0f} {g['ocr_share']:5.2f}")


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
    ap.add_argument("--before-after", action="store_true",
                    help="text passages, figures, tables and drawings, before vs after "
                    "screenshot routing (results/image_query_before_after.json)")
    ap.add_argument("--quick", action="store_true",
                    help="40 crops (a smoke run); with --before-after: 5 PDFs (~700 pages), "
                    "fewer crops")
    ap.add_argument("--before", type=Path, default=None,
                    help="with --before-after or --drawings: a checkout of older code "
                    "(e.g. `git archive` of a commit) evaluated on the same store and crops")
    ap.add_argument("--defaults-only", action="store_true",
                    help="with --before-after: only the lite defaults (no reference settings)")
    ap.add_argument("--drawings", action="store_true",
                    help="crops of vector-drawing clusters found without ragnest's layout "
                         "(default corpus: the gnuplot and asymptote manuals)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.before_after:
        return before_after_main(args)
    if args.drawings:
        files = args.docs or [p for p in EXTRA[:2] if p.is_file()]
        if not files:
            raise SystemExit("no PDFs: apt-get install asymptote-doc gnuplot-doc")
        with tempfile.TemporaryDirectory() as tmp:
            crop_dir = Path(tmp) / "crops"
            crop_dir.mkdir()
            result = run_drawings(files, args.crops, args.crop_dpi, args.min_side,
                                  Path(tmp) / "store", crop_dir, args.jitter, args.before)
        print_table(result)
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / "image_query_drawings.json"
        out.write_text(json.dumps(result, indent=2))
        print(f"\nwrote {out}")
        return 0
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


@pytest.mark.benchmark
def test_screenshot_routing_before_after(tmp_path):
    files = [f for f in QUICK_CORPUS if f.is_file()]
    crop_dir = tmp_path / "crops"
    crop_dir.mkdir()
    result = run_before_after(files, 20, 20, 0, 110, 40.0, tmp_path / "store", crop_dir)
    before = result["settings"]["before (OCR always, weights 1/1/3)"]
    after = result["settings"]["after (lite defaults)"]
    assert after["text passage"]["top1"] >= 0.9 > before["text passage"]["top1"]
    assert after["figure"]["top5"] >= before["figure"]["top5"] - 0.05
    assert after["figure"]["p50_ms"] < before["figure"]["p50_ms"]


def before_after_main(args: argparse.Namespace) -> int:
    quick = [f for f in QUICK_CORPUS if f.is_file()]
    full = [EXAMPLES / "nimbus3_handbook.pdf", EXAMPLES / "lab_safety_guide.pdf",
            *default_corpus()]
    files = args.docs or (quick if args.quick else full)
    n_text, n_figure, n_drawing = (40, 40, 15) if args.quick else (100, 100, 40)
    with tempfile.TemporaryDirectory() as tmp:
        crop_dir = Path(tmp) / "crops"
        crop_dir.mkdir()
        result = run_before_after(files, n_text, n_figure, n_drawing, args.crop_dpi,
                                  args.min_side, Path(tmp) / "store", crop_dir,
                                  jitter=args.jitter, before=args.before,
                                  defaults_only=args.defaults_only)
    print_before_after(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "image_query_before_after.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
