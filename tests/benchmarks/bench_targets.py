"""The offline profile's speed targets, all measured in one run and set side by side.

One command runs each section's own benchmark on its corpus and prints the target table
(target, what this tree measures, met or not); every section's full result goes in the
JSON too:

* retrieval (``bench_speed.py``): the R manuals (refman left out, ~680 pages), known-item
  queries; ragnest vs ``bm25s`` and LangChain + ``QdrantVectorStore``; the cold CLI;
* natural questions (``bench_answers.py``): the answer cites a gold page at least as often
  as retrieval ranks one first, and never abstains when it did;
* ingest (``bench_ingest.py --quick``): pages/s on one core and with ``-w 2``, against raw
  PyMuPDF ``get_text()`` + render, on the figure manuals (gnuplot + asymptote) and R-intro;
* screenshots (``bench_image_query.py``): crops of text passages, figures, tables (the
  R, asymptote, gnuplot and octave manuals) and of vector drawings found by PyMuPDF alone;
* 100k synthetic pages (``bench_store_funnel.py``), only with ``--funnel-pages`` (its
  ingest alone takes minutes).

``--before DIR`` (a ``git archive`` of older code) adds that code's rows to each section
that has them, and the "not lower than before" row. ``--quick`` runs smaller corpora
(figures indicative only: the targets are set on the full ones)::

    python tests/benchmarks/bench_targets.py --before /tmp/old      # ~20 min on 2 CPUs
    python tests/benchmarks/bench_targets.py --quick                # ~5 min

Writes tests/benchmarks/results/targets.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bench_answers
import bench_image_query as image
import bench_ingest
import bench_speed
from _bench import RESULTS, pytest  # (each bench module imports it first: repo on sys.path)

#: (name, target, measured, met): one line of the table; ``met`` None: not measured.
Line = tuple[str, str, str, "bool | None"]


def measure(quick: bool, before: Sequence[Path], funnel_pages: int,
            workdir: Path | None = None) -> dict[str, Any]:
    """Every section's result (see the module docs)."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp_name:
        tmp = Path(tmp_name)
        out["retrieval"] = bench_speed.run(bench_speed.DEFAULT_DOCS, quick, 60 if quick else 300,
                                           tmp / "r", list(before), 1 if quick else 3)
        out["answers"] = bench_answers.run(bench_answers.DEFAULT_DOCS, tmp / "r")
        out["ingest"] = bench_ingest.run(bench_ingest.parse_args(
            ["--quick", "--repeats", "1" if quick else "3", "--workers", "2,2:spawn",
             *[f"--before={b}" for b in before]]))
        crops = tmp / "crops"
        crops.mkdir()
        files = ([f for f in image.QUICK_CORPUS if f.is_file()] if quick
                 else [image.EXAMPLES / "nimbus3_handbook.pdf",
                       image.EXAMPLES / "lab_safety_guide.pdf", *image.default_corpus()])
        n = (40, 40, 15) if quick else (100, 100, 40)
        out["screenshots"] = image.run_before_after(
            files, *n, 110, 40.0, tmp / "s", crops, before=before[0] if before else None,
            defaults_only=True)
        drawings = [p for p in image.EXTRA[:2] if p.is_file()]
        if drawings:
            (tmp / "dcrops").mkdir()
            out["drawings"] = image.run_drawings(drawings, 30 if quick else 80, 110, 40.0,
                                                 tmp / "d", tmp / "dcrops")
        if funnel_pages:
            import bench_store_funnel

            out["funnel"] = bench_store_funnel.run(funnel_pages, skip_memory=True,
                                                   hnsw_full_scan_kb=0, workdir=tmp)
    out["targets"] = targets(out)
    return out


def _row(rows: list[dict[str, Any]], group: str, kind: str, workers: str | None = None,
         tree: str = "this tree") -> dict[str, Any]:
    return next((r for r in rows if r["group"] == group and r["kind"] == kind
                 and r["tree"] == tree and r.get("workers") == workers), {})


def targets(result: dict[str, Any]) -> list[Line]:
    """The target table of ``result`` (see :func:`measure`)."""
    lines: list[Line] = []
    rows = result["retrieval"]["rows"]
    lite, bm25 = rows["ragnest lite"], rows["bm25s"]
    lines += [
        ("text retrieve p50", "<= 2 ms", f"{lite['p50_ms']:.2f} ms", lite["p50_ms"] <= 2.0),
        ("  vs bm25s", "<= 7x", f"{lite['p50_ms'] / bm25['p50_ms']:.0f}x",
         lite["p50_ms"] <= 7 * bm25["p50_ms"]),
        ("text retrieve p95", "<= 5 ms", f"{lite['p95_ms']:.2f} ms", lite["p95_ms"] <= 5.0),
    ]
    old = next((r for name, r in rows.items() if name.startswith("before") and "top1" in r), None)
    lines.append(("top-1 / top-5", "not lower than before",
                  f"{lite['top1']:.3f} / {lite['top5']:.3f}"
                  + (f" (before {old['top1']:.3f} / {old['top5']:.3f})" if old else ""),
                  None if old is None else
                  lite["top1"] >= old["top1"] and lite["top5"] >= old["top5"]))
    funnel = result.get("funnel", {}).get("rows", {}).get("edge")
    lines.append((f"{result['funnel']['pages']:,} synthetic pages p50" if funnel
                  else "100k synthetic pages p50", "<= 15 ms",
                  f"{funnel['median_ms']:.1f} ms" if funnel else "not run (--funnel-pages)",
                  funnel["median_ms"] <= 15.0 if funnel else None))
    ingest = result["ingest"]["rows"]
    for group in ("figure manuals", "R manuals (text)"):
        one, two = _row(ingest, group, "ingest", "1"), _row(ingest, group, "ingest", "2")
        if not one:
            continue
        lines.append((f"ingest, one core: {group}", ">= 0.5x raw text+render",
                      f"{one['vs_render']:.2f}x", one["vs_render"] >= 0.5))
        if two:
            speedup = two["pages_per_s"] / one["pages_per_s"]
            lines.append((f"  -w 2 vs -w 1: {group}", ">= 1.7x", f"{speedup:.2f}x",
                          speedup >= 1.7))
    shots = result["screenshots"]["settings"]["after (lite defaults)"]
    figure, text = shots.get("figure", {}), shots.get("text passage", {})
    lines += [
        ("screenshots of figures: top-5", ">= 0.95", f"{figure.get('top5', 0):.3f}",
         figure.get("top5", 0) >= 0.95),
        ("screenshots of text: top-1", ">= 0.90", f"{text.get('top1', 0):.3f}",
         text.get("top1", 0) >= 0.90),
    ]
    drawn = result.get("drawings", {}).get("retrievers", {}).get("lite default (all fused)")
    if drawn:
        every = next(r for r in drawn["rows"] if r["kind"] == "all")
        lines.append(("screenshots of vector drawings: top-5", ">= 0.95",
                      f"{every['top5']:.3f}", every["top5"] >= 0.95))
    p50 = {k: v["p50_ms"] for k, v in shots.items() if isinstance(v, dict) and k != "all"}
    slowest = max(p50, key=p50.__getitem__)
    lines.append(("screenshot p50, slowest kind", "<= 150 ms",
                  f"{p50[slowest]:.0f} ms ({slowest})", p50[slowest] <= 150))
    cli = result["retrieval"]["cold_cli"]
    if "wall_s" in cli:
        lines.append(("cold `ragnest query`", "<= 1.5 s", f"{cli['wall_s']:.2f} s",
                      cli["wall_s"] <= 1.5))
    answers = result["answers"]
    after = answers["rows"][-1]
    lines += [
        ("answers cite a gold page", ">= retrieval top-1",
         f"{after['cites_gold']:.3f} vs {answers['retrieval_top1']:.3f}",
         after["cites_gold"] >= answers["retrieval_top1"]),
        ("  abstains with gold ranked first", "0", str(after["abstains_on_gold_top1"]),
         after["abstains_on_gold_top1"] == 0),
    ]
    return lines


def print_targets(lines: Sequence[Line]) -> None:
    print(f"\n{'target':40} {'wanted':24} {'measured':32} met")
    for name, wanted, got, met in lines:
        print(f"{name:40} {wanted:24} {got:32} {'-' if met is None else 'yes' if met else 'NO'}")


if pytest is not None:

    @pytest.mark.benchmark
    def test_target_table_from_a_quick_run(tmp_path: Path) -> None:
        if not bench_speed.DEFAULT_DOCS.is_dir():
            pytest.skip("R manuals not installed (apt-get install r-doc-pdf)")
        pytest.importorskip("bm25s")
        pytest.importorskip("langchain_qdrant")
        lines = measure(True, [], 0, tmp_path)["targets"]
        names = [name for name, *_ in lines]
        assert names[0] == "text retrieve p50" and "cold `ragnest query`" in names
        assert all(met in (True, False, None) for *_, met in lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller corpora, fewer queries")
    ap.add_argument("--before", type=Path, action="append", default=[],
                    help="an older checkout to compare with (repeatable)")
    ap.add_argument("--funnel-pages", type=int, default=0,
                    help="also the synthetic funnel bench at this many pages (e.g. 100000)")
    ap.add_argument("--workdir", type=Path, default=None, help="where the temporary stores go")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    result = measure(args.quick, args.before, args.funnel_pages, args.workdir)
    bench_speed.print_table(result["retrieval"])
    bench_answers.print_table(result["answers"])
    bench_ingest.print_table(result["ingest"])
    image.print_before_after(result["screenshots"])
    if "drawings" in result:
        image.print_table(result["drawings"])
    print_targets(result["targets"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("targets_quick.json" if args.quick else "targets.json")
    slim = {**result, "ingest": {**result["ingest"], "rows": [
        {k: v for k, v in r.items() if k != "per_page"} for r in result["ingest"]["rows"]]}}
    out.write_text(json.dumps(slim, indent=2, default=str))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
