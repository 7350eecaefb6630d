"""Readers of an Edge store: any number at once, during a write too, never a broken writer.

Qdrant Edge (0.9) allows one opener per shard: a second ``EdgeShard.load`` of a shard in
use rewrites files under the first opener (measured: its next flush fails with "Tracker
journal ... is shorter than expected"). So readers never load the live shard; they serve
private copies taken between the writer's changes (``_commit``, ``_replica``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from _storedata import IDENTITY, SPECS, dense_route, make_doc

from ragnest.errors import StoreError, StoreLockedError
from ragnest.stores import QdrantStore
from ragnest.stores._commit import CommitLock
from ragnest.stores._replica import READ_DIR, SLOTS_KEPT
from ragnest.types import EmbeddedChunk, SearchRequest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def run_py(code: str, *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=False,
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=str(REPO))


def write(store: QdrantStore, name: str, n: int, seed: int, fp: str) -> str:
    doc_id, chunks, vectors = make_doc(name, n, seed=seed)
    store.write_document(doc_id, chunks, vectors, fingerprint=fp)
    return doc_id


def reader(path: Path, **kwargs: Any) -> QdrantStore:
    store = QdrantStore(path=str(path), mode="read", **kwargs)
    store.open(SPECS, IDENTITY)
    return store


def committed_view(store: QdrantStore) -> dict[str, tuple[str, int, int]]:
    """document -> (fingerprint, chunks it should have, chunks present), in ONE read."""
    store.stats()  # a public read: a reader moves to the latest committed data here
    rows = store._require().payloads_where([], ["document_id", "doc_fingerprint", "doc_chunks"])
    docs: dict[str, list[dict]] = defaultdict(list)
    for _, payload in rows:
        docs[payload["document_id"]].append(payload)
    out = {}
    for doc, payloads in docs.items():
        marks = {(p.get("doc_fingerprint"), p.get("doc_chunks")) for p in payloads}
        assert len(marks) == 1, f"document {doc} mixes versions: {marks}"
        (fp, total), = marks
        out[doc] = (fp, total, len(payloads))
    return out


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "db"
    with QdrantStore(path=str(path)) as store:
        store.open(SPECS, IDENTITY)
        write(store, "a.pdf", 4, 1, "fa")
    return path


# ---------------------------------------------------------------------- paths
def test_reading_a_missing_store_is_an_error_that_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "deeper" / "db"
    with pytest.raises(StoreError, match=r"no store at .*deeper/db.*run `ragnest ingest` first"):
        reader(path)
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "empty").mkdir()  # a folder without this collection, but another one
    with QdrantStore(path=str(tmp_path / "empty"), collection="other") as other:
        other.open(SPECS, IDENTITY)
    with pytest.raises(StoreError, match="collection 'ragnest' .it holds 'other'."):
        reader(tmp_path / "empty")


@pytest.mark.parametrize("mode", ["read", "write", "auto"])
def test_a_store_path_that_is_a_file_is_a_clear_error(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "store.txt"
    path.write_text("not a store")
    store = QdrantStore(path=str(path), mode=mode)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match=r"store path .*store.txt is a file, not a directory"):
        store.open(SPECS, IDENTITY)
    assert path.read_text() == "not a store"


def test_a_reader_refuses_to_write(db: Path) -> None:
    with reader(db) as store:
        with pytest.raises(StoreError, match=r"open for reading \(mode='read'\)"):
            write(store, "b.pdf", 2, 2, "fb")
        with pytest.raises(StoreError, match="open for reading"):
            store.prepare_write()
        assert store.stats()["chunks"] == 4


# ---------------------------------------------------------------------- many readers
def test_readers_and_a_writer_at_once_in_one_process(db: Path) -> None:
    writer = QdrantStore(path=str(db), mode="write")
    writer.open(SPECS, IDENTITY)
    readers = [reader(db) for _ in range(3)]
    try:
        doc_b = write(writer, "b.pdf", 3, 2, "fb")
        for r in readers:  # each call serves the latest committed state
            assert r.document_fingerprint(doc_b) == "fb"
            assert r.stats()["chunks"] == 7
        _, chunks, vectors = make_doc("b.pdf", 3, seed=2)
        hits = readers[0].search(SearchRequest(routes=(dense_route(vectors[chunks[1].id]),),
                                               limit=1))
        assert hits[0].chunk == chunks[1]
        # the readers hold copies under .ragnest-read, never the live shard
        slots = [p for p in (db / READ_DIR / "ragnest").iterdir() if p.name.isdigit()]
        assert len(slots) >= 3
    finally:
        for r in readers:
            r.close()
        writer.close()
    # released: only the kept slots stay
    slots = [p for p in (db / READ_DIR / "ragnest").iterdir() if p.name.isdigit()]
    assert sorted(p.name for p in slots) == [str(i) for i in range(SLOTS_KEPT)]


def test_readers_never_load_the_live_shard(db: Path, monkeypatch) -> None:
    """The engine hazard: a second ``EdgeShard.load`` of a shard in use rewrites its files
    under the first opener. A reader loads only its own copy, even with a writer open."""
    from ragnest.stores._edge import _backend

    loaded: list[str] = []
    real = _backend.EdgeShard.load

    class Spy:
        @staticmethod
        def load(path: str, *args: Any) -> Any:
            loaded.append(path)
            return real(path, *args)

    monkeypatch.setattr(_backend, "EdgeShard", Spy)
    with QdrantStore(path=str(db), mode="write") as writer:
        writer.open(SPECS, IDENTITY)
        assert loaded == [str(db / "ragnest")]  # the writer's own load
        with reader(db) as r1, reader(db) as r2:
            write(writer, "b.pdf", 2, 2, "fb")
            assert r1.stats()["chunks"] == r2.stats()["chunks"] == 6
    assert loaded.count(str(db / "ragnest")) == 1
    assert all(Path(p).is_relative_to(db / READ_DIR) for p in loaded[1:]) and len(loaded) >= 3


def test_auto_mode_reads_a_copy_until_its_first_write(db: Path) -> None:
    notebook = QdrantStore(path=str(db))  # mode="auto", the default
    notebook.open(SPECS, IDENTITY)
    assert notebook.stats()["chunks"] == 4  # a reader: it blocks nobody
    other = QdrantStore(path=str(db), mode="write")
    other.open(SPECS, IDENTITY)  # the writer's lock is free
    with pytest.raises(StoreLockedError, match="is locked by this process"):
        write(notebook, "b.pdf", 2, 2, "fb")  # its first write needs that lock
    other.close()
    write(notebook, "b.pdf", 2, 2, "fb")  # now it is the writer
    with pytest.raises(StoreLockedError):
        QdrantStore(path=str(db), mode="write").open(SPECS, IDENTITY)
    notebook.close()
    with reader(db) as store:
        assert store.stats()["chunks"] == 6


def test_a_reader_sees_the_last_committed_version_during_a_write(db: Path) -> None:
    doc_a, chunks_v1, _ = make_doc("a.pdf", 4, seed=1)
    _, chunks_v2, vectors_v2 = make_doc("a.pdf", 6, seed=9, start=2)  # pages 3..8
    with QdrantStore(path=str(db), mode="write") as writer:
        writer.open(SPECS, IDENTITY)
        with writer.begin(doc_a, [c.id for c in chunks_v2], fingerprint="fa2") as tx:
            new = [c for c in chunks_v2 if c.id in set(tx.missing)]
            tx.add([EmbeddedChunk(chunk=c, vectors=vectors_v2[c.id]) for c in new[:2]])
            with reader(db) as mid_write:  # half of version 2 is written, not committed
                assert committed_view(mid_write) == {doc_a: ("fa", 4, 4)}
                assert mid_write.chunk_ids(doc_a) == {c.id for c in chunks_v1}
                tx.add([EmbeddedChunk(chunk=c, vectors=vectors_v2[c.id]) for c in new[2:]])
                tx.commit()
                # the same reader's next call moves to the committed version 2
                assert committed_view(mid_write) == {doc_a: ("fa2", 6, 6)}
                assert mid_write.chunk_ids(doc_a) == {c.id for c in chunks_v2}


def test_a_killed_writer_leaves_readers_the_last_committed_state(db: Path) -> None:
    doc_a, chunks_v1, _ = make_doc("a.pdf", 4, seed=1)
    proc = run_py(f"""
        import os
        from _storedata import IDENTITY, SPECS, make_doc
        from ragnest.stores import QdrantStore
        from ragnest.types import EmbeddedChunk
        store = QdrantStore(path={str(db)!r}, mode="write")
        store.open(SPECS, IDENTITY)
        doc_id, chunks, vectors = make_doc("a.pdf", 8, seed=5)
        tx = store.begin(doc_id, [c.id for c in chunks], fingerprint="fa2")
        tx.add([EmbeddedChunk(chunk=c, vectors=vectors[c.id]) for c in chunks[4:7]])
        os.kill(os.getpid(), 9)  # SIGKILL mid-write: no abort, no flush, no unlock
        """)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with reader(db) as store:
        assert committed_view(store) == {doc_a: ("fa", 4, 4)}
        assert store.chunk_ids(doc_a) == {c.id for c in chunks_v1}
    with QdrantStore(path=str(db), mode="write") as writer:  # the re-run completes it
        writer.open(SPECS, IDENTITY)
        write(writer, "a.pdf", 8, 5, "fa2")
    with reader(db) as store:
        assert committed_view(store) == {doc_a: ("fa2", 8, 8)}


def test_threads_share_one_reader_while_a_writer_writes(db: Path) -> None:
    """A server's threads on one read-only store: a copy is never swapped under a call."""
    store = reader(db)
    _, chunks, vectors = make_doc("a.pdf", 4, seed=1)
    route = dense_route(vectors[chunks[2].id])
    errors: list[BaseException] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                hits = store.search(SearchRequest(routes=(route,), limit=2, stage_scores=True))
                assert hits[0].chunk == chunks[2] and "coarse" in hits[0].scores_by_stage
                assert store.stats()["chunks"] >= 4
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append(err)
                return
            time.sleep(0.005)

    threads = [threading.Thread(target=serve) for _ in range(3)]
    for t in threads:
        t.start()
    with QdrantStore(path=str(db), mode="write") as writer:
        writer.open(SPECS, IDENTITY)
        for i in range(6):
            write(writer, f"n{i}.pdf", 3, 10 + i, "f")
            time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors[0]
    assert store.stats()["chunks"] == 4 + 6 * 3  # alone again: it moves to the latest data
    store.close()


# ---------------------------------------------------------------------- waiting
def test_a_reader_waits_for_a_change_in_progress_then_says_why(db: Path) -> None:
    with CommitLock(db).exclusive(logical=True):  # what the writer holds while it changes files
        t0 = time.monotonic()
        with pytest.raises(StoreLockedError, match=r"did not reach a committed state within "
                                                   r"0.3 s; try again.*--wait SECONDS"):
            reader(db, wait=0.3)
        assert 0.25 < time.monotonic() - t0 < 3
    held = threading.Event()

    def change_for_half_a_second() -> None:
        with CommitLock(db).exclusive(logical=True):
            held.set()
            time.sleep(0.5)

    thread = threading.Thread(target=change_for_half_a_second)
    thread.start()
    held.wait(5)
    t0 = time.monotonic()
    with reader(db, wait=10) as store:  # waits for the change to end, then reads
        assert time.monotonic() - t0 >= 0.3
        assert store.stats()["chunks"] == 4
    thread.join()


def test_copies_are_reused_until_the_data_changes(db: Path, monkeypatch) -> None:
    from ragnest.stores import _replica

    copies: list[Path] = []
    real = _replica.copy_tree
    monkeypatch.setattr(_replica, "copy_tree", lambda s, d: (copies.append(d), real(s, d)))
    for _ in range(3):
        with reader(db) as store:
            assert store.stats()["chunks"] == 4
    assert len(copies) == 1  # the slot's copy still holds the live generation
    with QdrantStore(path=str(db), mode="write") as writer:
        writer.open(SPECS, IDENTITY)
        writer.optimize()  # other files, same data: the copy stays usable
    with reader(db) as store:
        assert store.stats()["chunks"] == 4
    with QdrantStore(path=str(db), mode="write") as writer:
        writer.open(SPECS, IDENTITY)
        write(writer, "b.pdf", 2, 2, "fb")
    with reader(db) as store:
        assert store.stats()["chunks"] == 6
    assert len(copies) in (2, 3) and copies[-1].parent.name == "0"


# ---------------------------------------------------------------------- real processes
def test_reader_processes_during_writes_never_see_half_a_document_nor_break_the_writer(
    db: Path,
) -> None:
    """The known hazard: a second opener while the writer writes. Here three reader
    processes open the store over and over while a writer process replaces, aborts and
    deletes documents; every reader sees whole documents only, and the writer finishes."""
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
        import random, time
        from _storedata import IDENTITY, SPECS, make_doc
        from ragnest.stores import QdrantStore
        from ragnest.types import EmbeddedChunk
        rng = random.Random(0)
        with QdrantStore(path={str(db)!r}, mode="write") as store:
            store.open(SPECS, IDENTITY)
            t0, n = time.time(), 0
            while time.time() - t0 < 4:
                name, v = f"d{{rng.randrange(8)}}.pdf", rng.randrange(1, 9)
                if rng.random() < 0.1:
                    store.delete_document(make_doc(name, 1, seed=v)[0])
                    continue
                doc_id, chunks, vectors = make_doc(name, rng.randrange(2, 16), seed=v)
                with store.begin(doc_id, [c.id for c in chunks], fingerprint=f"f{{v}}") as tx:
                    new = [c for c in chunks if c.id in set(tx.missing)]
                    for i in range(0, len(new), 3):
                        tx.add([EmbeddedChunk(chunk=c, vectors=vectors[c.id])
                                for c in new[i : i + 3]])
                        time.sleep(0.002)
                    if rng.random() < 0.1:
                        continue  # leaving the block aborts
                    tx.commit()
                n += 1
            store.optimize()
        print("WRITER DONE", n)
        """)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)])},
        cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    readers = [subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
        import time
        from test_readers import committed_view, reader
        from pathlib import Path
        t0, opens = time.time(), 0
        while time.time() - t0 < 3.5:
            with reader(Path({str(db)!r}), wait=10) as store:
                for doc, (fp, total, present) in committed_view(store).items():
                    assert total == present, (doc, fp, total, present)
            opens += 1
        print("READER OK", opens)
        """)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)])},
        cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in [writer, *readers]]
    assert writer.returncode == 0 and "WRITER DONE" in outs[0][0], outs[0][1][-2000:]
    for p, (out, errs) in zip(readers, outs[1:]):
        assert p.returncode == 0 and "READER OK" in out, errs[-2000:]
    with reader(db) as store:  # and what the writer left is whole
        assert all(t == n for _, t, n in committed_view(store).values())


def test_a_reader_collected_by_the_garbage_collector_starts_no_thread(tmp_path: Path) -> None:
    """``__del__`` removes a discarded copy itself: a finalizer may run at any point of
    another thread's start, and starting a thread there can hang the process."""
    from ragnest.stores._replica import _remove_later, removing_inline

    trash = tmp_path / "trash"
    (trash / "segments").mkdir(parents=True)
    (trash / "segments" / "data").write_bytes(b"x" * 1000)
    started: list[threading.Thread] = []
    real = threading.Thread.start

    def spy(self: threading.Thread) -> None:
        started.append(self)
        real(self)

    threading.Thread.start = spy  # type: ignore[method-assign]
    try:
        with removing_inline():
            _remove_later([trash])
    finally:
        threading.Thread.start = real  # type: ignore[method-assign]
    assert not trash.exists() and started == []
    # outside a finalizer the removal runs in the background
    trash.mkdir()
    _remove_later([trash])
    for _ in range(100):
        if not trash.exists():
            break
        time.sleep(0.02)
    assert not trash.exists()
