"""Benchmark: ladder funnels vs exhaustive full multi-vector MaxSim on Qdrant Edge.

Issue 4: funnel search against an exhaustive full-scan MaxSim over every token vector
of every page, on the same engine (ragnest's ``QdrantStore(path=...)`` -> Qdrant Edge).

Data (synthetic, structured, deterministic): ``--pages`` pages of 128 unit token vectors
of 128-d float32 (``ROWS`` x ``DIM``). A page mixes 3 of 300 topics (Dirichlet weights)
and has 10 "patch clusters" (a centre drawn near one of its topics plus a page-specific
offset, cos ~0.78 to the topic); each token is a noisy copy of one of its clusters (cos
~0.9) or, with probability 0.15, of one of 4 shared "background" vectors (blank patches).
A query is 16..24 rows: ~75% are the target page's own tokens plus noise (cos ~0.9), the
rest off-page rows (a random topic plus heavy noise); rows are unit-normalised.

Stores (one Qdrant Edge store each, written and queried through ragnest):

* ``exhaustive``: one multi-vector ``full`` (128 x 128 float32, MaxSim, no HNSW), queried
  alone with limit 10 = a full scan. Its top-10 is the reference for ``recall@10``.
* ladder ``A``: coarse mean-pooled 128-d (binary quantization, HNSW) -> mid 16 pooled
  rows x 128-d float16 -> fine all 128 rows x 128-d float16; limits 1000 -> 200 -> 10.
* ladder ``B``: coarse 64-d prefix of the mean (renormalised; binary, HNSW) -> mid 16
  pooled rows x 64-d float16 -> fine 128 rows x 64-d float16; limits 1000 -> 200 -> 10.
* ladder ``C`` (<= 1/8 of full fp32): coarse 64-d binary HNSW -> mid 8 pooled rows x
  64-d float16 -> fine 32 pooled rows x 96-d float16; limits 1000 -> 200 -> 10.
* ladder ``D`` (<= 1/8 of full fp32): coarse 64-d binary HNSW -> mid 4 pooled rows x
  64-d float16 -> fine 24 pooled rows x 128-d float16; limits 1000 -> 200 -> 10.
* ladders ``E``, ``F``, ``G`` store their rescoring levels as Qdrant TurboQuant codes
  (``datatype: turbo4 | turbo8``: rotated 4/8-bit codes plus a norm, no floats kept):
  coarse mean 128-d binary HNSW -> mid 16 (G: 8) pooled rows turbo4 -> fine all 128 rows
  turbo8 (E), all 128 rows turbo4 (F), 100 pooled rows turbo4 (G, <= 1/8 of fp32);
  ``H`` (<= 1/8) is G with a fine level of 104 rows from Ward token pooling (the layer's
  ``pool: hierarchical``), which only merges the closest rows, instead of k-means.

Pooled rows come from a batched spherical k-means over the page's tokens (the same idea
as ``ragnest.ladder.pool_tokens``, vectorised over a batch of pages); prefixes are
truncated and re-normalised (``ragnest.ladder.truncate``). Searches use
``SearchRequest(stage_scores=False)`` so only the engine's funnel is timed.

"bytes a page" is arithmetic: stored originals (rows x dim x 4 or 2 bytes) + the binary
copy of the coarse vector (dim / 8) + ~128 B of HNSW level-0 links (m=16 -> 32 links x
4 B); the engine's on-disk size (after optimize) is reported too.

Besides recall@10 (overlap with the exhaustive top 10) the table gives the *score
ratio*: the exact fp32 MaxSim of the 10 pages a ladder returned, summed, over that of the
exhaustive top 10 (1.0 = as good; a near-tie swapped in costs almost nothing there, a
page lost by the coarse stage costs more).

Reproduce::

    .venv/bin/python tests/benchmarks/bench_ladder_funnel.py --pages 10000 --queries 200 \\
        --exhaustive-queries 100
    .venv/bin/python tests/benchmarks/bench_ladder_funnel.py --pages 100000 --queries 100 \\
        --exhaustive-queries 20 --ladders A,E,F,G \\
        --limits "1000,200,10;4000,400,10;8000,500,10" \\
        --out tests/benchmarks/results/ladder_funnel_100k.json

(100k pages: about 230 s of ingest per store, 13 GB on disk for the exhaustive one.)

It prints a table and writes ``tests/benchmarks/results/ladder_funnel.json`` (``--out``).
Under pytest only the small ``@pytest.mark.benchmark`` test runs (``-m benchmark``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _bench import RESULTS, pytest  # first: puts the repo on sys.path

from ragnest.ladder import truncate
from ragnest.ladder.pooling import pool_hierarchical
from ragnest.stores import QdrantStore
from ragnest.types import Chunk, Route, SearchRequest, Stage, VectorSpec, make_chunk_id

__all__ = ["LADDERS", "main", "run"]

ROWS, DIM = 128, 128  # token vectors a page, their dim
N_TOPICS = 300
CLUSTERS = 10  # patch clusters a page
BACKGROUND = 4  # shared "blank patch" vectors
BACKGROUND_SHARE = 0.15
PAGES_PER_DOC = 50
BATCH_PAGES = 500  # pages generated at a time (a multiple of PAGES_PER_DOC)
QUERY_ROWS = (16, 24)
QUERY_ON_PAGE = 0.75
K = 10
FULL_FP32 = ROWS * DIM * 4  # 65,536 B a page
HNSW_LINK_BYTES = 2 * 16 * 4  # level-0 links of an m=16 graph
COLQWEN_ROWS = 700  # vectors of a full-size ColQwen page (128-d)


# ---------------------------------------------------------------------- data
def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _noise(rng: np.random.Generator, shape: tuple[int, ...], norm: float) -> np.ndarray:
    """Gaussian noise whose rows have (about) the given norm."""
    return rng.normal(scale=norm / np.sqrt(shape[-1]), size=shape).astype(np.float32)


@dataclass(frozen=True)
class World:
    topics: np.ndarray  # (N_TOPICS, DIM)
    background: np.ndarray  # (BACKGROUND, DIM)
    seed: int


def make_world(seed: int) -> World:
    rng = np.random.default_rng([seed, 0])
    return World(
        _unit(rng.normal(size=(N_TOPICS, DIM))), _unit(rng.normal(size=(BACKGROUND, DIM))), seed
    )


def page_batch(world: World, batch: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pages ``batch*BATCH_PAGES ..`` (n of them): tokens (n, ROWS, DIM) and topic ids (n, 3)."""
    rng = np.random.default_rng([world.seed, 1, batch])
    topics = rng.integers(0, N_TOPICS, size=(n, 3))
    mix = rng.dirichlet([1.0, 1.0, 1.0], size=n)
    # each cluster's topic drawn from the page's mix
    cum = np.cumsum(mix, axis=1)
    pick = (rng.random((n, CLUSTERS, 1)) > cum[:, None, :]).sum(axis=2).clip(0, 2)
    c_topic = np.take_along_axis(topics, pick, axis=1)  # (n, CLUSTERS)
    centres = _unit(world.topics[c_topic] + _noise(rng, (n, CLUSTERS, DIM), 0.8))
    assign = rng.integers(0, CLUSTERS, size=(n, ROWS))
    base = np.take_along_axis(centres, assign[..., None], axis=1)  # (n, ROWS, DIM)
    bg = rng.random((n, ROWS)) < BACKGROUND_SHARE
    base[bg] = world.background[rng.integers(0, BACKGROUND, size=int(bg.sum()))]
    tokens = _unit(base + _noise(rng, (n, ROWS, DIM), 0.5))
    return tokens, topics


def batches(world: World, pages: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(first page index, tokens, topics) for every batch of pages."""
    for b, start in enumerate(range(0, pages, BATCH_PAGES)):
        tokens, topics = page_batch(world, b, min(BATCH_PAGES, pages - start))
        yield start, tokens, topics


def pool_batch(x: np.ndarray, k: int, iterations: int = 6) -> np.ndarray:
    """Spherical k-means of every page's rows: (n, R, d) -> (n, k, d) unit rows."""
    n, r, _ = x.shape
    centres = x[:, np.linspace(0, r - 1, k).astype(int)].copy()
    for _ in range(iterations):
        assign = np.einsum("nrd,nkd->nrk", x, centres).argmax(axis=2)  # (n, r)
        member = np.zeros((n, k, r), dtype=np.float32)
        member[np.arange(n)[:, None], assign, np.arange(r)[None, :]] = 1.0
        sums = member @ x  # (n, k, d)
        norms = np.linalg.norm(sums, axis=-1, keepdims=True)
        centres = np.where(norms > 0, sums / np.maximum(norms, 1e-12), centres)
    return centres.astype(np.float32)


def page_id(p: int) -> str:
    doc = p // PAGES_PER_DOC
    return make_chunk_id(_doc_id(doc), p % PAGES_PER_DOC, f"document {doc} page {p}")


def _doc_id(doc: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-ladder-doc-{doc}"))


def make_queries(
    world: World, targets: Sequence[int], tokens_of: dict[int, np.ndarray], seed: int
) -> list[tuple[str, np.ndarray]]:
    """(target page id, query rows (q, DIM) unit) for each target page."""
    rng = np.random.default_rng([seed, 2])
    out = []
    for p in targets:
        toks = tokens_of[p]
        q = int(rng.integers(QUERY_ROWS[0], QUERY_ROWS[1] + 1))
        on = round(QUERY_ON_PAGE * q)
        own = toks[rng.choice(ROWS, size=on, replace=False)] + _noise(rng, (on, DIM), 0.5)
        off_topics = world.topics[rng.integers(0, N_TOPICS, size=q - on)]
        off = off_topics + _noise(rng, (q - on, DIM), 1.2)
        out.append((page_id(p), _unit(np.concatenate([own, off]))))
    return out


# ---------------------------------------------------------------------- ladders
def row_bytes(dim: int, datatype: str) -> float:
    """Stored bytes of one vector: TurboQuant keeps dim x bits codes plus a 4-byte norm
    (measured on disk: turbo4 128-d = 68 B, turbo8 = 132 B), never the floats."""
    width = {"float32": 4.0, "float16": 2.0, "turbo4": 0.5, "turbo8": 1.0, "turbo16": 2.0}
    return dim * width[datatype] + (4 if datatype.startswith("turbo") else 0)


@dataclass(frozen=True)
class Level:
    spec: VectorSpec
    rows: int  # rows a page (1 for dense)
    limit: int  # stage limit
    make: Callable[[np.ndarray, dict[int, np.ndarray]], np.ndarray]  # (tokens, pools) -> vecs
    query: Callable[[np.ndarray], np.ndarray]  # query rows -> stage query
    note: str = ""

    def bytes_per_page(self) -> float:
        b = self.rows * row_bytes(self.spec.dim, self.spec.datatype)
        if self.spec.quantization == "binary":
            b += self.rows * self.spec.dim / 8
        if self.spec.index == "hnsw":
            b += HNSW_LINK_BYTES
        return float(b)


@dataclass(frozen=True)
class Ladder:
    name: str
    levels: tuple[Level, ...]
    pools: tuple[int, ...] = ()  # k-means pool sizes the levels need
    description: dict[str, str] = field(default_factory=dict)

    @property
    def specs(self) -> tuple[VectorSpec, ...]:
        return tuple(lv.spec for lv in self.levels)

    def vectors(self, tokens: np.ndarray) -> dict[str, np.ndarray]:
        pools = {k: pool_batch(tokens, k) for k in self.pools}
        return {lv.spec.name: lv.make(tokens, pools) for lv in self.levels}

    def route(
        self, q: np.ndarray, limits: Sequence[int] | None = None, depth: int | None = None
    ) -> Route:
        """The funnel for query rows ``q`` (``limits`` override; first ``depth`` stages only)."""
        limits = limits or [lv.limit for lv in self.levels]
        return Route(
            name=self.name,
            stages=tuple(
                Stage(vector=lv.spec.name, query=lv.query(q), limit=lim)
                for lv, lim in list(zip(self.levels, limits))[:depth]
            ),
        )

    def bytes_per_page(self) -> dict[str, float]:
        out = {lv.spec.name: lv.bytes_per_page() for lv in self.levels}
        out["total"] = sum(out.values())
        return out


def _mean(dim: int) -> Callable[[np.ndarray, dict[int, np.ndarray]], np.ndarray]:
    return lambda t, _p: truncate(t.mean(axis=1), dim)


def _qmean(dim: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda q: truncate(q.mean(axis=0), dim)


def _pooled(k: int, dim: int, dt: Any = np.float16) -> Callable[..., np.ndarray]:
    return lambda _t, p: truncate(p[k], dim).astype(dt)


def _all(dim: int, dt: Any = np.float16) -> Callable[..., np.ndarray]:
    return lambda t, _p: truncate(t, dim).astype(dt)


def _rows(dim: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda q: truncate(q, dim)


def _dense(name: str, dim: int, dt: Any = "float32") -> VectorSpec:
    return VectorSpec(
        name=name, kind="dense", dim=dim, index="hnsw", quantization="binary", datatype=dt
    )


def _multi(name: str, dim: int, dt: Any = "float16") -> VectorSpec:
    return VectorSpec(name=name, kind="multi", dim=dim, datatype=dt)


EXHAUSTIVE = Ladder(
    "exhaustive",
    (
        Level(
            _multi("full", DIM, "float32"),
            ROWS,
            K,
            _all(DIM, np.float32),
            _rows(DIM),
            "all 128 rows x 128-d float32 MaxSim, no HNSW (full scan)",
        ),
    ),
)
LADDER_DEFS = {
    "A": Ladder(
        "A",
        (
            Level(
                _dense("coarse", 128),
                1,
                1000,
                _mean(128),
                _qmean(128),
                "mean-pooled 128-d float32, binary quantization, HNSW m=16",
            ),
            Level(
                _multi("mid", 128),
                16,
                200,
                _pooled(16, 128),
                _rows(128),
                "16 pooled rows x 128-d float16 MaxSim",
            ),
            Level(
                _multi("fine", 128),
                ROWS,
                K,
                _all(128),
                _rows(128),
                "all 128 rows x 128-d float16 MaxSim",
            ),
        ),
        pools=(16,),
    ),
    "B": Ladder(
        "B",
        (
            Level(
                _dense("coarse", 64),
                1,
                1000,
                _mean(64),
                _qmean(64),
                "64-d prefix of the mean (renormalised) float32, binary, HNSW m=16",
            ),
            Level(
                _multi("mid", 64),
                16,
                200,
                _pooled(16, 64),
                _rows(64),
                "16 pooled rows x 64-d float16 MaxSim",
            ),
            Level(
                _multi("fine", 64),
                ROWS,
                K,
                _all(64),
                _rows(64),
                "all 128 rows x 64-d float16 MaxSim",
            ),
        ),
        pools=(16,),
    ),
    "C": Ladder(
        "C",
        (
            Level(
                _dense("coarse", 64),
                1,
                1000,
                _mean(64),
                _qmean(64),
                "64-d prefix of the mean float32, binary, HNSW m=16",
            ),
            Level(
                _multi("mid", 64),
                8,
                200,
                _pooled(8, 64),
                _rows(64),
                "8 pooled rows x 64-d float16 MaxSim",
            ),
            Level(
                _multi("fine", 96),
                32,
                K,
                _pooled(32, 96),
                _rows(96),
                "32 pooled rows x 96-d float16 MaxSim",
            ),
        ),
        pools=(8, 32),
    ),
    "D": Ladder(
        "D",
        (
            Level(
                _dense("coarse", 64),
                1,
                1000,
                _mean(64),
                _qmean(64),
                "64-d prefix of the mean float32, binary, HNSW m=16",
            ),
            Level(
                _multi("mid", 64),
                4,
                200,
                _pooled(4, 64),
                _rows(64),
                "4 pooled rows x 64-d float16 MaxSim",
            ),
            Level(
                _multi("fine", 128),
                24,
                K,
                _pooled(24, 128),
                _rows(128),
                "24 pooled rows x 128-d float16 MaxSim",
            ),
        ),
        pools=(4, 24),
    ),
}

def _turbo_ladder(name: str, mid_rows: int, fine_rows: int, fine_dt: str, coarse_dt: str,
                  limits: tuple[int, int, int]) -> Ladder:
    """Coarse binary HNSW -> mid pooled rows (turbo4) -> fine rows (TurboQuant storage)."""
    fine_make = _all(128, np.float32) if fine_rows == ROWS else _pooled(fine_rows, 128, np.float32)
    fine_note = "all 128" if fine_rows == ROWS else f"{fine_rows} pooled"
    return Ladder(
        name,
        (
            Level(_dense("coarse", 128, coarse_dt), 1, limits[0], _mean(128), _qmean(128),
                  f"mean-pooled 128-d stored {coarse_dt}, binary quantization, HNSW m=16"),
            Level(_multi("mid", 128, "turbo4"), mid_rows, limits[1],
                  _pooled(mid_rows, 128, np.float32), _rows(128),
                  f"{mid_rows} pooled rows x 128-d turbo4 MaxSim"),
            Level(_multi("fine", 128, fine_dt), fine_rows, limits[2], fine_make, _rows(128),
                  f"{fine_note} rows x 128-d {fine_dt} MaxSim (codes only, no floats kept)"),
        ),
        pools=tuple(sorted({mid_rows} | ({fine_rows} if fine_rows < ROWS else set()))),
    )


LADDER_DEFS.update(
    {
        # TurboQuant storage (Qdrant's turbo datatypes keep only rotated codes):
        "E": _turbo_ladder("E", 16, ROWS, "turbo8", "float16", (4000, 400, K)),
        "F": _turbo_ladder("F", 16, ROWS, "turbo4", "float16", (4000, 400, K)),
        "G": _turbo_ladder("G", 8, 100, "turbo4", "turbo4", (4000, 400, K)),  # <= 1/8
    }
)
WARD_ROWS = 104  # H: the fine level keeps 104 of 128 rows, merging the closest (Ward)


def _ward(n: int) -> Callable[..., np.ndarray]:
    return lambda t, _p: np.stack([pool_hierarchical(page, n=n) for page in t])


_h = _turbo_ladder("H", 8, WARD_ROWS, "turbo4", "turbo4", (4000, 400, K))
LADDER_DEFS["H"] = Ladder(
    "H",
    (
        *_h.levels[:2],
        Level(
            _multi("fine", 128, "turbo4"),
            WARD_ROWS,
            K,
            _ward(WARD_ROWS),
            _rows(128),
            f"{WARD_ROWS} rows x 128-d turbo4 MaxSim, Ward token pooling "
            "(ragnest.ladder.pooling.pool_hierarchical: the closest rows merged)",
        ),
    ),
    pools=(8,),
)
LADDERS = tuple(LADDER_DEFS)


# ---------------------------------------------------------------------- store work
def _disk_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def ingest(
    store: QdrantStore,
    ladder: Ladder,
    world: World,
    pages: int,
    capture: set[int] | None = None,
) -> tuple[dict[str, float], dict[int, np.ndarray]]:
    """Write every page (batch by batch) and optimize; time upserts and optimize only."""
    store.open(ladder.specs, {"model": "synthetic-ladder", "ladder": ladder.name})
    gen_s = upsert_s = 0.0
    captured: dict[int, np.ndarray] = {}
    for start, tokens, _ in batches(world, pages):
        t0 = time.perf_counter()
        vecs = ladder.vectors(tokens)
        gen_s += time.perf_counter() - t0
        if capture:
            for p in capture:
                if start <= p < start + len(tokens):
                    captured[p] = tokens[p - start].copy()
        for d0 in range(0, len(tokens), PAGES_PER_DOC):
            doc = (start + d0) // PAGES_PER_DOC
            chunks, vectors = [], {}
            for i in range(d0, min(d0 + PAGES_PER_DOC, len(tokens))):
                p = start + i
                text = f"document {doc} page {p}"
                cid = make_chunk_id(_doc_id(doc), p % PAGES_PER_DOC, text)
                chunks.append(
                    Chunk(
                        id=cid,
                        document_id=_doc_id(doc),
                        kind="page",
                        text=text,
                        source=f"/bench/doc-{doc:05d}.pdf",
                        page=p % PAGES_PER_DOC + 1,
                    )
                )
                vectors[cid] = {name: v[i] for name, v in vecs.items()}
            t0 = time.perf_counter()
            store.write_document(_doc_id(doc), chunks, vectors, fingerprint=f"fp-{doc}")
            upsert_s += time.perf_counter() - t0
        del vecs, tokens
    t0 = time.perf_counter()
    store.optimize()
    optimize_s = time.perf_counter() - t0
    return (
        {
            "vector_prep_s": gen_s,
            "upsert_s": upsert_s,
            "optimize_s": optimize_s,
            "ingest_s": upsert_s + optimize_s,
        },
        captured,
    )


def _search(
    store: QdrantStore,
    ladder: Ladder,
    limits: Sequence[int] | None = None,
    depth: int | None = None,
) -> Callable[[np.ndarray], list[str]]:
    """Search through ragnest; with ``depth``, the first stages' candidates instead."""
    k = K if depth is None else (limits or [lv.limit for lv in ladder.levels])[depth - 1]

    def search(q: np.ndarray) -> list[str]:
        req = SearchRequest(routes=(ladder.route(q, limits, depth),), limit=k, stage_scores=False)
        return [h.chunk.id for h in store.search(req)]

    return search


def time_queries(
    search: Callable[[np.ndarray], list[str]], qs: Sequence[tuple[str, np.ndarray]], warm: int = 3
) -> tuple[list[float], list[list[str]]]:
    for _, q in qs[:warm]:
        search(q)
    times, results = [], []
    for _, q in qs:
        t0 = time.perf_counter()
        ids = search(q)
        times.append((time.perf_counter() - t0) * 1000.0)
        results.append(ids)
    return times, results


def _pct(times: list[float], p: float) -> float:
    s = sorted(times)
    return s[min(len(s) - 1, round(p * (len(s) - 1)))]


def _recall(res: list[list[str]], ref: list[list[str]]) -> float:
    n = min(len(res), len(ref))
    return statistics.fmean(len(set(a) & set(b)) / K for a, b in zip(res[:n], ref[:n]))


def _src_at(res: list[list[str]], qs: Sequence[tuple[str, Any]], k: int) -> float:
    return statistics.fmean(1.0 if src in ids[:k] else 0.0 for (src, _), ids in zip(qs, res))


def score_ratios(
    world: World,
    pages: int,
    qs: Sequence[tuple[str, np.ndarray]],
    ref: list[list[str]],
    results: dict[str, list[list[str]]],
) -> dict[str, float]:
    """Mean over queries of sum(exact MaxSim of a ladder's top 10) / sum(exact top 10).

    1.0 means the ladder returned pages exactly as good as the exhaustive top 10 (a
    near-tie swapped in counts as almost 1); recall@10 counts such a swap as a miss.
    Exact scores are recomputed in fp32 from the regenerated page tokens.
    """
    index = {page_id(p): p for p in range(pages)}
    need: dict[int, set[int]] = {}  # page -> query numbers
    for qi in range(len(ref)):
        for ids in (ref[qi], *(res[qi] for res in results.values())):
            for cid in ids:
                need.setdefault(index[cid], set()).add(qi)
    exact: dict[tuple[int, str], float] = {}
    for start, tokens, _ in batches(world, pages):
        for p in range(start, start + len(tokens)):
            for qi in need.get(p, ()):
                q = qs[qi][1]
                exact[(qi, page_id(p))] = float((q @ tokens[p - start].T).max(axis=1).sum())

    def ratio(res: list[list[str]]) -> float:
        vals = []
        for qi in range(min(len(res), len(ref))):
            best = sum(exact[(qi, c)] for c in ref[qi])
            vals.append(sum(exact[(qi, c)] for c in res[qi]) / best if best else 1.0)
        return statistics.fmean(vals)

    return {row: ratio(res) for row, res in results.items()}


# ---------------------------------------------------------------------- run
def run(
    pages: int,
    *,
    n_queries: int = 200,
    exhaustive_queries: int = 50,
    ladders: Sequence[str] = LADDERS,
    limit_sets: Sequence[tuple[int, ...]] | None = None,
    workdir: Path | None = None,
    seed: int = 7,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmark; returns the results dict (see the module docstring)."""
    pages = max(1, pages // PAGES_PER_DOC) * PAGES_PER_DOC
    world = make_world(seed)
    rng = np.random.default_rng([seed, 3])
    targets = [int(p) for p in rng.choice(pages, size=min(n_queries, pages), replace=False)]
    tmp = Path(tempfile.mkdtemp(prefix="ragnest-ladder-", dir=workdir))
    rows: dict[str, dict[str, Any]] = {}
    results: dict[str, list[list[str]]] = {}
    try:
        # exhaustive reference store (also captures the query pages' tokens)
        path = tmp / "exhaustive"
        with QdrantStore(path=str(path)) as store:
            timing, tokens_of = ingest(store, EXHAUSTIVE, world, pages, capture=set(targets))
            disk = _disk_bytes(path)
            qs = make_queries(world, targets, tokens_of, seed)
            eq = qs[: max(1, min(exhaustive_queries, len(qs)))]
            log(
                f"exhaustive: ingest {timing['ingest_s']:.1f}s, {disk / 1e6:.0f} MB on disk; "
                f"{len(eq)} full-scan queries ..."
            )
            times, ref = time_queries(_search(store, EXHAUSTIVE), eq, warm=1)
        shutil.rmtree(path, ignore_errors=True)
        gc.collect()
        rows["exhaustive"] = {
            **timing,
            "median_ms": statistics.median(times),
            "p95_ms": _pct(times, 0.95),
            "queries": len(eq),
            "recall10": 1.0,
            "src_at_1": _src_at(ref, eq, 1),
            "src_at_10": _src_at(ref, eq, 10),
            "disk_bytes_per_page": disk / pages,
            "bytes_per_page": EXHAUSTIVE.bytes_per_page(),
        }
        log(f"exhaustive: median {rows['exhaustive']['median_ms']:.1f} ms")
        for name in ladders:
            lad = LADDER_DEFS[name]
            path = tmp / name
            with QdrantStore(path=str(path)) as store:
                timing, _ = ingest(store, lad, world, pages)
                disk = _disk_bytes(path)
                for limits in limit_sets or [tuple(lv.limit for lv in lad.levels)]:
                    row = name if not limit_sets else f"{name} {'/'.join(map(str, limits))}"
                    times, res = time_queries(_search(store, lad, limits), qs)
                    results[row] = res[: len(eq)]
                    # where the exhaustive top-10 is lost: share kept by the first stage(s)
                    kept = {}
                    for depth in range(1, len(lad.levels)):
                        stage = _search(store, lad, limits, depth)
                        cand = [set(stage(q)) for _, q in eq]
                        kept[lad.levels[depth - 1].spec.name] = statistics.fmean(
                            len(c & set(r)) / K for c, r in zip(cand, ref)
                        )
                    rows[row] = {
                        **timing,
                        "limits": list(limits),
                        "median_ms": statistics.median(times),
                        "p95_ms": _pct(times, 0.95),
                        "queries": len(qs),
                        "recall10": _recall(res, ref),
                        "ref_top10_kept_by_stage": kept,
                        "src_at_1": _src_at(res, qs, 1),
                        "src_at_10": _src_at(res, qs, 10),
                        "disk_bytes_per_page": disk / pages,
                        "bytes_per_page": lad.bytes_per_page(),
                    }
                    log(
                        f"{row}: ingest {timing['ingest_s']:.1f}s, median "
                        f"{rows[row]['median_ms']:.2f} ms, recall@10 {rows[row]['recall10']:.3f},"
                        f" ref top-10 kept by stage {kept}"
                    )
            shutil.rmtree(path, ignore_errors=True)
            gc.collect()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log("exact MaxSim of every returned page (score ratio@10) ...")
    ratios = score_ratios(world, pages, eq, ref, results)
    for row, ratio in ratios.items():
        rows[row]["score_ratio10"] = ratio
    rows["exhaustive"]["score_ratio10"] = 1.0
    ex_ms = rows["exhaustive"]["median_ms"]
    for r in rows.values():
        r["speedup_vs_exhaustive"] = ex_ms / r["median_ms"]
        r["bytes_ratio_vs_full_fp32"] = r["bytes_per_page"]["total"] / FULL_FP32
    colqwen = COLQWEN_ROWS * DIM * 4
    return {
        "pages": pages,
        "page_shape": f"{ROWS} x {DIM}-d float32 unit token vectors",
        "queries": len(qs),
        "exhaustive_queries": len(eq),
        "k": K,
        "ladders": {
            lad.name: {
                "levels": {lv.spec.name: lv.note for lv in lad.levels},
                "limits": [lv.limit for lv in lad.levels],
            }
            for lad in (EXHAUSTIVE, *(LADDER_DEFS[n] for n in ladders))
        },
        "rows": rows,
        "colqwen_arithmetic": {
            "rows_per_page": COLQWEN_ROWS,
            "full_fp32_bytes_per_page": colqwen,
            "full_fp32_bytes_100k_pages": colqwen * 100_000,
            "ladder_A_scaled_bytes_per_page": 512
            + 16
            + HNSW_LINK_BYTES
            + 16 * 128 * 2
            + COLQWEN_ROWS * 128 * 2,
            "ladder_B_scaled_bytes_per_page": 256
            + 8
            + HNSW_LINK_BYTES
            + 16 * 64 * 2
            + COLQWEN_ROWS * 64 * 2,
            "ladder_C_scaled_bytes_per_page": 256 + 8 + HNSW_LINK_BYTES + 8 * 64 * 2 + 32 * 96 * 2,
            "ladder_D_scaled_bytes_per_page": 256 + 8 + HNSW_LINK_BYTES + 4 * 64 * 2 + 24 * 128 * 2,
            "ladder_E_scaled_bytes_per_page": 256 + 16 + HNSW_LINK_BYTES
            + 16 * row_bytes(128, "turbo4") + COLQWEN_ROWS * row_bytes(128, "turbo8"),
            "ladder_F_scaled_bytes_per_page": 256 + 16 + HNSW_LINK_BYTES
            + 16 * row_bytes(128, "turbo4") + COLQWEN_ROWS * row_bytes(128, "turbo4"),
            # H keeps 104/128 of the rows: 569 of 700
            "ladder_H_scaled_bytes_per_page": row_bytes(128, "turbo4") + 16 + HNSW_LINK_BYTES
            + 8 * row_bytes(128, "turbo4") + 569 * row_bytes(128, "turbo4"),
            # configs/models/colqwen2-v1.0-compact.yaml: binary mean, 24 grid cells turbo4,
            # Ward pool factor 3 (256 of 768 rows) turbo8
            "compact_preset_768_rows_bytes_per_page": 256 + 16 + HNSW_LINK_BYTES
            + 24 * row_bytes(128, "turbo4") + 256 * row_bytes(128, "turbo8"),
            "exhaustive_scan_time_scale": f"x{COLQWEN_ROWS / ROWS:.2f} of the 128-row scan",
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    }


def table(report: dict[str, Any]) -> str:
    head = [
        "store",
        "B/page",
        "ratio",
        "disk B/page",
        "upsert s",
        "optim s",
        "median ms",
        "p95 ms",
        "speedup",
        "recall@10",
        "score ratio",
        "src@1",
        "src@10",
        "queries",
    ]
    lines = [head]
    for name, r in report["rows"].items():
        lines.append(
            [
                name,
                f"{r['bytes_per_page']['total']:.0f}",
                f"{r['bytes_ratio_vs_full_fp32']:.3f}",
                f"{r['disk_bytes_per_page']:.0f}",
                f"{r['upsert_s']:.1f}",
                f"{r['optimize_s']:.1f}",
                f"{r['median_ms']:.2f}",
                f"{r['p95_ms']:.2f}",
                f"{r['speedup_vs_exhaustive']:.1f}x",
                f"{r['recall10']:.3f}",
                f"{r.get('score_ratio10', float('nan')):.4f}",
                f"{r['src_at_1']:.2f}",
                f"{r['src_at_10']:.2f}",
                str(r["queries"]),
            ]
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]

    def fmt(row: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
        )

    top = [
        f"{report['pages']} pages of {report['page_shape']}; recall@10 vs the exhaustive "
        f"top-10 over {report['exhaustive_queries']} queries"
    ]
    for name, lad in report["ladders"].items():
        limits = " -> ".join(map(str, lad["limits"]))
        top.append(
            f"  {name} [{limits}]: " + "; ".join(f"{k} = {v}" for k, v in lad["levels"].items())
        )
    return "\n".join(
        [*top, "", fmt(head), "  ".join("-" * w for w in widths), *map(fmt, lines[1:])]
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--exhaustive-queries",
        type=int,
        default=50,
        help="queries run against the exhaustive store (the recall reference)",
    )
    parser.add_argument(
        "--ladders",
        default=",".join(LADDERS),
        help=f"comma-separated subset of {','.join(LADDERS)}",
    )
    parser.add_argument(
        "--limits",
        default=None,
        help="stage limits to try on every ladder, e.g. '1000,200,10;4000,400,10' "
        "(default: each ladder's own)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None, help="where the temporary stores go")
    parser.add_argument("--out", type=Path, default=RESULTS / "ladder_funnel.json")
    args = parser.parse_args(argv)
    ladders = [s.strip() for s in args.ladders.split(",") if s.strip()]
    unknown = [s for s in ladders if s not in LADDER_DEFS]
    if unknown:
        parser.error(f"unknown ladders {unknown}; use some of {','.join(LADDERS)}")
    t0 = time.perf_counter()
    report = run(
        args.pages,
        n_queries=args.queries,
        exhaustive_queries=args.exhaustive_queries,
        ladders=ladders,
        limit_sets=[tuple(int(x) for x in part.split(",")) for part in args.limits.split(";")]
        if args.limits
        else None,
        workdir=args.workdir,
        seed=args.seed,
    )
    report["wall_s"] = time.perf_counter() - t0
    print(table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return report


if pytest is not None:

    @pytest.mark.benchmark
    def test_ladder_funnel_small(tmp_path: Path) -> None:
        report = main(
            [
                "--pages",
                "2000",
                "--queries",
                "30",
                "--exhaustive-queries",
                "30",
                "--workdir",
                str(tmp_path),
                "--out",
                str(tmp_path / "ladder.json"),
            ]
        )
        rows = report["rows"]
        assert rows["exhaustive"]["src_at_10"] > 0.9
        assert rows["A"]["recall10"] > 0.8
        assert rows["C"]["bytes_ratio_vs_full_fp32"] <= 1 / 8
        assert rows["G"]["bytes_ratio_vs_full_fp32"] <= 1 / 8
        assert rows["G"]["score_ratio10"] > 0.99


if __name__ == "__main__":
    main()
