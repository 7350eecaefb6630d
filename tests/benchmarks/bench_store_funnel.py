"""Benchmark: the coarse -> mid -> fine funnel in QdrantStore, per backend.

Synthetic but structured pages (each a mixture of a few of some hundred topics, plus
noise), in one of two ladder shapes (``--ladder``):

* ``lite`` (default; the shipped ``pipelines/lite.yaml``): ``coarse`` 256-d dense with
  HNSW, ``mid`` 16 pooled 64-d float16 rows (MaxSim, rescoring only), ``fine`` every
  distinct token of the page at 32-d float16 (MaxSim, rescoring only; 150..350 tokens a
  page), stage limits 1000 -> 100 -> 50 (see ``LITE_LIMITS``), top-10 returned. Pages draw their distinct
  tokens from a topic-clustered vocabulary (their topics' Zipf-ish vocabularies plus a
  shared general pool); ``mid`` pools them with ragnest's own spherical k-means
  (``ragnest.ladder.pool_tokens``); a query is 3..10 noisy token vectors, half the
  source page's own tokens, half from its topics' vocabulary (like the lite embedder,
  each query row is scaled so MaxSim is a weighted mean of cosines).
* ``classic`` (the earlier shape, kept so old numbers stay reproducible): ``coarse``
  64-d dense with HNSW, ``mid`` 256-d dense, ``fine`` 32x128 multi-vector MaxSim, stage
  limits 100 -> 30 -> 10.

Only the dense route is measured (the lite pipeline also fuses a BM25 sparse route).
The same data goes into

* (a) ``QdrantStore(path=...)``          -> Qdrant Edge through ragnest (``edge``, with
  the defaults: its coarse stage searches exactly up to ``exact_search_kb`` = 100,000 KB
  of coarse vectors, 100k pages at 256-d; and ``edge-hnsw`` with ``exact_search_kb=0`` and
  a lower ``full_scan_threshold``, so the coarse stage really walks the HNSW graph: with
  Qdrant's default 10,000 KB a 64-d stage is scanned exactly below 40k pages, a 256-d one
  below 10k),
* (b) ``QdrantStore(location=":memory:")`` -> qdrant-client local mode (``--memory-pages``
  may measure it on a smaller collection: it is pure Python),
* (c) a raw ``qdrant_edge.EdgeShard`` queried with the same nested prefetch (ragnest overhead),
  and once more with ``exact=True`` on the coarse stage (``edge-exact``): the reference
  for the ``recall@10`` column (top-10 overlap with the exact funnel on the same data).

Run::

    python tests/benchmarks/bench_store_funnel.py --pages 20000                    # lite
    python tests/benchmarks/bench_store_funnel.py --pages 20000 --ladder classic

It prints a table and writes ``tests/benchmarks/results/store_funnel_<ladder>.json``. Under pytest only the small ``@pytest.mark.benchmark``
test runs (``-m benchmark``).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _bench import RESULTS, pytest  # first: puts the repo on sys.path

from ragnest.ladder import l2_normalize, pool_tokens
from ragnest.stores import QdrantStore
from ragnest.types import Chunk, Route, SearchRequest, Stage, VectorSpec, make_chunk_id

__all__ = ["LADDERS", "SPECS", "main", "run"]

# classic ladder (the earlier shape; its names stay as they were)
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

# lite ladder (pipelines/lite.yaml)
LITE_SPECS = (
    VectorSpec(name="coarse", kind="dense", dim=256, index="hnsw"),
    VectorSpec(name="mid", kind="multi", dim=64, datatype="float16"),
    VectorSpec(name="fine", kind="multi", dim=32, datatype="float16"),
)
LITE_IDENTITY = {"model": "synthetic-tokens", "ladder": "256/16x64f16/allx32f16"}
# coarse, mid, fine stage limits. lite.yaml keeps 1000 -> 50 -> 50, and its fine stage also
# rescores BM25's top 50 (retrieval.candidates_from), so it scores up to 100 pages; this
# synthetic bench has no BM25 route, so mid keeps 100: the fine stage's full load.
LITE_LIMITS = (1000, 100, 50)
LITE_K = 10  # results asked for (lite.yaml k=5; recall is measured on the top 10)
MID_ROWS = 16
TOKENS_PER_PAGE = (150, 350)  # distinct tokens a page, drawn uniformly
TOPIC_VOCAB = 300  # content tokens per topic
GENERAL_VOCAB = 5000  # content tokens shared by all topics
GENERAL_SHARE = 0.2  # of a page's tokens
QUERY_TOKENS = (3, 10)
QUERY_NOISE = 0.8  # per-token noise norm (cos to the clean token ~0.78)
QUERY_ON_PAGE = 0.5  # share of query tokens taken from the page itself


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


def _page_chunk(doc_id: str, doc: int, p: int) -> Chunk:
    """The synthetic chunk for page ``p`` (0-based) of bench document ``doc``."""
    text = f"document {doc} page {p + 1}"
    return Chunk(
        id=make_chunk_id(doc_id, p, text),
        document_id=doc_id,
        kind="page",
        text=text,
        source=f"/bench/doc-{doc:05d}.pdf",
        page=p + 1,
    )


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
        chunks.append(_page_chunk(doc_id, doc, p))
        vectors[chunks[-1].id] = {"coarse": coarse[p], "mid": mid[p], "fine": fine[p]}
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


# ---------------------------------------------------------------------- lite data
@dataclass(frozen=True)
class Vocab:
    """Token embeddings (256-d, Matryoshka prefixes used for 64/32-d) clustered by topic."""

    vectors: np.ndarray  # (n_topics * TOPIC_VOCAB + GENERAL_VOCAB, 256), unit rows
    topic_p: np.ndarray  # (TOPIC_VOCAB,) Zipf-ish popularity inside a topic
    general_p: np.ndarray  # (GENERAL_VOCAB,)
    n_topics: int

    @property
    def general_start(self) -> int:
        return self.n_topics * TOPIC_VOCAB


def _zipf(n: int, shift: float) -> np.ndarray:
    p = 1.0 / (np.arange(n) + shift)
    return p / p.sum()


def make_vocab(n_topics: int, seed: int) -> Vocab:
    rng = np.random.default_rng([seed, 10])
    centroids = _unit(rng.normal(size=(n_topics, 256)))
    topical = 0.6 * np.repeat(centroids, TOPIC_VOCAB, axis=0) + rng.normal(
        scale=1 / 16.0, size=(n_topics * TOPIC_VOCAB, 256)
    )  # cos(token, its topic) ~ 0.5, two tokens of a topic ~ 0.26
    general = rng.normal(size=(GENERAL_VOCAB, 256))
    return Vocab(
        vectors=_unit(np.concatenate([topical, general])),
        topic_p=_zipf(TOPIC_VOCAB, 10.0),
        general_p=_zipf(GENERAL_VOCAB, 20.0),
        n_topics=n_topics,
    )


@dataclass(frozen=True)
class LitePage:
    tokens: np.ndarray  # distinct token ids
    weights: np.ndarray  # per-token weight (count-like)
    topics: np.ndarray  # (3,) topic ids
    mix: np.ndarray  # (3,) topic weights


def _topic_tokens(
    rng: np.random.Generator, vocab: Vocab, topics: np.ndarray, mix: np.ndarray, n: int
) -> np.ndarray:
    counts = rng.multinomial(n, mix / mix.sum())
    parts = [
        t * TOPIC_VOCAB
        + rng.choice(TOPIC_VOCAB, size=min(c, TOPIC_VOCAB), replace=False, p=vocab.topic_p)
        for t, c in zip(topics, counts)
        if c
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def lite_document(
    doc: int, vocab: Vocab, seed: int
) -> tuple[str, list[Chunk], dict[str, dict[str, Any]], list[LitePage]]:
    """Document ``doc`` in the lite ladder: pages of distinct tokens, their vectors."""
    rng = np.random.default_rng([seed, 11, doc])
    doc_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-doc-{doc}"))
    ids, mixes = _mixture(rng, PAGES_PER_DOC, vocab.n_topics)
    chunks, vectors, pages = [], {}, []
    for p in range(PAGES_PER_DOC):
        n = int(rng.integers(TOKENS_PER_PAGE[0], TOKENS_PER_PAGE[1] + 1))
        n_general = int(rng.binomial(n, GENERAL_SHARE))
        general = vocab.general_start + rng.choice(
            GENERAL_VOCAB, size=n_general, replace=False, p=vocab.general_p
        )
        tokens = np.unique(
            np.concatenate([_topic_tokens(rng, vocab, ids[p], mixes[p], n - n_general), general])
        )
        weights = (1.0 + rng.exponential(1.0, size=len(tokens))).astype(np.float32)
        tv = vocab.vectors[tokens]
        chunks.append(_page_chunk(doc_id, doc, p))
        vectors[chunks[-1].id] = {
            "coarse": l2_normalize(weights @ tv),
            "mid": pool_tokens(tv[:, :64], MID_ROWS, weights=weights, seed=0).astype(np.float16),
            "fine": l2_normalize(tv[:, :32]).astype(np.float16),
        }
        pages.append(LitePage(tokens=tokens, weights=weights, topics=ids[p], mix=mixes[p]))
    return doc_id, chunks, vectors, pages


def lite_query(rng: np.random.Generator, vocab: Vocab, page: LitePage) -> dict[str, np.ndarray]:
    """A query from ``page``: mostly its own tokens, some topic words, all with noise."""
    n = int(rng.integers(QUERY_TOKENS[0], QUERY_TOKENS[1] + 1))
    n_on = min(len(page.tokens), max(1, round(QUERY_ON_PAGE * n)))
    on = rng.choice(page.tokens, size=n_on, replace=False, p=page.weights / page.weights.sum())
    off = _topic_tokens(rng, vocab, page.topics, page.mix, n - n_on)
    toks = np.concatenate([on, off])
    qv = _unit(vocab.vectors[toks] + rng.normal(scale=QUERY_NOISE / 16.0, size=(len(toks), 256)))
    scale = 1.0 / len(toks)  # MaxSim = mean cosine over query rows, as the lite embedder
    return {
        "coarse": l2_normalize(qv.sum(axis=0)),
        "mid": l2_normalize(qv[:, :64]) * scale,
        "fine": l2_normalize(qv[:, :32]) * scale,
    }


# ---------------------------------------------------------------------- ladders
Doc = tuple[str, list[Chunk], dict[str, dict[str, Any]]]
Queries = list[tuple[str, dict[str, np.ndarray]]]


@dataclass
class Ladder:
    """A ladder shape: specs, stage limits, and its (cached, deterministic) data."""

    name: str
    specs: tuple[VectorSpec, ...]
    identity: dict[str, Any]
    limits: tuple[int, int, int]  # coarse, mid, fine stage limits
    k: int  # SearchRequest.limit (top-k returned)
    seed: int
    n_topics: int

    def __post_init__(self) -> None:
        self._docs: list[Doc] = []
        self._pages: list[list[LitePage]] = []
        self._topics: Topics | None = None
        self._vocab: Vocab | None = None

    def describe(self) -> dict[str, str]:
        out = {}
        for s in self.specs:
            shape = f"{s.dim}-d" if s.kind == "dense" else f"multi x {s.dim}-d MaxSim"
            index = "HNSW m=16" if s.index == "hnsw" else "m=0 (rescoring only)"
            out[s.name] = f"{shape} {s.datatype}, {index}"
        if self.name == "lite":
            out["mid"] = f"{MID_ROWS} pooled rows, " + out["mid"]
            lo, hi = TOKENS_PER_PAGE
            out["fine"] = f"every distinct token ({lo}..{hi} a page), " + out["fine"]
        else:
            out["fine"] = f"{FINE_ROWS} rows, " + out["fine"]
        return out

    def documents(self, pages: int) -> list[Doc]:
        n_docs = max(1, pages // PAGES_PER_DOC)
        for doc in range(len(self._docs), n_docs):
            if self.name == "lite":
                self._vocab = self._vocab or make_vocab(self.n_topics, self.seed)
                doc_id, chunks, vectors, lp = lite_document(doc, self._vocab, self.seed)
                self._docs.append((doc_id, chunks, vectors))
                self._pages.append(lp)
            else:
                self._topics = self._topics or make_topics(self.n_topics, self.seed)
                self._docs.append(document(doc, self._topics, self.seed))
        return self._docs[:n_docs]

    def queries(self, n: int, pages: int) -> Queries:
        if self.name != "lite":
            self._topics = self._topics or make_topics(self.n_topics, self.seed)
            return queries(n, pages, self._topics, self.seed)
        docs = self.documents(pages)
        assert self._vocab is not None
        rng = np.random.default_rng([self.seed, 12, pages])
        out = []
        for _ in range(n):
            doc, page = int(rng.integers(len(docs))), int(rng.integers(PAGES_PER_DOC))
            q = lite_query(rng, self._vocab, self._pages[doc][page])
            out.append((docs[doc][1][page].id, q))
        return out

    def bytes_per_page(self, pages: int) -> dict[str, float]:
        """Stored vector bytes a page (dims x rows x datatype), per vector and in total."""
        docs = self.documents(pages)
        out: dict[str, float] = {}
        for s in self.specs:
            width = 2 if s.datatype == "float16" else 4
            rows = statistics.fmean(
                1 if s.kind == "dense" else len(v[s.name]) for _, _, vs in docs for v in vs.values()
            )
            out[s.name] = rows * s.dim * width
        out["total"] = sum(out.values())
        return out

    def route(self, q: dict[str, np.ndarray]) -> Route:
        return Route(
            name="dense",
            stages=tuple(
                Stage(vector=s.name, query=q[s.name], limit=lim)
                for s, lim in zip(self.specs, self.limits)
            ),
        )


LADDERS = ("lite", "classic")


def make_ladder(name: str, seed: int = 7, n_topics: int = 300) -> Ladder:
    if name == "lite":
        return Ladder("lite", LITE_SPECS, LITE_IDENTITY, LITE_LIMITS, LITE_K, seed, n_topics)
    if name == "classic":
        return Ladder("classic", SPECS, IDENTITY, LIMITS, LIMITS[2], seed, n_topics)
    raise ValueError(f"unknown ladder {name!r}; use one of {LADDERS}")


# ---------------------------------------------------------------------- backends
def ingest_store(store: QdrantStore, ladder: Ladder, pages: int) -> dict[str, float]:
    docs = ladder.documents(pages)  # generated (and cached) before the clock starts
    store.open(ladder.specs, ladder.identity)
    t0 = time.perf_counter()
    for doc_id, chunks, vectors in docs:
        store.write_document(doc_id, chunks, vectors, fingerprint=f"fp-{doc_id}")
    t1 = time.perf_counter()
    store.optimize()
    t2 = time.perf_counter()
    return {"upsert_s": t1 - t0, "optimize_s": t2 - t1}


class RawEdge:
    """The same collection written and queried with qdrant_edge directly."""

    def __init__(self, path: Path, ladder: Ladder) -> None:
        import qdrant_edge as qe

        self.qe = qe
        self.ladder = ladder

        def hnsw(m: int) -> Any:
            return qe.HnswIndexConfig(m=m, ef_construct=100, full_scan_threshold=10_000)

        config = qe.EdgeConfig(
            vectors={
                s.name: qe.EdgeVectorParams(
                    size=s.dim,
                    distance=qe.Distance.Dot,
                    multivector_config=(
                        qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim)
                        if s.kind == "multi"
                        else None
                    ),
                    datatype=(
                        qe.VectorStorageDatatype.Float16 if s.datatype == "float16" else None
                    ),
                    hnsw_config=hnsw(16 if s.index == "hnsw" else 0),
                )
                for s in ladder.specs
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

    def ingest(self, pages: int) -> dict[str, float]:
        qe = self.qe
        names = [s.name for s in self.ladder.specs]
        docs = self.ladder.documents(pages)
        t0 = time.perf_counter()
        batch: list[Any] = []
        for _, chunks, vectors in docs:
            for c in chunks:
                v = vectors[c.id]
                batch.append(
                    qe.Point(
                        c.id,
                        {n: v[n].astype(np.float32).tolist() for n in names},
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

    def search(self, q: dict[str, np.ndarray], exact: bool = False) -> list[str]:
        qe = self.qe
        (c, l0), (m, l1), (f, _) = zip((s.name for s in self.ladder.specs), self.ladder.limits)
        coarse = qe.Prefetch(
            limit=l0,
            query=qe.Query.Nearest(q[c].tolist(), using=c),
            params=qe.SearchParams(exact=True) if exact else qe.SearchParams(hnsw_ef=128),
        )
        mid = qe.Prefetch(
            limit=l1,
            query=qe.Query.Nearest(q[m].tolist(), using=m),
            prefetches=[coarse],
        )
        request = qe.QueryRequest(
            limit=self.ladder.k,
            query=qe.Query.Nearest(q[f].tolist(), using=f),
            prefetches=[mid],
            with_payload=True,
        )
        return [str(p.id) for p in self.shard.query(request)]

    def search_exact(self, q: dict[str, np.ndarray]) -> list[str]:
        return self.search(q, exact=True)

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


def _store_search(store: QdrantStore, ladder: Ladder) -> Any:
    def search(q: dict[str, np.ndarray]) -> list[str]:
        request = SearchRequest(routes=(ladder.route(q),), limit=ladder.k)
        return [h.chunk.id for h in store.search(request)]

    return search


def run(
    pages: int,
    *,
    ladder: str = "lite",
    n_queries: int = 200,
    memory_queries: int = 20,
    memory_pages: int | None = None,
    skip_memory: bool = False,
    workdir: Path | None = None,
    seed: int = 7,
    n_topics: int = 300,
    hnsw_full_scan_kb: int | None = 1000,
) -> dict[str, Any]:
    """Run the benchmark and return the results dict (see module docstring)."""
    lad = make_ladder(ladder, seed, n_topics)
    pages = max(1, pages // PAGES_PER_DOC) * PAGES_PER_DOC
    t_gen = time.perf_counter()
    lad.documents(pages)
    qs = lad.queries(n_queries, pages)
    gen_s = time.perf_counter() - t_gen
    tmp = Path(tempfile.mkdtemp(prefix="ragnest-bench-", dir=workdir))
    rows: dict[str, dict[str, Any]] = {}
    results: dict[str, list[list[str]]] = {}
    refs: dict[str, list[list[str]]] = {}  # row -> edge-exact results on the row's data
    try:
        # (a) ragnest -> Qdrant Edge; "edge-hnsw" lowers the full-scan threshold so the
        # coarse stage walks the HNSW graph instead of scanning.
        variants = [("edge", None)] + (
            [("edge-hnsw", hnsw_full_scan_kb)] if hnsw_full_scan_kb else []
        )
        for name, fst in variants:
            # edge-hnsw walks the graph: no exact search of small collections either
            exact_kb = {"exact_search_kb": 0} if name == "edge-hnsw" else {}
            with QdrantStore(path=str(tmp / name), full_scan_threshold=fst, **exact_kb) as store:
                timing = ingest_store(store, lad, pages)
                times, results[name] = _time_queries(_store_search(store, lad), qs)
                rows[name] = {**timing, **_summary(times), "queries": len(qs), "pages": pages}
            shutil.rmtree(tmp / name, ignore_errors=True)
            gc.collect()
        # (c) raw qdrant_edge, same nested prefetch; then exact coarse stage (the reference)
        raw = RawEdge(tmp / "raw-edge", lad)
        timing = raw.ingest(pages)
        times, results["raw-edge"] = _time_queries(raw.search, qs)
        rows["raw-edge"] = {**timing, **_summary(times), "queries": len(qs), "pages": pages}
        times, results["edge-exact"] = _time_queries(raw.search_exact, qs)
        rows["edge-exact"] = {
            "upsert_s": None,
            "optimize_s": None,
            **_summary(times),
            "queries": len(qs),
            "pages": pages,
        }
        raw.close()
        shutil.rmtree(tmp / "raw-edge", ignore_errors=True)
        gc.collect()
        for name in results:
            refs[name] = results["edge-exact"]
        # (b) qdrant-client local mode (brute force, slow: fewer queries, maybe fewer pages)
        if not skip_memory:
            mpages = pages if not memory_pages else min(pages, memory_pages)
            mpages = max(1, mpages // PAGES_PER_DOC) * PAGES_PER_DOC
            mq = (qs if mpages == pages else lad.queries(n_queries, mpages))[
                : max(1, min(memory_queries, n_queries))
            ]
            with QdrantStore(location=":memory:") as store:
                timing = ingest_store(store, lad, mpages)
                times, results["memory"] = _time_queries(_store_search(store, lad), mq)
                rows["memory"] = {**timing, **_summary(times), "queries": len(mq), "pages": mpages}
            gc.collect()
            if mpages == pages:
                refs["memory"] = results["edge-exact"]
            else:  # the exact reference on the same smaller collection
                small = RawEdge(tmp / "raw-edge-small", lad)
                small.ingest(mpages)
                refs["memory"] = [small.search_exact(q) for _, q in mq]
                small.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, row in rows.items():
        mqs = qs if row["pages"] == pages else mq
        row["recall10_vs_exact"] = _overlap(results[name], refs[name])
        row["top10_overlap_vs_edge"] = (
            _overlap(results[name], results["edge"]) if row["pages"] == pages else None
        )
        row["source_at_1"] = _source_at(results[name], mqs, 1)
        row["source_at_10"] = _source_at(results[name], mqs, 10)
    bpp = lad.bytes_per_page(pages)
    return {
        "pages": pages,
        "ladder_name": lad.name,
        "ladder": lad.describe(),
        "limits": dict(zip(("coarse", "mid", "fine"), lad.limits)) | {"k": lad.k},
        "bytes_per_page": bpp,
        "full_scan_threshold_kb": {"edge": 10_000, "edge-hnsw": hnsw_full_scan_kb},
        "topics": n_topics,
        "data_generation_s": gen_s,
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
        "vec B/page",
        "upsert s",
        "optimize s",
        "median ms",
        "p95 ms",
        "queries",
        "recall@10 vs exact",
        "top10 overlap vs edge",
        "src@1",
        "src@10",
    ]

    def num(x: float | None, f: str) -> str:
        return "-" if x is None else format(x, f)

    lines = [head]
    for name, r in report["backends"].items():
        lines.append(
            [
                name,
                str(r.get("pages", report["pages"])),
                f"{report['bytes_per_page']['total']:.0f}",
                num(r["upsert_s"], ".1f"),
                num(r["optimize_s"], ".2f"),
                f"{r['median_ms']:.2f}",
                f"{r['p95_ms']:.2f}",
                str(r["queries"]),
                f"{r['recall10_vs_exact']:.3f}",
                num(r["top10_overlap_vs_edge"], ".3f"),
                f"{r['source_at_1']:.2f}",
                f"{r['source_at_10']:.2f}",
            ]
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    def fmt(row):
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
        )
    limits = report["limits"]
    bpp = ", ".join(f"{k} {v:.0f}" for k, v in report["bytes_per_page"].items())
    head_lines = [
        f"ladder {report['ladder_name']}: "
        + "; ".join(f"{k} = {v}" for k, v in report["ladder"].items()),
        (
            f"stage limits {limits['coarse']} -> {limits['mid']} -> {limits['fine']}, "
            f"top-{limits['k']} returned; vector bytes a page: {bpp}"
        ),
        "",
    ]
    return "\n".join(
        [*head_lines, fmt(lines[0]), "  ".join("-" * w for w in widths), *map(fmt, lines[1:])]
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ladder", choices=LADDERS, default="lite")
    parser.add_argument("--pages", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--memory-queries", type=int, default=20)
    parser.add_argument(
        "--memory-pages",
        type=int,
        default=None,
        help="measure local mode on this many pages instead (default: --pages)",
    )
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--hnsw-full-scan-kb",
        type=int,
        default=1000,
        help="full_scan_threshold of the extra edge-hnsw row (0: no such row)",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where the temporary stores go")
    parser.add_argument(
        "--out", type=Path, default=None, help="default: results/store_funnel_<ladder>.json"
    )
    args = parser.parse_args(argv)
    report = run(
        args.pages,
        ladder=args.ladder,
        n_queries=args.queries,
        memory_queries=args.memory_queries,
        memory_pages=args.memory_pages,
        skip_memory=args.skip_memory,
        workdir=args.workdir,
        hnsw_full_scan_kb=args.hnsw_full_scan_kb or None,
    )
    print(table(report))
    out = args.out or RESULTS / f"store_funnel_{args.ladder}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")
    return report


if pytest is not None:

    @pytest.mark.benchmark
    @pytest.mark.parametrize("ladder", LADDERS)
    def test_store_funnel_small(tmp_path: Path, ladder: str) -> None:
        report = main(
            [
                "--ladder",
                ladder,
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
        assert rows["edge"]["recall10_vs_exact"] > 0.9
        assert rows["memory"]["top10_overlap_vs_edge"] > 0.7
        assert rows["edge"]["source_at_10"] > 0.5


if __name__ == "__main__":
    main()
