"""Qdrant Edge specifics: on-disk layout, persistence across processes, the directory lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _storedata import IDENTITY, SPECS, dense_route, make_doc

from ragnest.errors import StoreError, StoreLockedError, StoreMismatchError
from ragnest.stores import QdrantStore
from ragnest.types import SearchRequest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def run_py(code: str, *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(REPO),
    )


def test_layout_and_metadata(tmp_path: Path) -> None:
    db = tmp_path / "db"
    with QdrantStore(path=str(db), collection="manuals") as store:
        store.open(SPECS, IDENTITY)
        assert (db / ".ragnest.lock").read_text().strip() == str(os.getpid())
        meta = json.loads((db / "manuals.ragnest.json").read_text())
        assert meta["identity"] == IDENTITY
        assert [s["name"] for s in meta["specs"]] == ["coarse", "mid", "fine", "bm25"]
        assert meta["ragnest_version"]
        edge = json.loads((db / "manuals" / "edge_config.json").read_text())
        assert edge["vectors"]["coarse"]["hnsw_config"]["m"] == 16
        assert edge["vectors"]["fine"]["hnsw_config"]["m"] == 0
        assert edge["vectors"]["fine"]["multivector_config"]["comparator"] == "max_sim"
        assert edge["sparse_vectors"]["bm25"]["modifier"] == "idf"
        assert store.stats()["path"] == str(db)
        assert store.optimize() is False  # tiny collection: nothing to build, and cheap
    assert (db / ".ragnest.lock").read_text() == ""  # released


def test_second_handle_in_same_process_is_refused(tmp_path: Path) -> None:
    """A second *writer* (mode='write'; readers are never refused, see test_concurrency)."""
    first = QdrantStore(path=str(tmp_path / "db"), mode="write")
    first.open(SPECS, IDENTITY)
    second = QdrantStore(path=str(tmp_path / "db"), mode="write")
    with pytest.raises(StoreLockedError) as err:
        second.open(SPECS, IDENTITY)
    assert str(tmp_path / "db") in str(err.value) and str(os.getpid()) in str(err.value)
    first.close()
    second.open(SPECS, IDENTITY)  # free again
    second.close()


def test_mismatch_on_reopen_releases_the_lock(tmp_path: Path) -> None:
    with QdrantStore(path=str(tmp_path / "db")) as store:
        store.open(SPECS, IDENTITY)
    other = QdrantStore(path=str(tmp_path / "db"))
    with pytest.raises(StoreMismatchError, match="model 'test-embedder' .stored. vs 'x' .now."):
        other.open(SPECS, {**IDENTITY, "model": "x"})
    with QdrantStore(path=str(tmp_path / "db")) as again:  # the failed open left no lock behind
        again.open(SPECS, IDENTITY)


def test_shard_without_metadata_is_refused(tmp_path: Path) -> None:
    doc_id, chunks, vectors = make_doc("a.pdf", 2, seed=1)
    with QdrantStore(path=str(tmp_path / "db")) as store:
        store.open(SPECS, IDENTITY)
        store.write_document(doc_id, chunks, vectors, fingerprint="f")
    (tmp_path / "db" / "ragnest.ragnest.json").unlink()
    with pytest.raises(StoreError, match="no ragnest metadata"):
        QdrantStore(path=str(tmp_path / "db")).open(SPECS, IDENTITY)


def test_data_persists_across_processes(tmp_path: Path) -> None:
    db = tmp_path / "db"
    proc = run_py(
        f"""
        from _storedata import IDENTITY, SPECS, make_doc
        from ragnest.stores import QdrantStore
        with QdrantStore(path={str(db)!r}) as store:
            store.open(SPECS, IDENTITY)
            doc_id, chunks, vectors = make_doc("a.pdf", 4, seed=1)
            print(store.write_document(doc_id, chunks, vectors, fingerprint="fp1"))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "added=4" in proc.stdout
    doc_id, chunks, vectors = make_doc("a.pdf", 4, seed=1)
    with QdrantStore(path=str(db)) as store:
        store.open(SPECS, IDENTITY)
        assert store.document_fingerprint(doc_id) == "fp1"
        assert store.chunk_ids(doc_id) == {c.id for c in chunks}
        hits = store.search(SearchRequest(routes=(dense_route(vectors[chunks[2].id]),), limit=1))
        assert hits[0].chunk == chunks[2]
        assert store.write_document(doc_id, chunks, {}, fingerprint="fp1").added == 0


def test_lock_holds_against_another_process(tmp_path: Path) -> None:
    db = tmp_path / "db"
    doc_a, chunks_a, vectors_a = make_doc("a.pdf", 3, seed=1)
    doc_b, chunks_b, vectors_b = make_doc("b.pdf", 3, seed=2)
    writer = QdrantStore(path=str(db))
    writer.open(SPECS, IDENTITY)
    writer.write_document(doc_a, chunks_a, vectors_a, fingerprint="fa")
    proc = run_py(
        f"""
        import sys
        from _storedata import IDENTITY, SPECS
        from ragnest.errors import StoreLockedError
        from ragnest.stores import QdrantStore
        try:
            QdrantStore(path={str(db)!r}, mode="write").open(SPECS, IDENTITY)
        except StoreLockedError as err:
            print("LOCKED:", err)
            sys.exit(3)
        print("OPENED")
        """
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert str(db) in proc.stdout and f"process {os.getpid()}" in proc.stdout
    # the writer is unharmed: it still writes, flushes and reads back everything
    result = writer.write_document(doc_b, chunks_b, vectors_b, fingerprint="fb")
    assert result.added == 3
    writer.close()
    with QdrantStore(path=str(db)) as store:
        store.open(SPECS, IDENTITY)
        assert store.stats()["chunks"] == 6
        assert store.document_fingerprint(doc_a) == "fa"
        assert store.document_fingerprint(doc_b) == "fb"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE + SIGXFSZ")
def test_a_full_disk_stops_the_write_and_keeps_what_was_stored(tmp_path: Path) -> None:
    """The real engine on a "full disk": a file-size limit makes its writes fail with
    EFBIG, as ENOSPC would. The write stops with StoreUnavailableError naming the store;
    once space is back, the earlier document is intact and the failed one not marked."""
    db = tmp_path / "db"
    proc = run_py(
        f"""
        import resource, signal
        from _storedata import IDENTITY, SPECS, make_doc
        from ragnest.errors import StoreUnavailableError
        from ragnest.stores import QdrantStore
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write, not a killed process
        store = QdrantStore(path={str(db)!r})
        store.open(SPECS, IDENTITY)
        a = make_doc("a.pdf", 3, seed=1)
        store.write_document(a[0], a[1], a[2], fingerprint="fa")
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, resource.RLIM_INFINITY))
        b = make_doc("b.pdf", 50, seed=2)
        try:
            store.write_document(b[0], b[1], b[2], fingerprint="fb")
        except StoreUnavailableError as err:
            print("UNAVAILABLE:", err)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        print("A:", store.document_fingerprint(a[0]), "B:", store.document_fingerprint(b[0]))
        store.close()
        """
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"UNAVAILABLE: collection 'ragnest' at {db} is unavailable" in proc.stdout
    assert "Qdrant Edge engine error" in proc.stdout and "File too large" in proc.stdout
    assert "A: fa B: None" in proc.stdout
    doc_a, chunks_a, _ = make_doc("a.pdf", 3, seed=1)
    doc_b, _, _ = make_doc("b.pdf", 50, seed=2)
    with QdrantStore(path=str(db)) as store:  # and so it stays after a reopen
        store.open(SPECS, IDENTITY)
        assert store.document_fingerprint(doc_a) == "fa"
        assert store.chunk_ids(doc_a) == {c.id for c in chunks_a}
        assert store.document_fingerprint(doc_b) is None


@pytest.mark.parametrize("datatype", ["turbo4", "turbo8"])
def test_turbo_datatype_keeps_only_codes_and_ranks_like_float(
    tmp_path: Path, datatype: str
) -> None:
    """``datatype: turbo4`` maps to Qdrant's TurboQuant storage: no float originals kept."""
    import numpy as np

    from ragnest.ladder.pooling import l2_normalize
    from ragnest.types import Chunk, Route, Stage, VectorSpec, make_chunk_id

    rng = np.random.default_rng(0)
    specs = [
        VectorSpec(name="coarse", kind="dense", dim=32, index="hnsw"),
        VectorSpec(name="fine", kind="multi", dim=32, datatype=datatype),
    ]
    pages = l2_normalize(rng.normal(size=(40, 12, 32)))
    with QdrantStore(path=str(tmp_path / "db")) as store:
        store.open(specs, {"model": "turbo-test"})
        assert store.vector_config()["fine"]["datatype"].lower() == datatype
        chunks, vectors = [], {}
        for p in range(40):
            cid = make_chunk_id("doc", p, f"page {p}")
            chunks.append(
                Chunk(
                    id=cid,
                    document_id="doc",
                    kind="page",
                    text=f"page {p}",
                    source="doc.pdf",
                    page=p + 1,
                )
            )
            vectors[cid] = {"coarse": pages[p].mean(0), "fine": pages[p]}
        store.write_document("doc", chunks, vectors, fingerprint="fp")
        hits = 0
        for p in range(0, 40, 4):
            q = l2_normalize(pages[p, :4] + 0.3 * rng.normal(size=(4, 32)) / np.sqrt(32))
            route = Route(
                name="r",
                stages=(
                    Stage(vector="coarse", query=q.mean(0), limit=40),
                    Stage(vector="fine", query=q, limit=3),
                ),
            )
            top = store.search(SearchRequest(routes=(route,), limit=3))
            hits += top[0].chunk.page == p + 1
        assert hits == 10
