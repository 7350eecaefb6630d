"""Vision-language reranking and generation: throughput and visual tokens, side by side.

1. Rerank throughput on a tiny random Qwen2-VL: candidates per second scored in batches of
   ``--batch`` (one left-padded forward pass each) against one by one; the ratio is what
   batching buys (absolute numbers on a tiny CPU model mean little).
2. Visual tokens per page at budgets 256 / 768 / 1800 (the ``resolution`` plugin, one page
   per request) for the real checkpoints' pixel grids: Qwen2-VL / Qwen2.5-VL (28 px cells),
   Qwen3-VL (32 px), SmolVLM (512 px tiles of 64 tokens).
3. Visual tokens and prompt bytes per answer (5 pages) with no plugin (the processor's
   default size, as Qwen2-VL-2B-Instruct ships it: up to 12.8 Mpx), ``resolution``
   (3072 tokens, floor 256, cap 1280), ``dedupe``, and both; on the sample handbook and on
   a real manual (R-intro, Debian's r-doc-pdf); ratio to no plugin.

    python tests/benchmarks/bench_vlm.py            # writes tests/benchmarks/results/vlm.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _bench import RESULTS, pytest  # first: puts the repo on sys.path

from ragnest.types import Hit, Query, Source

os.environ.setdefault("HF_HUB_OFFLINE", "1")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "docs"
MANUAL = Path("/usr/share/R/doc/manual/R-intro.pdf")
QUERY = Query(text="How often should the machine be descaled, and with what?")
BUDGETS = (256, 768, 1800)
#: The real checkpoints' grids (cell side, tokens per cell, Idefics3's global tile).
LAYOUTS = {
    "Qwen2-VL / Qwen2.5-VL": {"family": "qwen2_vl", "unit": 28,
                              "default_pixels": (3136, 12845056)},
    "Qwen3-VL": {"family": "qwen3_vl", "unit": 32, "default_pixels": (65536, 16777216)},
    "SmolVLM-500M": {"family": "idefics3", "unit": 512, "tokens_per_unit": 64,
                     "global_tile": True, "default_pixels": (2048, 0)},
}
CONFIGS = {
    "none": [],
    "resolution": [{"type": "resolution", "budget": 3072, "floor": 256, "cap": 1280}],
    "dedupe": [{"type": "dedupe"}],
    "resolution+dedupe": [{"type": "resolution", "budget": 3072, "floor": 256, "cap": 1280},
                          {"type": "dedupe"}],
}


def pages(path: Path, n: int) -> list:
    from ragnest.parsers.pdf import PdfParser

    chunks = []
    for chunk in PdfParser(ocr="never").parse(Source.from_path(path)):
        chunks.append(chunk)
        if len(chunks) >= n:
            break
    return chunks


def rerank_throughput(model: str, chunks: list, batch: int, repeats: int) -> dict:
    from ragnest.rerankers.vlm import VlmReranker

    out = {}
    shared = None
    for name, size in (("batched", batch), ("one_by_one", 1)):
        r = VlmReranker(model=model, device="cpu", batch_size=size, max_pixels=256 * 28 * 28,
                        max_k=len(chunks), min_k=0)
        if shared is not None:
            r._vlm, r._ids = shared
        r.warm_up()
        shared = (r._vlm, r._ids)
        r.score(QUERY, chunks[:2])  # warm the kernels
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            r.score(QUERY, chunks)
            times.append(time.perf_counter() - t0)
        best = min(times)
        out[name] = {"batch_size": size, "seconds": round(best, 3),
                     "candidates_per_s": round(len(chunks) / best, 2)}
    out["ratio"] = round(out["batched"]["candidates_per_s"] / out["one_by_one"]["candidates_per_s"],
                         2)
    out["candidates"] = len(chunks)
    return out


def tokens_per_page(chunks: list) -> dict:
    from ragnest._hf import load_image
    from ragnest._hf.vlm import VisionLayout
    from ragnest.generators.compression import PageImage, Resolution

    images = [load_image(c.image, max_pixels=4_000_000, min_dpi=144) for c in chunks]
    out: dict = {}
    for name, spec in LAYOUTS.items():
        layout = VisionLayout(**spec)
        rows = {}
        for budget in BUDGETS:
            tokens, sizes = [], []
            for im in images:
                page = PageImage(index=0, source=im)
                page.resize(im.size)
                (fitted,) = Resolution(budget=budget, floor=1, cap=budget).apply([page], layout)
                tokens.append(layout.tokens(*fitted.size))
                sizes.append(fitted.size)
            rows[str(budget)] = {"tokens_per_page": round(statistics.mean(tokens), 1),
                                 "size": list(sizes[0])}
        rows["default"] = round(statistics.mean(
            layout.tokens(*layout.default_size(*im.size)) for im in images), 1)
        out[name] = rows
    return out


def per_answer(model: str, corpora: dict[str, list]) -> dict:
    from ragnest.generators.vlm import VlmGenerator

    out: dict = {}
    shared = None
    for corpus, chunks in corpora.items():
        probs = [0.95, 0.9, 0.8, 0.7, 0.6]
        hits = [Hit(chunk=c, score=p, scores_by_stage={"rerank_probability": p})
                for c, p in zip(chunks, probs)]
        rows = {}
        for name, compression in CONFIGS.items():
            g = VlmGenerator(model=model, device="cpu", compression=compression, max_pages=5)
            if shared is not None:
                g._vlm = shared
            g.warm_up()
            shared = g._vlm
            real = LAYOUTS["Qwen2-VL / Qwen2.5-VL"]
            g._vlm.layout = dataclasses.replace(g._vlm.layout,
                                                default_pixels=real["default_pixels"])
            t0 = time.perf_counter()
            prep = g.prepare(QUERY, hits)
            u = prep.usage
            rows[name] = {"visual_tokens": u["visual_tokens"],
                          "visual_tokens_before": u["visual_tokens_before"],
                          "prompt_tokens": int(prep.batch["input_ids"].shape[1]),
                          "prompt_bytes": u["prompt_bytes"], "pages": len(u["pages"]),
                          "prepare_s": round(time.perf_counter() - t0, 2)}
        base = rows["none"]
        for row in rows.values():
            row["tokens_ratio"] = round(row["visual_tokens"] / base["visual_tokens"], 3)
            row["bytes_ratio"] = round(row["prompt_bytes"] / base["prompt_bytes"], 3)
        out[corpus] = rows
    return out


def run(n_pages: int, batch: int, repeats: int, tmp: Path) -> dict:
    from ragnest.testing.tiny_models import build_qwen2_vl

    model = str(build_qwen2_vl(tmp / "tiny-qwen2-vl"))
    corpora = {"handbook": pages(EXAMPLES / "nimbus3_handbook.pdf", n_pages)}
    if MANUAL.is_file():
        corpora["R-intro"] = pages(MANUAL, n_pages)
    candidates = [c for chunks in corpora.values() for c in chunks]
    return {
        "rerank": rerank_throughput(model, candidates, batch, repeats),
        "tokens_per_page": {k: tokens_per_page(v[:5]) for k, v in corpora.items()},
        "per_answer": per_answer(model, {k: v[:5] for k, v in corpora.items()}),
    }


def print_table(result: dict) -> None:
    r = result["rerank"]
    print(f"rerank ({r['candidates']} candidates, tiny Qwen2-VL, CPU): "
          f"batched {r['batched']['candidates_per_s']}/s (batch {r['batched']['batch_size']}), "
          f"one by one {r['one_by_one']['candidates_per_s']}/s, ratio {r['ratio']}x")
    for corpus, layouts in result["tokens_per_page"].items():
        print(f"\nvisual tokens per page, {corpus}  (budget: tokens [size])")
        for name, rows in layouts.items():
            cells = "  ".join(f"{b}: {rows[str(b)]['tokens_per_page']:.0f} {rows[str(b)]['size']}"
                              for b in BUDGETS)
            print(f"  {name:24s} {cells}  default: {rows['default']:.0f}")
    for corpus, rows in result["per_answer"].items():
        print(f"\nper answer (5 pages), {corpus}")
        print(f"  {'plugins':18s} {'visual tok':>10s} {'ratio':>6s} {'prompt MB':>10s} "
              f"{'ratio':>6s} {'prompt tok':>10s}")
        for name, row in rows.items():
            print(f"  {name:18s} {row['visual_tokens']:>10d} {row['tokens_ratio']:>6.3f} "
                  f"{row['prompt_bytes'] / 1e6:>10.2f} {row['bytes_ratio']:>6.3f} "
                  f"{row['prompt_tokens']:>10d}")


@pytest.mark.benchmark
def test_vlm_benchmark(tmp_path):
    result = run(4, 4, 1, tmp_path)
    assert result["rerank"]["batched"]["candidates_per_s"] > 0
    for rows in result["per_answer"].values():
        assert rows["resolution"]["visual_tokens"] <= 3072
        assert rows["resolution+dedupe"]["visual_tokens"] <= rows["resolution"]["visual_tokens"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=8, help="pages per document")
    ap.add_argument("--batch", type=int, default=8, help="reranker batch size")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.pages, args.batch, args.repeats, Path(tmp))
    print_table(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "vlm.json").write_text(json.dumps(result, indent=2))
    print(f"\nwrote {RESULTS / 'vlm.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
