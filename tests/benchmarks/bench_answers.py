"""Extractive answers to natural questions: do they keep what retrieval found?

The questions (``data/natural_questions.jsonl``) were written by reading pages of the R
manuals (Debian ``r-doc-pdf``: R-intro, R-admin, R-data, R-exts, R-lang, R-ints, R-FAQ;
about 680 pages, refman left out), in a user's own words: no run of three content words
is shared with the gold page (``tests/generators/test_natural_questions.py`` checks it). Each has a gold page (file + page; a few have a second page that answers it
too) and a short gold answer; the ``un*`` questions have no answer in the manuals and
calibrate abstention.

One run, one store (the lite pipeline), one retrieval per question; every generator
answers from the same hits:

* ``before``: the ExtractiveGenerator as it was (``_extractive_before.py``, verbatim);
* ``after, lexical only``: today's generator with the lite settings but no embedder;
* ``after (lite)``: the lite pipeline's generator, bound to its dense embedder.

Columns (ranking, percentiles and ``cite acc`` / ``F1`` from ``ragnest.eval``): retrieval
top-1/top-5 (a gold page ranked first / in the top 5: Success@1/@5); ``cites gold``:
the answer's first citation is a gold page (``any``: any citation is); ``abstains``; the
number of abstentions on questions whose gold page retrieval ranked first
(``abst@gold1``); ``covers``: every content word of the gold answer is in the answer;
``neg abst``: abstentions on the unanswerable questions; ``cite acc``: the share of
citations on a gold page; ``F1``: token F1 with the gold answer (an abstention scores 0);
generate p50 in ms. The
calibration section lists the evidence (``answer.usage["evidence"]``) the abstention
rule compares with its threshold, per group, and the highest threshold that keeps every
gold-ranked-first question answered.

    python tests/benchmarks/bench_answers.py                # R manuals, ~1 minute
    python tests/benchmarks/bench_answers.py --store DIR    # keep / reuse the store

Writes tests/benchmarks/results/answers.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _bench import RESULTS, pytest  # first: puts the repo on sys.path
from _extractive_before import ExtractiveGenerator as BeforeGenerator

from ragnest import Pipeline, Query
from ragnest.collection import bind_embedder
from ragnest.eval import (
    answer_scores,
    mean_answer_scores,
    page_unit,
    percentiles,
    ranking_metrics,
    ranking_run,
)
from tests._natural_questions import R_MANUALS, covers, load_questions

DEFAULT_DOCS = R_MANUALS


def _page(hit_or_citation: Any) -> tuple[str, int | None]:
    source = getattr(hit_or_citation, "source", None) or hit_or_citation.chunk.source
    page = hit_or_citation.page if hasattr(hit_or_citation, "page") else hit_or_citation.chunk.page
    return Path(source).name, page


def _unit(name: str, page: int | None) -> str:
    return page_unit(name, page)


def evaluate(name: str, generator: Any, cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Answer every case with ``generator`` and score the answers."""
    answerable = [c for c in cases if c["gold"]]
    negatives = [c for c in cases if not c["gold"]]
    stats = {"cites_gold": 0, "cites_gold_any": 0, "abstains": 0, "abstains_gold_top1": 0,
             "covers": 0, "neg_abstains": 0}
    lat: list[float] = []
    per_question, scored = [], []
    for c in cases:
        t0 = time.perf_counter()
        answer = generator.generate(Query(text=c["question"]), c["hits"])
        lat.append((time.perf_counter() - t0) * 1000)
        cited = [_page(x) for x in answer.citations]
        row = {"id": c["id"], "found": answer.found, "cited": cited,
               "evidence": answer.usage.get("evidence"), "text": answer.text}
        per_question.append(row)
        if not c["gold"]:
            stats["neg_abstains"] += not answer.found
            continue
        gold = c["gold_pages"]
        # ragnest.eval's answer metrics: citation accuracy, token F1, abstention
        scored.append(answer_scores(answer, gold={_unit(*g): 1 for g in gold},
                                    unit=lambda source, page: _unit(Path(source).name, page),
                                    answers=[c["answer"]]))
        row["cites_gold"] = bool(cited) and cited[0] in gold
        stats["cites_gold"] += row["cites_gold"]
        stats["cites_gold_any"] += any(p in gold for p in cited)
        stats["abstains"] += not answer.found
        stats["abstains_gold_top1"] += (not answer.found) and c["rank"] == 0
        row["covers"] = answer.found and covers(answer.text, c["answer"])
        stats["covers"] += row["covers"]
    n = len(answerable)
    return {
        "generator": name,
        "questions": n,
        "cites_gold": stats["cites_gold"] / n,
        "cites_gold_any": stats["cites_gold_any"] / n,
        "abstains": stats["abstains"] / n,
        "abstains_on_gold_top1": stats["abstains_gold_top1"],
        "covers": stats["covers"] / n,
        "negatives": len(negatives),
        "negatives_abstained": stats["neg_abstains"] / max(1, len(negatives)),
        "generate_p50_ms": percentiles(lat)["p50"],
        "metrics": mean_answer_scores(scored),
        "per_question": per_question,
    }


def calibrate(generator: Any, cases: list[dict[str, Any]], field: str) -> dict[str, Any]:
    """The evidence of every answer with the threshold off, per group, and the highest
    threshold that keeps every gold-ranked-first question answered."""
    loose = dataclasses.replace(generator, **{field: 0.0})
    if getattr(generator, "_embedder", None) is not None:
        loose.bind_embedder(generator._embedder)
    groups: dict[str, list[float]] = {"gold_top1": [], "other_answerable": [], "unanswerable": []}
    for c in cases:
        answer = loose.generate(Query(text=c["question"]), c["hits"])
        ev = float(answer.usage.get("evidence", 0.0))
        key = "unanswerable" if not c["gold"] else "gold_top1" if c["rank"] == 0 else "other_answerable"
        groups[key].append(ev)
    summary = {k: {"n": len(v), "min": min(v), "median": statistics.median(v), "max": max(v)}
               for k, v in groups.items() if v}
    floor = min(groups["gold_top1"]) if groups["gold_top1"] else 0.0
    below = [v for v in groups["unanswerable"] if v < floor]
    configured = getattr(generator, field)
    return {
        "threshold": field,
        "configured": configured,
        "gold_top1_min": floor,
        # the widest gap a threshold can sit in: between the highest unanswerable
        # question's evidence under the gold-ranked-first floor, and that floor
        "gap": [max(below) if below else 0.0, floor],
        "unanswerable_below_configured": sum(v < configured for v in groups["unanswerable"]),
        "unanswerable_below_gold_top1_min": sum(v < floor for v in groups["unanswerable"]),
        "groups": summary,
    }


def run(docs: Path, store_dir: Path, k: int = 5) -> dict[str, Any]:
    files = sorted(p for p in docs.glob("*.pdf") if "refman" not in p.name)
    if not files:
        raise SystemExit(f"no PDFs in {docs}")
    questions = load_questions()
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store_dir)}) as rag:
        t0 = time.perf_counter()
        report = rag.ingest([str(f) for f in files], progress=False)
        ingest_s = time.perf_counter() - t0
        cases = []
        for q in questions:
            hits = list(rag.retrieve(q["question"], k=k))
            gold = [(g["file"], g["page"]) for g in q["gold"]]
            ranks = [i for i, h in enumerate(hits) if _page(h) in gold]
            cases.append({**q, "hits": hits, "gold_pages": gold, "rank": ranks[0] if ranks else None})
        after = bind_embedder(rag.generator, rag.embedders)
        lexical = dataclasses.replace(after, embedder=None)
        rows = [
            evaluate("before", BeforeGenerator(), cases),
            evaluate("after, lexical only", lexical, cases),
            evaluate("after (lite)", after, cases),
        ]
        calibration = [calibrate(after, cases, "min_support"),
                       calibrate(lexical, cases, "min_overlap")]
    answerable = [c for c in cases if c["gold"]]
    n = len(answerable)
    qrels = {c["id"]: {_unit(*g): 1 for g in c["gold_pages"]} for c in answerable}
    ranking = ranking_run({c["id"]: [_unit(*_page(h)) for h in c["hits"]] for c in answerable})
    retrieval, _ = ranking_metrics(qrels, ranking, ["Success@1", "Success@5"])
    return {
        "docs": [f.name for f in files],
        "pages": report.pages,
        "ingest_seconds": round(ingest_s, 1),
        "questions": n,
        "unanswerable": len(cases) - n,
        "k": k,
        "retrieval_top1": retrieval["Success@1"],  # a gold page ranked first
        "retrieval_top5": retrieval["Success@5"],
        "generator_params": dataclasses.asdict(after),
        "rows": rows,
        "calibration": calibration,
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"\n{len(result['docs'])} PDFs, {result['pages']} pages; {result['questions']} natural "
          f"questions (+{result['unanswerable']} unanswerable); retrieval top-1 "
          f"{result['retrieval_top1']:.3f}, top-5 {result['retrieval_top5']:.3f} (k={result['k']})")
    print(f"{'generator':22} {'cites gold':>10} {'any':>6} {'abstains':>9} {'abst@gold1':>10} "
          f"{'covers':>7} {'neg abst':>9} {'cite acc':>8} {'F1':>6} {'p50 ms':>7}")
    for r in result["rows"]:
        m = r["metrics"]
        print(f"{r['generator']:22} {r['cites_gold']:10.3f} {r['cites_gold_any']:6.3f} "
              f"{r['abstains']:9.3f} {r['abstains_on_gold_top1']:10d} {r['covers']:7.3f} "
              f"{r['negatives_abstained']:9.3f} {m.get('citation_accuracy', 0.0):8.3f} "
              f"{m.get('token_f1', 0.0):6.3f} {r['generate_p50_ms']:7.1f}")
    for cal in result["calibration"]:
        groups = ", ".join(f"{k} n={g['n']} [{g['min']:.3f} .. {g['median']:.3f} .. {g['max']:.3f}]"
                           for k, g in cal["groups"].items())
        print(f"\nevidence vs {cal['threshold']} (configured {cal['configured']}): {groups}")
        lo, hi = cal["gap"]
        print(f"  every gold-ranked-first question stays answered for thresholds <= {hi:.3f} "
              f"(next unanswerable below: {lo:.3f}); unanswerable below the configured threshold: "
              f"{cal['unanswerable_below_configured']}/{cal['groups']['unanswerable']['n']}")


if pytest is not None:

    @pytest.mark.benchmark
    def test_natural_questions_r_manuals(tmp_path):
        if not DEFAULT_DOCS.is_dir():
            pytest.skip("R manuals not installed (apt-get install r-doc-pdf)")
        result = run(DEFAULT_DOCS, tmp_path / "store")
        after = result["rows"][-1]
        assert after["cites_gold"] >= result["retrieval_top1"]
        assert after["abstains_on_gold_top1"] == 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    ap.add_argument("--store", type=Path, default=None, help="keep (or reuse) the store here")
    ap.add_argument("--k", type=int, default=5, help="hits retrieved per question")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.docs, args.store or Path(tmp) / "store", args.k)
    print_table(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "answers.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
