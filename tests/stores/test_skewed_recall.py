"""The coarse stage on a skewed store: one huge document among many small ones.

In a real store of 77k chunks (72k of them from one long text file), walking the HNSW
graph lost pages that exact search ranks first, whatever the ``ef``: the graph is built
around the huge document's near-duplicates. Here the same shape in miniature, with
synthetic 256-d vectors (the lite coarse level): 11,000 chunks of one document packed
around one direction, 1,500 pages of small documents spread over topics, the HNSW graph
really built (above the engine's indexing threshold), and 100 known-item queries (noisy
copies of small-document pages).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ragnest.stores import QdrantStore
from ragnest.types import Chunk, Route, SearchRequest, Stage, VectorSpec, make_chunk_id

DIM = 256
BIG, SMALL, PAGES = 11_000, 1_500, 25  # chunks of the huge document; small pages, per doc
QUERIES, K = 100, 100
SPECS = (VectorSpec(name="coarse", kind="dense", dim=DIM, index="hnsw"),)
IDENTITY = {"model": "skewed-synthetic"}


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _vectors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    big = _unit(_unit(rng.normal(size=DIM)) + rng.normal(scale=0.3 / 16, size=(BIG, DIM)))
    topics = _unit(rng.normal(size=(300, DIM)))
    ids = rng.integers(0, 300, size=(SMALL, 3))
    mix = rng.dirichlet([1.0, 1.0, 1.0], size=SMALL)
    small = np.einsum("nk,nkd->nd", mix, topics[ids]) + rng.normal(scale=0.6 / 16,
                                                                    size=(SMALL, DIM))
    return big, _unit(small)


def _doc(name: str, vectors: np.ndarray) -> tuple[str, list[Chunk], dict[str, dict]]:
    doc_id = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
    chunks, vecs = [], {}
    for i, v in enumerate(vectors):
        chunk = Chunk(id=make_chunk_id(doc_id, i, f"{name} {i}"), document_id=doc_id,
                      kind="text", text=f"{name} {i}", source=name, page=i + 1)
        chunks.append(chunk)
        vecs[chunk.id] = {"coarse": v}
    return doc_id, chunks, vecs


@pytest.fixture(scope="module")
def skewed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list]]:
    rng = np.random.default_rng(1)
    big, small = _vectors(rng)
    path = tmp_path_factory.mktemp("skewed") / "db"
    known: list[tuple[str, np.ndarray]] = []
    with QdrantStore(path=str(path), mode="write") as store:
        store.open(SPECS, IDENTITY)
        doc_id, chunks, vecs = _doc("huge.txt", big)
        store.write_document(doc_id, chunks, vecs, fingerprint="huge", batch_size=1000)
        small_chunks = []
        for d in range(SMALL // PAGES):
            doc_id, chunks, vecs = _doc(f"small-{d}.pdf", small[d * PAGES : (d + 1) * PAGES])
            store.write_document(doc_id, chunks, vecs, fingerprint=f"s{d}")
            small_chunks += chunks
        store.optimize()  # builds the graph: 12.5k x 1 KB is above the 10 MB threshold
        assert store.vector_config()["coarse"]["hnsw_m"] == 16
        for i in rng.choice(SMALL, QUERIES, replace=False):
            q = _unit(small[i] + rng.normal(scale=0.9 / 16, size=DIM))
            known.append((small_chunks[i].id, q))
    yield path, known


def _top(store: QdrantStore, q: np.ndarray) -> list[str]:
    route = Route(name="dense", stages=(Stage(vector="coarse", query=q, limit=K),))
    return [h.chunk.id for h in store.search(SearchRequest(routes=(route,), limit=K))]


def _missed(path: Path, known: list, **kwargs: object) -> tuple[int, int]:
    """(known items ranked first by exact search, how many of them are not in the top K)."""
    with QdrantStore(path=str(path), mode="read", **kwargs) as store, QdrantStore(
        path=str(path), mode="read", exact_search_kb=10**9
    ) as exact:
        store.open(SPECS, IDENTITY)
        exact.open(SPECS, IDENTITY)
        firsts = [cid for cid, q in known if _top(exact, q)[0] == cid]
        missed = sum(cid not in _top(store, q) for cid, q in known if cid in firsts)
    return len(firsts), missed


def test_every_known_item_is_found_where_exact_search_ranks_it_first(skewed) -> None:
    path, known = skewed
    firsts, missed = _missed(path, known)  # the defaults: this store is searched exactly
    assert firsts >= 90, firsts  # the queries are known-item queries
    assert missed == 0


def test_the_graph_alone_misses_some_of_them(skewed) -> None:
    """The store is skewed enough to show the hazard: forcing the graph walk (what the
    coarse stage did before) loses known items (20-38 of ~100 with ef 128 here). A ten
    times larger ``ef`` lost 4-8 in most builds and none in one: the engine builds the
    graph on several threads, so how much a wide walk recovers varies from build to
    build and is printed, not asserted beyond "no worse than ef 128"."""
    path, known = skewed
    _, missed = _missed(path, known, exact_search_kb=0)
    _, missed_wide = _missed(path, known, exact_search_kb=0, hnsw_ef=1000)
    print(f"graph walk missed {missed} (ef 128) and {missed_wide} (ef 1000) known items")
    assert missed >= 1, missed
    assert missed_wide <= missed, (missed, missed_wide)
