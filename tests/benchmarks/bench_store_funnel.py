"""Benchmark: the coarse -> mid -> fine funnel in QdrantStore, per backend.

Synthetic but structured pages (each a mixture of a few of some hundred topics, plus
noise) with the lite profile's ladder: ``coarse`` 64-d dense with HNSW, ``mid`` 256-d
dense (rescoring only), ``fine`` 32x128 multi-vector MaxSim (rescoring only). The same
data goes into

* (a) ``QdrantStore(path=...)``          -> Qdrant Edge through ragnest (``edge``; and
  ``edge-hnsw`` with a lower ``full_scan_threshold``, so the coarse stage really walks the
  HNSW graph: with Qdrant's default 10,000 KB a 64-d stage is scanned exactly below 40k pages),
* (b) ``QdrantStore(location=":memory:")`` -> qdrant-client local mode,
* (c) a raw ``qdrant_edge.EdgeShard`` queried with the same nested prefetch (ragnest overhead).

Run::

    python tests/benchmarks/bench_store_funnel.py --pages 20000

It prints a table and writes ``tests/benchmarks/results/store_funnel.json``.
Under pytest only the small ``@pytest.mark.benchmark`` test runs (``-m benchmark``).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE.parents[1]) not in sys.path:  # running as a script from anywhere
    sys.path.insert(0, str(HERE.parents[1]))

from ragnest.stores import QdrantStore
from ragnest.types import Chunk, Route, SearchRequest, Stage, VectorSpec, make_chunk_id

try:  # pytest is only needed for the collected smoke test
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

__all__ = ["SPECS", "main", "run"]

SPECS = (
    VectorSpec(name="coarse", kind="dense", dim=64, index="hnsw"),
    VectorSpec(name="mid", kind="dense", dim=256),
    VectorSpec(name="fine", kind="multi", dim=128),
)
IDENTITY = {"model": "synthetic-topics", "ladder": "64/256/32x128"}
PAGES_PER_DOC = 50
FINE_ROWS = 32
QUERY_ROWS = 8
LIMITS = (100, 30, 10)  # coarse, mid, final
DEFAULT_OUT = HERE / "results" / "store_funnel.json"


# ---------------------------------------------------------------------- data
@dataclass(frozen=True)
class Topics:
    page: np.ndarray  # (T, 256) page-level centroids
    token: np.ndarray  # (T, 128) token-level centroids


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def make_topics(n_topics: int, seed: int) -> Topics:
    rng = np.random.default_rng([seed, 0])
    return Topics(
        page=_unit(rng.normal(size=(n_topics, 256))), token=_unit(rng.normal(size=(n_topics, 128)))
    )


def _mixture(rng: np.random.Generator, n: int, n_topics: int) -> tuple[np.ndarray, np.ndarray]:
    ids = rng.integers(0, n_topics, size=(n, 3))
    weights = rng.dirichlet([1.0, 1.0, 1.0], size=n).astype(np.float32)
    return ids, weights


def _vectors(
    rng: np.random.Generator,
    topics: Topics,
    ids: np.ndarray,
    weights: np.ndarray,
    rows: int,
    noise: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(ids)
    mid = np.einsum("nk,nkd->nd", weights, topics.page[ids])
    mid = _unit(mid + rng.normal(scale=noise / 16.0, size=mid.shape))  # 16 = sqrt(256)
    coarse = _unit(mid[:, :64])  # Matryoshka-style prefix, re-normalised
    cum = np.cumsum(weights, axis=1)
    pick = (rng.random((n, rows, 1)) > cum[:, None, :]).sum(axis=2).clip(0, 2)  # topic per row
    row_topics = np.take_along_axis(ids, pick, axis=1)  # (n, rows)
    fine = topics.token[row_topics] + rng.normal(
        scale=noise * 1.5 / np.sqrt(128), size=(n, rows, 128)
    )
    return coarse, mid, _unit(fine)


def document(
    doc: int, topics: Topics, seed: int
) -> tuple[str, list[Chunk], dict[str, dict[str, Any]]]:
    """Document ``doc``: PAGES_PER_DOC pages with their vectors (deterministic)."""
    rng = np.random.default_rng([seed, 1, doc])
    doc_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-doc-{doc}"))
    ids, weights = _mixture(rng, PAGES_PER_DOC, len(topics.page))
    coarse, mid, fine = _vectors(rng, topics, ids, weights, FINE_ROWS, noise=0.6)
    chunks, vectors = [], {}
    for p in range(PAGES_PER_DOC):
        text = f"document {doc} page {p + 1}"
        cid = make_chunk_id(doc_id, p, text)
        chunks.append(
            Chunk(
                id=cid,
                document_id=doc_id,
                kind="page",
                text=text,
                source=f"/bench/doc-{doc:05d}.pdf",
                page=p + 1,
            )
        )
        vectors[cid] = {"coarse": coarse[p], "mid": mid[p], "fine": fine[p]}
    return doc_id, chunks, vectors


def documents(
    pages: int, topics: Topics, seed: int
) -> Iterator[tuple[str, list[Chunk], dict[str, dict[str, Any]]]]:
    for doc in range(max(1, pages // PAGES_PER_DOC)):
        yield document(doc, topics, seed)


def queries(
    n: int, pages: int, topics: Topics, seed: int
) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Queries near random pages: same topic mixture, fresh (heavier) noise, 8 fine rows."""
    rng = np.random.default_rng([seed, 2])
    out = []
    n_docs = max(1, pages // PAGES_PER_DOC)
    for _ in range(n):
        doc, page = int(rng.integers(n_docs)), int(rng.integers(PAGES_PER_DOC))
        _, chunks, _ = document(doc, topics, seed)
        drng = np.random.default_rng([seed, 1, doc])  # replay the page's topic mixture
        ids, weights = _mixture(drng, PAGES_PER_DOC, len(topics.page))
        c, m, f = _vectors(
            rng, topics, ids[page : page + 1], weights[page : page + 1], QUERY_ROWS, noise=0.9
        )
        out.append((chunks[page].id, {"coarse": c[0], "mid": m[0], "fine": f[0]}))
    return out


def route(q: dict[str, np.ndarray]) -> Route:
    return Route(
        name="dense",
        stages=(
            Stage(vector="coarse", query=q["coarse"], limit=LIMITS[0]),
            Stage(vector="mid", query=q["mid"], limit=LIMITS[1]),
            Stage(vector="fine", query=q["fine"], limit=LIMITS[2]),
        ),
    )


# ---------------------------------------------------------------------- backends
def ingest_store(store: QdrantStore, pages: int, topics: Topics, seed: int) -> dict[str, float]:
    store.open(SPECS, IDENTITY)
    t0 = time.perf_counter()
    for doc_id, chunks, vectors in documents(pages, topics, seed):
        store.write_document(doc_id, chunks, vectors, fingerprint=f"fp-{doc_id}")
    t1 = time.perf_counter()
    store.optimize()
    t2 = time.perf_counter()
    return {"upsert_s": t1 - t0, "optimize_s": t2 - t1}


class RawEdge:
    """The same collection written and queried with qdrant_edge directly."""

    def __init__(self, path: Path) -> None:
        import qdrant_edge as qe

        self.qe = qe

        def hnsw(m: int) -> Any:
            return qe.HnswIndexConfig(m=m, ef_construct=100, full_scan_threshold=10_000)

        config = qe.EdgeConfig(
            vectors={
                "coarse": qe.EdgeVectorParams(
                    size=64, distance=qe.Distance.Dot, hnsw_config=hnsw(16)
                ),
                "mid": qe.EdgeVectorParams(size=256, distance=qe.Distance.Dot, hnsw_config=hnsw(0)),
                "fine": qe.EdgeVectorParams(
                    size=128,
                    distance=qe.Distance.Dot,
                    multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
                    hnsw_config=hnsw(0),
                ),
            },
            hnsw_config=hnsw(16),
        )
        self.shard = qe.EdgeShard.create(str(path), config)
        for field in ("document_id", "source", "kind"):
            self.shard.update(
                qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword)
            )
        self.shard.update(
            qe.UpdateOperation.create_field_index("page", qe.PayloadSchemaType.Integer)
        )

    def ingest(self, pages: int, topics: Topics, seed: int) -> dict[str, float]:
        qe = self.qe
        t0 = time.perf_counter()
        batch: list[Any] = []
        for _, chunks, vectors in documents(pages, topics, seed):
            for c in chunks:
                v = vectors[c.id]
                batch.append(
                    qe.Point(
                        c.id,
                        {n: v[n].astype(np.float32).tolist() for n in ("coarse", "mid", "fine")},
                        {**c.to_payload(), "doc_fingerprint": "x", "doc_chunks": len(chunks)},
                    )
                )
                if len(batch) == 256:
                    self.shard.update(qe.UpdateOperation.upsert_points(batch))
                    batch = []
        if batch:
            self.shard.update(qe.UpdateOperation.upsert_points(batch))
        self.shard.flush()
        t1 = time.perf_counter()
        self.shard.optimize()
        t2 = time.perf_counter()
        return {"upsert_s": t1 - t0, "optimize_s": t2 - t1}

    def search(self, q: dict[str, np.ndarray]) -> list[str]:
        qe = self.qe
        coarse = qe.Prefetch(
            limit=LIMITS[0],
            query=qe.Query.Nearest(q["coarse"].tolist(), using="coarse"),
            params=qe.SearchParams(hnsw_ef=128),
        )
        mid = qe.Prefetch(
            limit=LIMITS[1],
            query=qe.Query.Nearest(q["mid"].tolist(), using="mid"),
            prefetches=[coarse],
        )
        request = qe.QueryRequest(
            limit=LIMITS[2],
            query=qe.Query.Nearest(q["fine"].tolist(), using="fine"),
            prefetches=[mid],
            with_payload=True,
        )
        return [str(p.id) for p in self.shard.query(request)]

    def close(self) -> None:
        self.shard.close()


# ---------------------------------------------------------------------- measuring
def _time_queries(
    search: Any, qs: Sequence[tuple[str, dict[str, np.ndarray]]]
) -> tuple[list[float], list[list[str]]]:
    for _, q in qs[:5]:  # warm caches
        search(q)
    times, results = [], []
    for _, q in qs:
        t0 = time.perf_counter()
        ids = search(q)
        times.append((time.perf_counter() - t0) * 1000.0)
        results.append(ids)
    return times, results


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median_ms": statistics.median(ordered),
        "p95_ms": p95,
        "mean_ms": statistics.fmean(ordered),
    }


def _overlap(a: list[list[str]], b: list[list[str]]) -> float:
    n = min(len(a), len(b))
    if n == 0:
        return float("nan")
    return statistics.fmean(len(set(x) & set(y)) / max(1, len(x)) for x, y in zip(a[:n], b[:n]))


def _source_at(results: list[list[str]], qs: Sequence[tuple[str, Any]], k: int) -> float:
    return statistics.fmean(1.0 if src in ids[:k] else 0.0 for (src, _), ids in zip(qs, results))


def run(
    pages: int,
    *,
    n_queries: int = 200,
    memory_queries: int = 20,
    skip_memory: bool = False,
    workdir: Path | None = None,
    seed: int = 7,
    n_topics: int = 300,
    hnsw_full_scan_kb: int | None = 1000,
) -> dict[str, Any]:
    """Run the benchmark and return the results dict (see module docstring)."""
    topics = make_topics(n_topics, seed)
    qs = queries(n_queries, pages, topics, seed)
    tmp = Path(tempfile.mkdtemp(prefix="ragnest-bench-", dir=workdir))
    rows: dict[str, dict[str, Any]] = {}
    results: dict[str, list[list[str]]] = {}
    try:
        # (a) ragnest -> Qdrant Edge; "edge-hnsw" lowers the full-scan threshold so the
        # coarse stage walks the HNSW graph instead of scanning (default: exact below 40k).
        variants = [("edge", None)] + (
            [("edge-hnsw", hnsw_full_scan_kb)] if hnsw_full_scan_kb else []
        )
        for name, fst in variants:
            with QdrantStore(path=str(tmp / name), full_scan_threshold=fst) as store:
                timing = ingest_store(store, pages, topics, seed)

                def search_store(q: dict[str, np.ndarray], store: QdrantStore = store) -> list[str]:
                    return [
                        h.chunk.id
                        for h in store.search(SearchRequest(routes=(route(q),), limit=LIMITS[2]))
                    ]

                times, results[name] = _time_queries(search_store, qs)
                rows[name] = {**timing, **_summary(times), "queries": len(qs)}
            shutil.rmtree(tmp / name, ignore_errors=True)
            gc.collect()
        # (c) raw qdrant_edge, same nested prefetch
        raw = RawEdge(tmp / "raw-edge")
        timing = raw.ingest(pages, topics, seed)
        times, results["raw-edge"] = _time_queries(raw.search, qs)
        rows["raw-edge"] = {**timing, **_summary(times), "queries": len(qs)}
        raw.close()
        gc.collect()
        # (b) qdrant-client local mode (brute force, slow: fewer queries)
        if not skip_memory:
            mq = qs[: max(1, min(memory_queries, len(qs)))]
            with QdrantStore(location=":memory:") as store:
                timing = ingest_store(store, pages, topics, seed)

                def search_mem(q: dict[str, np.ndarray], store: QdrantStore = store) -> list[str]:
                    return [
                        h.chunk.id
                        for h in store.search(SearchRequest(routes=(route(q),), limit=LIMITS[2]))
                    ]

                times, results["memory"] = _time_queries(search_mem, mq)
                rows["memory"] = {**timing, **_summary(times), "queries": len(mq)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, row in rows.items():
        row["top10_overlap_vs_edge"] = _overlap(results[name], results["edge"])
        row["source_at_1"] = _source_at(results[name], qs, 1)
        row["source_at_10"] = _source_at(results[name], qs, 10)
    return {
        "pages": max(1, pages // PAGES_PER_DOC) * PAGES_PER_DOC,
        "ladder": {
            "coarse": "64-d dense, HNSW m=16",
            "mid": "256-d dense, m=0",
            "fine": "32x128 multi MaxSim, m=0",
        },
        "limits": {"coarse": LIMITS[0], "mid": LIMITS[1], "final": LIMITS[2]},
        "full_scan_threshold_kb": {"edge": 10_000, "edge-hnsw": hnsw_full_scan_kb},
        "topics": n_topics,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": __import__("os").cpu_count(),
        },
        "backends": rows,
    }


def table(report: dict[str, Any]) -> str:
    """The results as an aligned plain-text table."""
    head = [
        "backend",
        "pages",
        "upsert s",
        "optimize s",
        "median ms",
        "p95 ms",
        "queries",
        "top10 overlap vs edge",
        "src@1",
        "src@10",
    ]
    lines = [head]
    for name, r in report["backends"].items():
        lines.append(
            [
                name,
                str(report["pages"]),
                f"{r['upsert_s']:.1f}",
                f"{r['optimize_s']:.2f}",
                f"{r['median_ms']:.2f}",
                f"{r['p95_ms']:.2f}",
                str(r["queries"]),
                f"{r['top10_overlap_vs_edge']:.3f}",
                f"{r['source_at_1']:.2f}",
                f"{r['source_at_10']:.2f}",
            ]
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    fmt = lambda row: "  ".join(
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
    )
    return "\n".join([fmt(lines[0]), "  ".join("-" * w for w in widths), *map(fmt, lines[1:])])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--memory-queries", type=int, default=20)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--hnsw-full-scan-kb",
        type=int,
        default=1000,
        help="full_scan_threshold of the extra edge-hnsw row (0: no such row)",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where the temporary stores go")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    report = run(
        args.pages,
        n_queries=args.queries,
        memory_queries=args.memory_queries,
        skip_memory=args.skip_memory,
        workdir=args.workdir,
        hnsw_full_scan_kb=args.hnsw_full_scan_kb or None,
    )
    print(table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return report


if pytest is not None:

    @pytest.mark.benchmark
    def test_store_funnel_small(tmp_path: Path) -> None:
        report = main(
            [
                "--pages",
                "1000",
                "--queries",
                "30",
                "--memory-queries",
                "5",
                "--workdir",
                str(tmp_path),
                "--out",
                str(tmp_path / "store_funnel.json"),
            ]
        )
        rows = report["backends"]
        assert rows["raw-edge"]["top10_overlap_vs_edge"] > 0.9
        assert rows["memory"]["top10_overlap_vs_edge"] > 0.7
        assert rows["edge"]["source_at_10"] > 0.5


if __name__ == "__main__":
    main()
