"""The data-only write transaction (begin -> add -> commit / abort) and append, on every
backend (edge, memory, server when RAGNEST_QDRANT_URL is set)."""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable

import numpy as np
import pytest
from _storedata import IDENTITY, SPECS, FailOn, embed_elsewhere, make_doc, snapshot

from ragnest.errors import StoreError, StoreUnavailableError
from ragnest.protocols import DocumentWrite
from ragnest.stores import QdrantStore, WriteResult
from ragnest.types import EmbeddedChunk

Factory = Callable[..., QdrantStore]


@pytest.fixture
def store(make_store: Factory) -> QdrantStore:
    s = make_store()
    s.open(SPECS, IDENTITY)
    return s


def points(chunks: list, vectors: dict) -> list[EmbeddedChunk]:
    return [EmbeddedChunk(chunk=c, vectors=vectors[c.id]) for c in chunks]


@pytest.fixture
def stored(store: QdrantStore) -> tuple[str, list, dict]:
    """``a.pdf`` (5 chunks) committed as fingerprint ``v1``, and ``b.pdf`` beside it."""
    doc_id, chunks, vectors = make_doc("a.pdf", 5, seed=1)
    store.write_document(doc_id, chunks, vectors, fingerprint="v1")
    other, other_chunks, other_vectors = make_doc("b.pdf", 3, seed=2)
    store.write_document(other, other_chunks, other_vectors, fingerprint="b1")
    return doc_id, chunks, vectors


def version2(chunks: list) -> tuple[list, dict]:
    """a.pdf's next version: chunks 2.. kept, 0-1 dropped, six new ones (positions 10-15)."""
    _, extra, extra_vectors = make_doc("a.pdf", 6, seed=1, start=10)
    return chunks[2:] + extra, extra_vectors


class TestTransaction:
    def test_begin_add_commit(self, store: QdrantStore) -> None:
        doc_id, chunks, vectors = make_doc("a.pdf", 7, seed=1)
        with store.begin(doc_id, [c.id for c in chunks], fingerprint="v1") as tx:
            assert isinstance(tx, DocumentWrite)
            assert tx.missing == tuple(c.id for c in chunks)  # all of them, in order
            tx.add(points(chunks[:4], vectors))
            assert store.document_fingerprint(doc_id) is None  # not complete yet
            tx.add(points(chunks[4:], vectors))
            assert tx.commit() == WriteResult(added=7, unchanged=0, removed=0)
        assert store.document_fingerprint(doc_id) == "v1"
        assert store.get([c.id for c in chunks]) == chunks
        with pytest.raises(StoreError, match="transaction is over"):
            tx.add(points(chunks[:1], vectors))
        with pytest.raises(StoreError, match="transaction is over"):
            tx.commit()

    def test_same_store_as_write_document(self, make_store: Factory) -> None:
        doc_id, chunks, vectors = make_doc("a.pdf", 6, seed=1)
        one = make_store("one")
        one.open(SPECS, IDENTITY)
        one.write_document(doc_id, chunks, vectors, fingerprint="v1")
        two = make_store("two")
        two.open(SPECS, IDENTITY)
        with two.begin(doc_id, [c.id for c in chunks], fingerprint="v1") as tx:
            for p in points(chunks, vectors)[::-1]:  # any order, one at a time
                tx.add([p])
            tx.commit()
        assert snapshot(one) == snapshot(two)

    def test_missing_lists_exactly_the_new_chunks(self, store: QdrantStore, stored: tuple) -> None:
        doc_id, chunks, _ = stored
        new_chunks, _ = version2(chunks)
        with store.begin(doc_id, [c.id for c in new_chunks], fingerprint="v2") as tx:
            assert tx.missing == tuple(c.id for c in new_chunks[3:])
        with store.begin(doc_id, [c.id for c in chunks], fingerprint="v1") as tx:
            assert tx.missing == ()
            assert tx.commit() == WriteResult(added=0, unchanged=5, removed=0)

    def test_refused_adds_write_nothing(self, store: QdrantStore, stored: tuple) -> None:
        doc_id, chunks, vectors = stored
        new_chunks, new_vectors = version2(chunks)
        _, foreign, foreign_vectors = make_doc("b.pdf", 3, seed=2)
        _, outside, outside_vectors = make_doc("a.pdf", 1, seed=1, start=40)
        with store.begin(doc_id, [c.id for c in new_chunks], fingerprint="v2") as tx:
            tx.add(points(new_chunks[3:4], new_vectors))
            before = snapshot(store)
            with pytest.raises(ValueError, match="not one this write"):  # stored already
                tx.add(points(chunks[2:3], vectors))
            with pytest.raises(ValueError, match="not one this write"):  # not in the version
                tx.add(points(outside, outside_vectors))
            with pytest.raises(ValueError, match="added twice"):
                tx.add(points(new_chunks[3:4], new_vectors))
            with pytest.raises(ValueError, match="added twice"):
                tx.add(points(new_chunks[4:5], new_vectors) * 2)
            with pytest.raises(ValueError, match=f"belongs to document {foreign[0].document_id}"):
                tx.add(points(foreign[:1], foreign_vectors))
            bad = EmbeddedChunk(chunk=new_chunks[5], vectors={"mid": np.ones(3, np.float32)})
            # a batch is all or nothing
            with pytest.raises(ValueError, match="'mid' is dense 32-d"):
                tx.add([*points(new_chunks[4:5], new_vectors), bad])
            assert snapshot(store) == before
            tx.add(points(new_chunks[4:], new_vectors))
            assert tx.commit() == WriteResult(added=6, unchanged=3, removed=2)
        assert store.document_fingerprint(doc_id) == "v2"
        assert store.chunk_ids(doc_id) == {c.id for c in new_chunks}

    def test_commit_with_chunks_never_added_is_refused(
        self, store: QdrantStore, stored: tuple
    ) -> None:
        doc_id, chunks, _ = stored
        original = snapshot(store)
        new_chunks, new_vectors = version2(chunks)
        with store.begin(doc_id, [c.id for c in new_chunks], fingerprint="v2") as tx:
            tx.add(points(new_chunks[3:7], new_vectors))
            during = snapshot(store)
            with pytest.raises(StoreError, match="2 of its 6 new chunks were never added"):
                tx.commit()
            assert snapshot(store) == during  # the refused commit changed nothing
        assert snapshot(store) == original  # and leaving the block aborted the write
        assert store.document_fingerprint(doc_id) == "v1"

    def test_abort_restores_the_previous_version(self, store: QdrantStore, stored: tuple) -> None:
        doc_id, chunks, _ = stored
        original = snapshot(store)
        new_chunks, new_vectors = version2(chunks)
        tx = store.begin(doc_id, [c.id for c in new_chunks], fingerprint="v2")
        tx.add(points(new_chunks[3:], new_vectors))
        tx.abort()
        tx.abort()  # idempotent
        assert snapshot(store) == original  # payloads and vectors, byte for byte
        with pytest.raises(RuntimeError, match="embedder crashed"):  # the same from a with block
            with store.begin(doc_id, [c.id for c in new_chunks], fingerprint="v2") as tx:
                tx.add(points(new_chunks[3:6], new_vectors))
                raise RuntimeError("embedder crashed")
        assert snapshot(store) == original
        assert store.document_fingerprint(doc_id) == "v1"

    def test_failure_on_the_third_batch_keeps_the_previous_version(
        self, store: QdrantStore, stored: tuple
    ) -> None:
        doc_id, chunks, _ = stored
        original = snapshot(store)
        new_chunks, new_vectors = version2(chunks)
        guarded = store._backend
        store._backend = FailOn(guarded, upsert=3, error=lambda: StoreUnavailableError("down"))
        with pytest.raises(StoreUnavailableError, match="down"):
            store.write_document(doc_id, new_chunks, new_vectors, fingerprint="v2", batch_size=2)
        assert store._backend.calls["upsert"] == 3
        store._backend = guarded
        assert snapshot(store) == original
        assert store.document_fingerprint(doc_id) == "v1"

    def test_a_write_whose_answer_was_lost_is_removed_too(
        self, store: QdrantStore, stored: tuple
    ) -> None:
        """An upsert that timed out may still have been applied: the abort removes it."""
        doc_id, chunks, _ = stored
        original = snapshot(store)
        new_chunks, new_vectors = version2(chunks)
        guarded = store._backend
        store._backend = FailOn(
            guarded, upsert=2, once=True, applied=True, error=lambda: StoreUnavailableError("lost")
        )
        with pytest.raises(StoreUnavailableError, match="lost"):
            store.write_document(doc_id, new_chunks, new_vectors, fingerprint="v2", batch_size=2)
        store._backend = guarded
        assert snapshot(store) == original
        assert store.document_fingerprint(doc_id) == "v1"

    def test_failed_commit_is_rolled_back(self, store: QdrantStore, stored: tuple) -> None:
        """The commit marks kept chunks, then removes stale ones: when the removal fails,
        the abort also puts the kept chunks' old markers back."""
        doc_id, chunks, _ = stored
        original = snapshot(store)
        new_chunks, new_vectors = version2(chunks)
        guarded = store._backend
        store._backend = FailOn(
            guarded, delete_ids=1, once=True, error=lambda: StoreUnavailableError("disk full")
        )
        with pytest.raises(StoreUnavailableError, match="disk full"):
            store.write_document(doc_id, new_chunks, new_vectors, fingerprint="v2")
        assert store._backend.calls["delete_ids"] == 2  # the commit's, then the abort's
        store._backend = guarded
        assert snapshot(store) == original
        assert store.document_fingerprint(doc_id) == "v1"

    def test_a_failed_flush_keeps_a_whole_version(self, store: QdrantStore, stored: tuple) -> None:
        """Before the stale chunks are removed a failure aborts; after, the new version
        (complete) stays, and the error still propagates."""
        doc_id, chunks, vectors = stored
        original = snapshot(store)
        new_chunks, new_vectors = version2(chunks)
        guarded = store._backend
        for nth, fingerprint in ((1, "v1"), (2, "v2")):
            store._backend = FailOn(
                guarded, flush=nth, once=True, error=lambda: StoreUnavailableError("flush")
            )
            with pytest.raises(StoreUnavailableError, match="flush"):
                store.write_document(doc_id, new_chunks, new_vectors, fingerprint="v2")
            store._backend = guarded
            assert store.document_fingerprint(doc_id) == fingerprint
        assert store.chunk_ids(doc_id) == {c.id for c in new_chunks}
        store.write_document(doc_id, chunks, vectors, fingerprint="v1")
        assert snapshot(store) == original  # writing the old version back restores it exactly

    def test_a_write_killed_after_its_last_add_is_not_complete(
        self, store: QdrantStore
    ) -> None:
        """Every chunk added, the process killed before the commit: the chunks carry the
        new fingerprint but are not committed (readers drop them), so the document must
        not count as stored; the next write keeps them and commits them."""
        doc_id, chunks, vectors = make_doc("a.pdf", 4, seed=1)
        tx = store.begin(doc_id, [c.id for c in chunks], fingerprint="v1")
        tx.add(points(chunks, vectors))
        tx._done = True  # killed here: neither commit nor abort ran
        assert store.document_fingerprint(doc_id) is None
        assert [d.fingerprint for d in store.catalog(document_id=doc_id)] == [None]
        assert [d.fingerprint for d in store.catalog()] == [None]
        with store.begin(doc_id, [c.id for c in chunks], fingerprint="v1") as again:
            assert again.missing == ()  # nothing to embed again
            assert again.commit() == WriteResult(added=0, unchanged=4, removed=0)
        assert store.document_fingerprint(doc_id) == "v1"
        assert [d.fingerprint for d in store.catalog(document_id=doc_id)] == ["v1"]
        assert [d.fingerprint for d in store.catalog()] == ["v1"]

    def test_a_failing_abort_does_not_mask_the_error(
        self, store: QdrantStore, stored: tuple, caplog: pytest.LogCaptureFixture
    ) -> None:
        doc_id, chunks, _ = stored
        new_chunks, new_vectors = version2(chunks)
        guarded = store._backend
        calls = iter(("first", "second", "third"))
        store._backend = FailOn(
            guarded, upsert=2, delete_ids=1, error=lambda: StoreUnavailableError(next(calls))
        )
        with caplog.at_level(logging.WARNING, logger="ragnest.stores._write"):
            with pytest.raises(StoreUnavailableError, match="^first$"):
                store.write_document(
                    doc_id, new_chunks, new_vectors, fingerprint="v2", batch_size=2
                )
        assert "removing the aborted write's points failed too" in caplog.text
        store._backend = guarded
        # the server came back: nothing is marked as stored that is not
        assert store.document_fingerprint(doc_id) is None
        store.write_document(doc_id, new_chunks, new_vectors, fingerprint="v2")  # repairs it
        assert store.document_fingerprint(doc_id) == "v2"


class TestAppend:
    def test_append_is_idempotent_and_keeps_other_chunks(
        self, store: QdrantStore, stored: tuple
    ) -> None:
        doc_id, chunks, _ = stored
        original = snapshot(store)
        _, turns, turn_vectors = make_doc("a.pdf", 3, seed=1, start=20)
        assert store.append(doc_id, points(turns[:2], turn_vectors)) == WriteResult(2, 0, 0)
        again = store.append(doc_id, points(turns, turn_vectors))  # a retried append + one more
        assert again == WriteResult(added=1, unchanged=2, removed=0)
        after = snapshot(store)
        assert {k: v for k, v in after.items() if k in original} == original
        assert store.chunk_ids(doc_id) == {c.id for c in chunks + turns}
        assert store.get([t.id for t in turns]) == turns
        assert store.append(doc_id, []) == WriteResult(0, 0, 0)
        assert snapshot(store) == after

    def test_a_failed_replace_of_an_appended_document_restores_it(
        self, store: QdrantStore, stored: tuple
    ) -> None:
        """Appended chunks carry no fingerprint: an aborted commit, which had marked them,
        takes the marker keys off again."""
        doc_id, chunks, _ = stored
        _, turns, turn_vectors = make_doc("a.pdf", 2, seed=1, start=20)
        store.append(doc_id, points(turns, turn_vectors))
        original = snapshot(store)
        assert "doc_fingerprint" not in original[turns[0].id][0]
        _, extra, extra_vectors = make_doc("a.pdf", 1, seed=1, start=30)
        guarded = store._backend
        store._backend = FailOn(
            guarded, flush=1, once=True, error=lambda: StoreUnavailableError("x")
        )
        with pytest.raises(StoreUnavailableError):
            store.write_document(doc_id, chunks + turns + extra, extra_vectors, fingerprint="v2")
        store._backend = guarded
        assert snapshot(store) == original
        store.write_document(doc_id, chunks + turns + extra, extra_vectors, fingerprint="v2")
        assert store.document_fingerprint(doc_id) == "v2"  # a file ingest adopts them

    def test_append_refuses_bad_points(self, store: QdrantStore, stored: tuple) -> None:
        doc_id, _, _ = stored
        before = snapshot(store)
        _, foreign, foreign_vectors = make_doc("c.pdf", 1, seed=3)
        with pytest.raises(ValueError, match="belongs to document"):
            store.append(doc_id, points(foreign, foreign_vectors))
        _, turns, turn_vectors = make_doc("a.pdf", 2, seed=1, start=20)
        bad = EmbeddedChunk(chunk=turns[1], vectors={"nope": np.ones(16, np.float32)})
        with pytest.raises(ValueError, match="unknown vector 'nope'"):
            store.append(doc_id, [*points(turns[:1], turn_vectors), bad])
        with pytest.raises(ValueError, match="duplicate chunk ids"):
            store.append(doc_id, points(turns[:1], turn_vectors) * 2)
        assert snapshot(store) == before


@pytest.fixture(scope="module")
def remote_points() -> list[EmbeddedChunk]:
    """Chunks and vectors computed in a spawned process, as a Ray worker would."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(embed_elsewhere, ("a.pdf", 9, 1))


def test_vectors_from_another_process_store_the_same(
    make_store: Factory, remote_points: list[EmbeddedChunk]
) -> None:
    doc_id, chunks, vectors = make_doc("a.pdf", 9, seed=1)
    assert [p.chunk for p in remote_points] == chunks
    local = make_store("local")
    local.open(SPECS, IDENTITY)
    local.write_document(doc_id, chunks, vectors, fingerprint="v1")
    remote = make_store("remote")
    remote.open(SPECS, IDENTITY)
    with remote.begin(doc_id, [p.chunk.id for p in remote_points], fingerprint="v1") as tx:
        need = set(tx.missing)
        batch = [p for p in remote_points if p.chunk.id in need]
        for start in range(0, len(batch), 4):
            tx.add(batch[start : start + 4])
        assert tx.commit() == WriteResult(added=9, unchanged=0, removed=0)
    assert snapshot(remote) == snapshot(local)
    assert remote.document_fingerprint(doc_id) == "v1"
