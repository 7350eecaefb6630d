"""Benchmark: the Ray Data ingest vs the local ingest on the same corpus, this machine.

The lite pipeline ingests R manuals (``/usr/share/R/doc/manual``; ``--quick``: three
small ones) into a fresh embedded store, five ways in one run:

* ``local`` with 1 and 2 parser processes (``run_ingest``, what ``ragnest ingest -w N`` does);
* ``ray`` with 1 and 2 workers (parse tasks at a time = embedding actors = N) on a local
  Ray instance started once; the first Ray job's fixed cost (``ray.init`` and a trivial
  job) is measured on its own and not counted in the runs.

For each: wall seconds (plan + job + index build), pages/s, the ratio to ``local`` with 1
process, and where the time goes: worker-seconds in parse, embed and write summed over
the documents (the Ray stages report them; the local path's split is measured by running
the same stage functions serially). Both Ray runs must store exactly the chunks of the
local run (checked by count). A second table is the capacity arithmetic of the issue
(ColQwen2-class pages/s per GPU actor from published throughput, actors and Qdrant nodes
for 100 M pages, bytes per page per ladder level, RAM/disk per node compact vs full);
its assumptions are the constants below.

Run::

    python tests/benchmarks/bench_ray.py [--quick]

It prints the tables and writes ``tests/benchmarks/results/ray.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _bench import HERE, RESULTS, pytest  # first: puts the repo on sys.path

__all__ = ["capacity", "main", "run"]

R_MANUALS = Path("/usr/share/R/doc/manual")
FULL = ["R-FAQ", "R-admin", "R-data", "R-exts", "R-intro", "R-ints", "R-lang"]  # 677 pages
QUICK = ["R-FAQ", "R-data", "R-lang"]  # 162 pages

# ---- capacity assumptions (change them and re-run) ---------------------------------
#: ColPali paper (Faysse et al., 2024): offline indexing 0.39 s per page on one NVIDIA L4.
#: ColQwen2 (Qwen2-VL-2B, <= 768 visual tokens) is the same class of model and cost.
L4_PAGES_S = 1 / 0.39
#: An H100 has ~8x the L4's dense bf16 FLOPS; assume 6x the pages/s (pre/post-processing,
#: image decoding and batching do not scale with FLOPS).
H100_OVER_L4 = 6.0
PAGES = 100_000_000
DAYS = 1.0  # the ingest should finish in this many days
FINE_VECTORS = 780  # ColQwen2 rows per page at 768 visual tokens (+ prompt tokens)
PAYLOAD_B = 3_000  # text layer + metadata per page (R manuals: ~2.5 KB of text a page)
BM25_B = 2_400  # ~300 distinct terms x (u32 index + f32 value)
HNSW_B = 16 * 2 * 4 + 64  # level-0 links (m=16 -> 32 x u32) + id tracking, coarse level only
REPLICAS = 2
NODE_DISK_TB = 4.0  # NVMe per Qdrant node, kept at most half full (segment rebuilds)
NODE_RAM_GB = 128
BYTES = {"float32": 4, "float16": 2, "turbo8": 1, "turbo4": 0.5}
LADDERS = {  # configs/models/colqwen2-v1.0.yaml and colqwen2-v1.0-compact.yaml
    "full": [("coarse", 1, "float32", None), ("mid", 32, "float16", None),
             ("fine", FINE_VECTORS, "float16", None)],
    "compact": [("coarse", 1, "float16", "binary"), ("mid", 24, "turbo4", None),
                ("fine", FINE_VECTORS // 3, "turbo8", None)],
}


def capacity() -> dict[str, Any]:
    """The arithmetic of the issue, from the constants above."""
    h100 = L4_PAGES_S * H100_OVER_L4
    seconds = DAYS * 86_400
    out: dict[str, Any] = {
        "pages_s_per_actor": {"L4": round(L4_PAGES_S, 2), "H100": round(h100, 1)},
        "gpu_hours": {"L4": round(PAGES / L4_PAGES_S / 3600), "H100": round(PAGES / h100 / 3600)},
        "actors_for_days": {"days": DAYS, "L4": int(-(-PAGES // (L4_PAGES_S * seconds))),
                            "H100": int(-(-PAGES // (h100 * seconds)))},
        "write_rate_pages_s": round(PAGES / seconds),
        "ladders": {},
    }
    for preset, levels in LADDERS.items():
        per_level, ram = {}, HNSW_B + 64  # graph + payload-index entries per page
        for name, vectors, dtype, quant in levels:
            size = vectors * 128 * BYTES[dtype]
            per_level[name] = int(size)
            if name == "coarse":  # the first stage: in RAM (its quantized copy, if any)
                ram += 128 // 8 if quant == "binary" else int(size)
        per_level.update(payload=PAYLOAD_B, bm25=BM25_B, hnsw=HNSW_B)
        page = sum(per_level.values())
        disk_tb = page * PAGES * REPLICAS / 1e12
        nodes_disk = int(-(-disk_tb // (NODE_DISK_TB / 2)))
        ram_gb = ram * PAGES * REPLICAS / 1e9
        nodes = max(nodes_disk, int(-(-ram_gb // (NODE_RAM_GB / 2))), 3)
        out["ladders"][preset] = {
            "bytes_per_page": per_level, "total_bytes_per_page": page,
            "disk_tb_with_replicas": round(disk_tb, 1), "ram_gb_hot_with_replicas": round(ram_gb),
            "qdrant_nodes": nodes, "disk_tb_per_node": round(disk_tb / nodes, 2),
            "ram_gb_hot_per_node": round(ram_gb / nodes, 1)}
    return out


def _corpus(names: list[str], folder: Path) -> tuple[Path, int]:
    import pymupdf

    folder.mkdir(parents=True)
    pages = 0
    for name in names:
        src = R_MANUALS / f"{name}.pdf"
        shutil.copy(src, folder / src.name)
        with pymupdf.open(src) as doc:
            pages += doc.page_count
    return folder, pages


def _local(corpus: Path, store: Path, workers: int) -> dict[str, Any]:
    from ragnest import Pipeline

    start = time.perf_counter()
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}) as rag:
        # no warm_up(): components load on first need, as in `ragnest ingest` and the Ray job
        report = rag.ingest([str(corpus)], workers=workers, progress=False)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "pages": report.pages, "chunks": report.chunks_added}


def _staged(corpus: Path, store: Path) -> dict[str, float]:
    """The local path's work, stage by stage, serially (the same stage functions)."""
    from ragnest import Pipeline
    from ragnest.distributed.stages import embed_task, parse_task, plan_tasks
    from ragnest.distributed.write import write_task
    from ragnest.ingest.report import IngestReport

    split = {"plan_s": 0.0, "parse_s": 0.0, "embed_s": 0.0, "write_s": 0.0}
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}) as rag:
        rag.warm_up()
        t = time.perf_counter()
        tasks = plan_tasks([str(corpus)], rag.parsers, rag.store, IngestReport())
        split["plan_s"] = time.perf_counter() - t
        for task in tasks:
            task = embed_task(parse_task(task, rag.parsers), rag.embedders)
            split["parse_s"] += task.extra["parse_s"]
            split["embed_s"] += task.extra["embed_s"]
            t = time.perf_counter()
            write_task(rag.store, task)
            split["write_s"] += time.perf_counter() - t
    return split


def _ray(corpus: Path, store: Path, workers: int) -> dict[str, Any]:
    from ragnest.config import load_config
    from ragnest.distributed import RayConfig, _ray, run
    from ragnest.ingest.report import IngestReport

    cfg = load_config("lite", profile="ray", env={"RAGNEST_STORE": str(store)})
    settings = RayConfig(actors=workers, parse_concurrency=workers, embed_batch_size=1,
                         cpus_per_actor=1, progress=False)
    start = time.perf_counter()
    tasks, job = run._prepare([str(corpus)], cfg, IngestReport())
    planned = time.perf_counter()
    rows = _ray.run_job(tasks, cfg, settings, job["specs"], job["identity"], job["states"])
    ran = time.perf_counter()
    run._optimize(cfg, job)
    end = time.perf_counter()
    wall = end - start
    split = {"plan_s": planned - start, "job_s": ran - planned, "index_s": end - ran}
    for key in ("parse_s", "embed_s", "write_s"):
        split[key] = sum(r.get("seconds", {}).get(key, 0.0) for r in rows)
    docs = [r["document"] for r in rows if "document" in r]
    return {"wall_s": wall, "pages": sum(d.pages for d in docs),
            "chunks": sum(d.added for d in docs), "split": split}


def run(quick: bool = False, workers: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    import ray

    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        corpus, pages = _corpus(QUICK if quick else FULL, tmp / "corpus")
        rows: list[dict[str, Any]] = []
        for w in workers:
            rows.append({"engine": "local", "workers": w, **_local(corpus, tmp / f"l{w}", w)})
        staged = _staged(corpus, tmp / "staged")
        rows[0]["split"] = staged
        start = time.perf_counter()
        ray.init(num_cpus=2 * max(workers) + 1, num_gpus=0, include_dashboard=False,
                 log_to_driver=False)
        up = time.perf_counter()
        ray.data.range(4).map_batches(lambda b: b).materialize()
        startup = {"ray_init_s": up - start, "first_job_s": time.perf_counter() - up}
        try:
            for w in workers:
                rows.append({"engine": "ray", "workers": w, **_ray(corpus, tmp / f"r{w}", w)})
        finally:
            ray.shutdown()
        base = rows[0]["wall_s"]
        for r in rows:
            r["pages_s"] = r["pages"] / r["wall_s"]
            r["ratio_to_local_1"] = base / r["wall_s"]
        chunks = {r["chunks"] for r in rows}
        return {"corpus_pages": pages, "runs": rows, "startup": startup,
                "same_chunks": len(chunks) == 1, "capacity": capacity(),
                "load": os.getloadavg(), "cpus": os.cpu_count(), "quick": quick}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _print(result: dict[str, Any]) -> None:
    print(f"\ncorpus: {result['corpus_pages']} pages; load {result['load'][0]:.1f} on "
          f"{result['cpus']} CPUs; Ray fixed cost: init {result['startup']['ray_init_s']:.1f} s "
          f"+ first job {result['startup']['first_job_s']:.1f} s (not in the runs)")
    print(f"{'engine':8} {'w':>2} {'wall s':>8} {'pages/s':>8} {'ratio':>6} "
          f"{'plan':>6} {'parse':>7} {'embed':>7} {'write':>7} {'ray job':>8}  (stage worker-seconds)")
    for r in result["runs"]:
        s = r.get("split", {})
        print(f"{r['engine']:8} {r['workers']:>2} {r['wall_s']:8.1f} {r['pages_s']:8.1f} "
              f"{r['ratio_to_local_1']:6.2f} {s.get('plan_s', 0):6.1f} {s.get('parse_s', 0):7.1f} "
              f"{s.get('embed_s', 0):7.1f} {s.get('write_s', 0):7.1f} {s.get('job_s', 0):8.1f}")
    print(f"same chunks stored by every run: {result['same_chunks']}")
    cap = result["capacity"]
    print(f"\nColQwen2-class: {cap['pages_s_per_actor']} pages/s per actor; "
          f"{cap['gpu_hours']} GPU-hours for {PAGES:,} pages; actors for {DAYS:g} day(s): "
          f"{cap['actors_for_days']}; writes {cap['write_rate_pages_s']} pages/s")
    for preset, c in cap["ladders"].items():
        print(f"{preset:8} bytes/page {c['bytes_per_page']} = {c['total_bytes_per_page']:,}; "
              f"x{REPLICAS} replicas: {c['disk_tb_with_replicas']} TB disk, "
              f"{c['ram_gb_hot_with_replicas']} GB hot RAM -> {c['qdrant_nodes']} nodes "
              f"({c['disk_tb_per_node']} TB, {c['ram_gb_hot_per_node']} GB hot each)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="three small manuals (162 pages)")
    args = ap.parse_args(argv)
    result = run(quick=args.quick)
    _print(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "ray.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {out.relative_to(HERE.parents[1])}")
    return result


if pytest is not None:
    @pytest.mark.benchmark
    def test_capacity_arithmetic() -> None:
        cap = capacity()
        full, compact = cap["ladders"]["full"], cap["ladders"]["compact"]
        assert compact["total_bytes_per_page"] < full["total_bytes_per_page"] / 3
        assert cap["actors_for_days"]["L4"] > cap["actors_for_days"]["H100"] >= 1


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
