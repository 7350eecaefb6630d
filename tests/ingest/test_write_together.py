"""Small documents written together: one upsert and one flush for a group, the same stored
result as one by one, and each document still committed whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragnest import Pipeline
from ragnest.collection import open_collection
from ragnest.config import IngestConfig
from ragnest.embedders.bm25 import Bm25Embedder
from ragnest.errors import EmbeddingError, StoreUnavailableError
from ragnest.ingest.writer import DocumentWriter, Parsed
from ragnest.parsers import TextParser
from ragnest.stores import QdrantStore
from ragnest.stores._edge import EdgeBackend
from ragnest.stores._write import add_together, commit_together
from ragnest.types import Chunk, Source, make_chunk_id


def _corpus(root: Path, n: int = 12) -> Path:
    root.mkdir()
    for i in range(n):
        (root / f"note{i:02d}.md").write_text(
            f"# Note {i}\n\nThe boiler of unit {i} holds {i + 1} litres.\n\n"
            f"## Care\n\nDescale unit {i} every {i + 2} weeks.\n")
    return root


def _pipeline(store: Path, batch_size: int = 64) -> Pipeline:
    return Pipeline(parsers=[TextParser()], embedders={"bm25": Bm25Embedder()},
                    store=QdrantStore(path=str(store)),
                    ingest=IngestConfig(batch_size=batch_size, workers=1))


def _stored(rag: Pipeline) -> dict[str, tuple[str | None, set[str]]]:
    backend = rag.store._require()
    rows = dict(backend.payloads_where([], None))
    out: dict[str, tuple[str | None, set[str]]] = {}
    for pid, payload in rows.items():
        doc = payload["document_id"]
        out.setdefault(doc, (rag.store.document_fingerprint(doc), set()))[1].add(pid)
    return out


def _count(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls = [0]
    real = getattr(EdgeBackend, name)

    def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(EdgeBackend, name, counted)
    return calls


def test_small_documents_share_upserts_and_flushes(tmp_path: Path, monkeypatch) -> None:
    docs = _corpus(tmp_path / "docs")
    with _pipeline(tmp_path / "one", batch_size=1) as rag:  # every document alone
        rag.ingest([docs], progress=False)
        alone = _stored(rag)
    upserts, flushes = _count(monkeypatch, "upsert"), _count(monkeypatch, "flush")
    with _pipeline(tmp_path / "group") as rag:
        report = rag.ingest([docs], progress=False)
        together = _stored(rag)
    assert report.ok and [d.status for d in report.documents] == ["added"] * 12
    assert [Path(d.path).name for d in report.documents] == sorted(p.name for p in docs.iterdir())
    assert together == alone and len(together) == 12
    assert all(fp is not None for fp, _ in together.values())
    assert upserts[0] == 1 and flushes[0] <= 2  # one group (and the optimize at the end)


def test_an_embedder_failing_on_one_document_skips_only_that_one(tmp_path, monkeypatch):
    docs = _corpus(tmp_path / "docs", 5)
    (docs / "note03.md").write_text("# Bad\n\nPOISON in this note.\n")
    real = Bm25Embedder.embed_documents

    def picky(self, chunks):  # type: ignore[no-untyped-def]
        if any("POISON" in c.text for c in chunks):
            raise EmbeddingError("bm25: cannot embed (injected)")
        return real(self, chunks)

    monkeypatch.setattr(Bm25Embedder, "embed_documents", picky)
    with _pipeline(tmp_path / "db") as rag:
        report = rag.ingest([docs], progress=False)
        stored = _stored(rag)
    assert [Path(s.path).name for s in report.skipped] == ["note03.md"]
    assert sorted(Path(d.path).name for d in report.documents) == [
        "note00.md", "note01.md", "note02.md", "note04.md"]
    bad = Source.from_path(docs / "note03.md").document_id
    assert bad not in stored and len(stored) == 4


def _chunks(doc: str, texts: list[str]) -> list[Chunk]:
    return [Chunk(id=make_chunk_id(doc, i, t), document_id=doc, kind="text", text=t)
            for i, t in enumerate(texts)]


def test_a_failed_group_commit_leaves_every_previous_version(tmp_path, monkeypatch) -> None:
    embedders = {"bm25": Bm25Embedder()}
    store = QdrantStore(path=str(tmp_path / "db"))
    open_collection(store, embedders)
    writer = DocumentWriter(store, embedders)
    v1 = [Parsed(f"{d}.txt", d, _chunks(d, [f"{d} first version", "shared words"]), "fp1")
          for d in ("a", "b")]
    assert [r.status for r in writer.write_many(v1)] == ["added", "added"]
    before = {d: store.chunk_ids(d) for d in ("a", "b")}
    calls = [0]
    real = EdgeBackend.delete_payload

    def failing(self, ids, keys):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] == 2:  # document b's commit marks
            raise StoreUnavailableError("disk full (injected)")
        return real(self, ids, keys)

    monkeypatch.setattr(EdgeBackend, "delete_payload", failing)
    v2 = [Parsed(f"{d}.txt", d, _chunks(d, [f"{d} second version", "more words"]), "fp2")
          for d in ("a", "b")]
    with pytest.raises(StoreUnavailableError):
        writer.write_many(v2)
    monkeypatch.undo()
    for d in ("a", "b"):
        assert store.document_fingerprint(d) == "fp1"
        assert store.chunk_ids(d) == before[d]
    assert [r.status for r in writer.write_many(v2)] == ["updated", "updated"]
    assert all(store.document_fingerprint(d) == "fp2" for d in ("a", "b"))
    store.close()


def test_group_helpers_check_their_input(tmp_path: Path) -> None:
    embedders = {"bm25": Bm25Embedder()}
    one, two = (QdrantStore(path=str(tmp_path / n)) for n in ("one", "two"))
    for store in (one, two):
        open_collection(store, embedders)
    a = one.begin("a", [c.id for c in _chunks("a", ["x"])], fingerprint="f")
    b = two.begin("b", [c.id for c in _chunks("b", ["y"])], fingerprint="f")
    with pytest.raises(ValueError, match="one store"):
        commit_together([a, b])
    with pytest.raises(ValueError, match="one list of points per write"):
        add_together([a], [])
    assert commit_together([]) == []
    a.abort()
    b.abort()
    one.close()
    two.close()
