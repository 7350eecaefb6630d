"""The Store contract, run against every backend (edge, memory, server when configured)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _storedata import IDENTITY, SPECS, dense_route, make_doc, sparse_route

from ragnest.errors import ConfigError, StoreError, StoreMismatchError
from ragnest.protocols import Store
from ragnest.stores import QdrantStore, WriteResult
from ragnest.types import Route, SearchRequest, Stage, VectorSpec

Factory = Callable[..., QdrantStore]


@pytest.fixture
def store(make_store: Factory) -> QdrantStore:
    s = make_store()
    s.open(SPECS, IDENTITY)
    return s


@pytest.fixture
def corpus(store: QdrantStore) -> dict[str, tuple[str, list, dict]]:
    """Three documents of five chunks, written to ``store``."""
    docs = {
        "a.pdf": make_doc("a.pdf", 5, seed=1, lang="en"),
        "b.pdf": make_doc("b.pdf", 5, seed=2, lang="de"),
        "c.pdf": make_doc("c.pdf", 5, seed=3, lang="en"),
    }
    for name, (doc_id, chunks, vectors) in docs.items():
        result = store.write_document(doc_id, chunks, vectors, fingerprint=f"fp-{name}")
        assert result == WriteResult(added=5, unchanged=0, removed=0)
    return docs


class TestStoreContract:
    def test_is_a_store_and_open_creates_named_vectors(self, store: QdrantStore) -> None:
        assert isinstance(store, Store)
        config = store.vector_config()
        assert set(config) == {"coarse", "mid", "fine", "bm25"}
        assert config["coarse"]["kind"] == "dense" and config["coarse"]["dim"] == 16
        assert config["coarse"]["hnsw_m"] == 16  # only the coarsest level gets a graph
        assert config["mid"]["hnsw_m"] == 0 and config["fine"]["hnsw_m"] == 0
        assert config["fine"]["kind"] == "multi"
        assert config["coarse"]["quantization"] == "binary"
        assert config["fine"]["quantization"] == "scalar"
        assert config["mid"]["datatype"] == "float16"
        assert config["bm25"]["kind"] == "sparse"
        assert str(config["bm25"]["modifier"]).lower() == "idf"
        assert store.stats()["chunks"] == 0

    def test_funnel_returns_the_stored_chunk(self, store: QdrantStore, corpus: dict) -> None:
        for _doc_id, chunks, vectors in corpus.values():
            for chunk in chunks[::2]:
                route = dense_route(vectors[chunk.id])
                hits = store.search(SearchRequest(routes=(route,), limit=3))
                assert hits[0].chunk == chunk
                assert hits[0].scores_by_stage["final"] == pytest.approx(hits[0].score)
                assert "dense" in hits[0].scores_by_stage
                assert len(hits) == 3
                assert hits[0].score >= hits[1].score >= hits[2].score

    def test_hits_carry_each_stage_score(self, store: QdrantStore, corpus: dict) -> None:
        _, chunks, vectors = corpus["a.pdf"]
        route = dense_route(vectors[chunks[0].id])
        hits = store.search(SearchRequest(routes=(route,), limit=3, stage_scores=True))
        for hit in hits:
            stages = hit.scores_by_stage
            assert {"coarse", "mid", "fine"} <= set(stages)
            # The last stage's recomputed score is the engine's final score.
            assert stages["fine"] == pytest.approx(hit.score, rel=1e-2, abs=1e-2)
        # by default only what the search itself produced: no vectors fetched, same hits
        plain = store.search(SearchRequest(routes=(route,), limit=3))
        assert set(plain[0].scores_by_stage) == {"final", "dense"}
        assert [h.chunk.id for h in plain] == [h.chunk.id for h in hits]

    def test_filter_applies_at_every_stage(self, store: QdrantStore, corpus: dict) -> None:
        _, chunks_a, vectors_a = corpus["a.pdf"]
        doc_b, _, _ = corpus["b.pdf"]
        # The coarse stage keeps ONE candidate: if the filter only ran at the end, the best
        # match (from a.pdf) would be filtered out and nothing would come back.
        route = dense_route(vectors_a[chunks_a[0].id], limits=(1, 1, 1))
        hits = store.search(SearchRequest(routes=(route,), limit=5, filters={"document_id": doc_b}))
        assert len(hits) == 1 and hits[0].chunk.document_id == doc_b
        wide = dense_route(vectors_a[chunks_a[0].id], limits=(10, 10, 10))
        hits = store.search(SearchRequest(routes=(wide,), limit=10, filters={"document_id": doc_b}))
        assert len(hits) == 5 and {h.chunk.document_id for h in hits} == {doc_b}
        # The same with fusion, where filters must reach each route's innermost stage.
        for fusion in ("rrf", "dbsf", "relative"):
            req = SearchRequest(
                routes=(route, sparse_route(vectors_a[chunks_a[0].id], limit=1)),
                limit=5,
                fusion=fusion,
                filters={"document_id": doc_b},
            )
            hits = store.search(req)
            assert hits and {h.chunk.document_id for h in hits} == {doc_b}, fusion

    def test_filter_shapes(self, store: QdrantStore, corpus: dict) -> None:
        _, chunks_a, vectors_a = corpus["a.pdf"]
        route = dense_route(vectors_a[chunks_a[0].id], limits=(15, 15, 15))

        def pages(filters: dict) -> set[tuple[str, int]]:
            hits = store.search(SearchRequest(routes=(route,), limit=15, filters=filters))
            return {(h.chunk.source, h.chunk.page) for h in hits}

        assert {p for _, p in pages({"page": {"gte": 2, "lt": 4}})} == {2, 3}
        assert {s for s, _ in pages({"source": ["a.pdf", "c.pdf"]})} == {"a.pdf", "c.pdf"}
        assert {s for s, _ in pages({"metadata.lang": "de"})} == {"b.pdf"}
        assert pages({"source": "c.pdf", "page": 5}) == {("c.pdf", 5)}
        assert pages({"kind": "text"}) == set()
        with pytest.raises(ConfigError, match="page"):
            pages({"page": {"between": [1, 2]}})
        with pytest.raises(ConfigError, match="score"):
            pages({"score": 0.5})

    @pytest.mark.parametrize("fusion", ["rrf", "dbsf", "relative"])
    def test_sparse_dense_fusion(self, store: QdrantStore, corpus: dict, fusion: str) -> None:
        _, chunks_a, vectors_a = corpus["a.pdf"]
        _, chunks_c, vectors_c = corpus["c.pdf"]
        x, y = chunks_a[1], chunks_c[3]
        both = (dense_route(vectors_a[x.id]), sparse_route(vectors_a[x.id]))
        hits = store.search(SearchRequest(routes=both, limit=4, fusion=fusion))
        assert hits[0].chunk == x
        assert "final" in hits[0].scores_by_stage
        if fusion == "relative":
            assert hits[0].score == pytest.approx(2.0)  # best in both routes
            assert set(hits[0].scores_by_stage) >= {"final", "dense", "bm25"}
        # Routes that disagree: the heavier route wins (dbsf ignores weights).
        if fusion != "dbsf":
            for wd, ws, expected in ((3.0, 1.0, x), (1.0, 3.0, y)):
                routes = (
                    dense_route(vectors_a[x.id], weight=wd),
                    sparse_route(vectors_c[y.id], weight=ws),
                )
                hits = store.search(SearchRequest(routes=routes, limit=4, fusion=fusion))
                assert hits[0].chunk == expected, (wd, ws)

    def test_write_is_idempotent(self, store: QdrantStore, corpus: dict) -> None:
        doc_id, chunks, vectors = corpus["a.pdf"]
        again = store.write_document(doc_id, chunks, {}, fingerprint="fp-a.pdf")
        assert again == WriteResult(added=0, unchanged=5, removed=0)
        again = store.write_document(doc_id, chunks, vectors, fingerprint="fp-a.pdf")
        assert again == WriteResult(added=0, unchanged=5, removed=0)
        assert store.stats()["chunks"] == 15
        assert store.document_fingerprint(doc_id) == "fp-a.pdf"

    def test_replace_changed_chunk_set(self, store: QdrantStore, corpus: dict) -> None:
        doc_id, chunks, vectors = corpus["a.pdf"]
        _, extra, extra_vectors = make_doc("a.pdf", 2, seed=1, start=10)
        new_chunks = chunks[1:] + extra  # drop chunk 0, add two
        result = store.write_document(doc_id, new_chunks, extra_vectors, fingerprint="fp-a2")
        assert result == WriteResult(added=2, unchanged=4, removed=1)
        assert store.chunk_ids(doc_id) == {c.id for c in new_chunks}
        assert store.get([chunks[0].id]) == []
        assert store.document_fingerprint(doc_id) == "fp-a2"
        # the dropped chunk can no longer be found, the new ones can
        hits = store.search(SearchRequest(routes=(dense_route(vectors[chunks[0].id]),), limit=15))
        assert chunks[0].id not in {h.chunk.id for h in hits}
        hits = store.search(
            SearchRequest(routes=(dense_route(extra_vectors[extra[1].id]),), limit=1)
        )
        assert hits[0].chunk == extra[1]

    def test_new_chunk_without_vectors_is_rejected(self, store: QdrantStore, corpus: dict) -> None:
        doc_id, chunks, _ = corpus["a.pdf"]
        _, extra, extra_vectors = make_doc("a.pdf", 1, seed=1, start=20)
        with pytest.raises(ValueError, match=extra[0].id):
            store.write_document(doc_id, chunks + extra, {}, fingerprint="fp-x")
        bad = {extra[0].id: {**extra_vectors[extra[0].id], "mid": np.ones(7, np.float32)}}
        with pytest.raises(ValueError, match="mid"):
            store.write_document(doc_id, chunks + extra, bad, fingerprint="fp-x")
        unknown = {extra[0].id: {"nope": np.ones(16, np.float32)}}
        with pytest.raises(ValueError, match="nope"):
            store.write_document(doc_id, chunks + extra, unknown, fingerprint="fp-x")
        assert store.chunk_ids(doc_id) == {c.id for c in chunks}  # nothing was written
        assert store.document_fingerprint(doc_id) == "fp-a.pdf"

    def test_delete_document(self, store: QdrantStore, corpus: dict) -> None:
        doc_id, _, _ = corpus["b.pdf"]
        assert store.delete_document(doc_id) == 5
        assert store.chunk_ids(doc_id) == set()
        assert store.document_fingerprint(doc_id) is None
        assert store.delete_document(doc_id) == 0
        stats = store.stats()
        assert stats["chunks"] == 10 and stats["documents"] == 2

    def test_document_fingerprint_needs_a_complete_write(
        self, store: QdrantStore, corpus: dict
    ) -> None:
        doc_a, chunks_a, _ = corpus["a.pdf"]
        doc_b, chunks_b, _ = corpus["b.pdf"]
        assert store.document_fingerprint(doc_a) == "fp-a.pdf"
        assert store.document_fingerprint("no-such-document") is None
        backend = store._backend  # simulate interrupted writes
        assert backend is not None
        backend.delete_ids([chunks_a[2].id])  # a chunk is missing
        assert store.document_fingerprint(doc_a) is None
        backend.set_payload([chunks_b[4].id], {"doc_fingerprint": "fp-old"})  # mixed versions
        assert store.document_fingerprint(doc_b) is None
        # rewriting repairs both
        for name in ("a.pdf", "b.pdf"):
            doc_id, chunks, vectors = corpus[name]
            store.write_document(doc_id, chunks, vectors, fingerprint=f"fp-{name}")
            assert store.document_fingerprint(doc_id) == f"fp-{name}"

    def test_reopen_with_other_specs_or_identity(self, store: QdrantStore, corpus: dict) -> None:
        store.open(SPECS, IDENTITY)  # same setup: fine
        changed = tuple(dataclasses.replace(s, dim=8) if s.name == "fine" else s for s in SPECS)
        with pytest.raises(StoreMismatchError) as err:
            store.open(changed, IDENTITY)
        msg = str(err.value)
        assert "'fine'" in msg and "16-d" in msg and "8-d" in msg
        assert "new collection" in msg
        with pytest.raises(StoreMismatchError, match="'extra'.*new"):
            store.open((*SPECS, VectorSpec(name="extra", kind="dense", dim=4)), IDENTITY)
        with pytest.raises(StoreMismatchError) as err:
            store.open(SPECS, {**IDENTITY, "model": "other-embedder"})
        msg = str(err.value)
        assert "embedder identity differs" in msg
        assert "test-embedder" in msg and "other-embedder" in msg
        assert store.stats()["chunks"] == 15  # still usable

    def test_fitted_state_is_stored_once_and_survives_reopen(
        self, store: QdrantStore, make_store: Factory, corpus: dict
    ) -> None:
        assert store.fitted_state("dense") is None
        state = {"kind": "pca", "dim": 2, "components": "AAAA"}
        store.save_fitted_state("dense", state)
        store.save_fitted_state("dense", dict(state))  # the same state again: a no-op
        with pytest.raises(StoreError, match="'dense'.*never replaced"):
            store.save_fitted_state("dense", {**state, "components": "BBBB"})
        assert store.fitted_state("dense") == state
        assert store.fitted_state("other") is None
        store.open(SPECS, IDENTITY)  # re-checking the setup keeps it
        assert store.fitted_state("dense") == state
        if store.backend == "edge":  # a new process: close, then reopen from disk
            store.close()
            again = make_store()
            again.open(SPECS, IDENTITY)
            assert again.fitted_state("dense") == state
            assert again.stats()["chunks"] == 15

    def test_stats_documents_get(self, store: QdrantStore, corpus: dict) -> None:
        stats = store.stats()
        assert stats["chunks"] == 15 and stats["documents"] == 3
        assert stats["backend"] == store.backend
        assert stats["vectors"] == ["coarse", "mid", "fine", "bm25"]
        docs = store.documents()
        assert [d["source"] for d in docs] == ["a.pdf", "b.pdf", "c.pdf"]
        assert all(d["chunks"] == 5 for d in docs)
        assert docs[0]["document_id"] == corpus["a.pdf"][0]
        _, chunks, _ = corpus["c.pdf"]
        wanted = [chunks[3].id, "00000000-0000-0000-0000-000000000000", chunks[0].id]
        assert store.get(wanted) == [chunks[3], chunks[0]]

    def test_lifecycle(self, make_store: Factory) -> None:
        store = make_store()
        store.warm_up()  # no-op before open
        assert not store.is_open
        with store:
            store.open(SPECS, IDENTITY)
            assert store.is_open
        assert not store.is_open
        store.close()  # idempotent
        assert type(store)(**dataclasses.asdict(store)) == store


class TestConfig:
    def test_exactly_one_target(self) -> None:
        with pytest.raises(ConfigError, match="exactly one"):
            QdrantStore()
        with pytest.raises(ConfigError, match="exactly one"):
            QdrantStore(path="/tmp/x", location=":memory:")
        with pytest.raises(ConfigError, match=":memory:"):
            QdrantStore(location="/tmp/somewhere")
        with pytest.raises(ConfigError, match="collection"):
            QdrantStore(location=":memory:", collection="../evil")
        with pytest.raises(ConfigError, match="hnsw_m"):
            QdrantStore(location=":memory:", hnsw_m=-1)

    def test_init_is_cheap_and_round_trips(self, tmp_path: Path) -> None:
        store = QdrantStore(path=str(tmp_path / "db"), collection="c1", hnsw_m=8)
        assert not (tmp_path / "db").exists()
        params = dataclasses.asdict(store)
        json.dumps(params)  # JSON-basic
        assert QdrantStore(**params) == store
        assert store.backend == "edge"
        assert QdrantStore(url="http://localhost:6333").backend == "server"

    def test_bad_requests(self) -> None:
        with QdrantStore(location=":memory:") as store:
            with pytest.raises(Exception, match="not open"):
                store.stats()
            store.open(SPECS, IDENTITY)
            v = np.ones(16, np.float32)
            bad = Route(name="r", stages=(Stage(vector="nope", query=v, limit=3),))
            with pytest.raises(ConfigError, match="nope"):
                store.search(SearchRequest(routes=(bad,)))
            good = Route(name="r", stages=(Stage(vector="coarse", query=v, limit=3),))
            with pytest.raises(ConfigError, match="fusion"):
                bad_fusion: Any = "max"
                store.search(SearchRequest(routes=(good, good), fusion=bad_fusion))
            assert store.search(SearchRequest(routes=(good,))) == []
