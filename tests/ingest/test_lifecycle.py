"""The document lifecycle through the Python API: moved files keep their documents (no
duplicate, nothing re-embedded, hits cite the new path), sync removes documents whose
files are gone (only under its roots), a dry run changes nothing, delete by path or id.

Real parts: the embedded Qdrant Edge store, the shipped sample PDFs and Markdown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import ClassVar

import pytest

from ragnest import DocumentNotFoundError, Pipeline
from ragnest.embedders.bm25 import Bm25Embedder
from ragnest.ingest import delete_documents
from ragnest.media.render import render_array
from ragnest.parsers.pdf import PdfParser
from ragnest.parsers.text import TextParser
from ragnest.stores.qdrant import QdrantStore
from ragnest.types import Source

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples" / "docs"
NAMES = ("lab_safety_guide.pdf", "nimbus3_handbook.pdf", "travel_faq.md")


class CountingBm25(Bm25Embedder):
    """BM25 that counts the chunks it embeds (re-embedding shows up here)."""

    embedded: ClassVar[list[int]] = []

    def embed_documents(self, chunks):  # type: ignore[no-untyped-def]
        CountingBm25.embedded.append(len(chunks))
        return super().embed_documents(chunks)


@pytest.fixture(autouse=True)
def _reset_counter() -> None:
    CountingBm25.embedded.clear()


def embedded() -> int:
    return sum(CountingBm25.embedded)


def pipeline(store: Path) -> Pipeline:
    return Pipeline(parsers=[PdfParser(ocr="never"), TextParser()],
                    embedders={"bm25": CountingBm25()}, store=QdrantStore(path=str(store)))


def copy_docs(folder: Path, names: tuple[str, ...] = NAMES) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        shutil.copy(EXAMPLES / name, folder / name)
    return folder


def snapshot(rag: Pipeline) -> dict[str, tuple[dict[str, int], str | None, frozenset[str]]]:
    """Every stored document: the paths it cites, its fingerprint, its chunk ids."""
    return {d.document_id: (dict(d.sources), d.fingerprint,
                            frozenset(rag.store.chunk_ids(d.document_id)))
            for d in rag.store.catalog()}


def all_payloads(rag: Pipeline) -> str:
    return json.dumps([p for _, p in rag.store._require().payloads_where([], None)])


def test_moved_folder_keeps_its_documents_and_embeds_nothing(tmp_path):
    docs = copy_docs(tmp_path / "docs")
    with pipeline(tmp_path / "db") as rag:
        first = rag.ingest([docs], progress=False)
        before = snapshot(rag)
        assert first.files == 3 and len(before) == 3 and embedded() == first.chunks_added

        moved = tmp_path / "archive" / "manuals"
        moved.parent.mkdir()
        docs.rename(moved)
        calls = embedded()
        report = rag.ingest([moved], progress=False)

        assert embedded() == calls  # nothing parsed into new vectors: no re-embedding
        assert report.ok and report.documents_moved == 3 and report.chunks_added == 0
        assert {d.status for d in report.documents} == {"moved"}
        assert {Path(d.previous_path).parent for d in report.documents} == {docs}
        assert report.to_dict()["documents_moved"] == 3
        after = snapshot(rag)
        assert set(after) == set(before)  # same documents, same ids: no duplicate
        for doc_id, (sources, fp, ids) in after.items():
            old_sources, old_fp, old_ids = before[doc_id]
            assert ids == old_ids and fp == old_fp  # chunk ids (point ids) unchanged
            assert [Path(p).parent for p in sources] == [moved]
        assert rag.stats()["documents"] == 3 and rag.stats()["chunks"] == first.chunks_added
        assert str(docs) + "/" not in all_payloads(rag)  # page images re-pointed too

        hit = rag.retrieve("How often should the machine be descaled?", k=1)[0]
        assert hit.chunk.source == str(moved / "nimbus3_handbook.pdf") and hit.chunk.page == 5
        assert hit.chunk.image is not None and hit.chunk.image.source == hit.chunk.source
        assert render_array(hit.chunk.image).ndim == 3  # the cited page renders from the new path

        again = rag.ingest([moved], progress=False)
        assert {d.status for d in again.documents} == {"unchanged"} and embedded() == calls


def test_copied_file_is_a_new_document(tmp_path):
    docs = copy_docs(tmp_path / "docs", ("travel_faq.md",))
    with pipeline(tmp_path / "db") as rag:
        rag.ingest([docs], progress=False)
        copy = tmp_path / "copy" / "travel_faq.md"
        copy.parent.mkdir()
        shutil.copy(docs / "travel_faq.md", copy)  # the old path still exists: a copy
        report = rag.ingest([copy], progress=False)
        assert [d.status for d in report.documents] == ["added"]
        assert rag.stats()["documents"] == 2
        assert {d.source for d in rag.store.catalog()} == {str(docs / "travel_faq.md"), str(copy)}


def test_two_identical_files_moved_keep_two_documents(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("a.md", "b.md"):
        shutil.copy(EXAMPLES / "travel_faq.md", docs / name)
    with pipeline(tmp_path / "db") as rag:
        rag.ingest([docs], progress=False)
        calls = embedded()
        moved = tmp_path / "moved"
        docs.rename(moved)
        report = rag.ingest([moved], progress=False)
        assert [d.status for d in report.documents] == ["moved", "moved"] and embedded() == calls
        assert sorted(d.source for d in rag.store.catalog()) == [str(moved / "a.md"),
                                                                 str(moved / "b.md")]


def test_new_file_at_a_vacated_path_gets_its_own_id(tmp_path):
    """A moved document keeps the id derived from its first path; a new file there later
    must not collide with it."""
    docs = copy_docs(tmp_path / "docs", ("travel_faq.md",))
    old = docs / "travel_faq.md"
    with pipeline(tmp_path / "db") as rag:
        rag.ingest([docs], progress=False)
        old.rename(docs / "renamed.md")
        assert [d.status for d in rag.ingest([docs], progress=False).documents] == ["moved"]
        old.write_text("# Pumps\n\nThe gamma pump runs at 40 Hz and needs oil every month.\n")
        report = rag.ingest([docs], progress=False)
        status = {Path(d.path).name: d.status for d in report.documents}
        assert status == {"renamed.md": "unchanged", "travel_faq.md": "added"}
        docs_by_source = {d.source: d for d in rag.store.catalog()}
        assert set(docs_by_source) == {str(old), str(docs / "renamed.md")}
        assert docs_by_source[str(docs / "renamed.md")].document_id == Source.from_path(old).document_id
        assert docs_by_source[str(old)].document_id != Source.from_path(old).document_id
        hit = rag.retrieve("gamma pump oil", k=1)[0]
        assert hit.chunk.source == str(old)
        # editing the new file updates it in place (its own id), nothing else
        old.write_text("# Pumps\n\nThe delta pump runs at 50 Hz.\n")
        again = rag.ingest([docs], progress=False)
        assert {Path(d.path).name: d.status for d in again.documents} == {
            "renamed.md": "unchanged", "travel_faq.md": "updated"}
        assert rag.stats()["documents"] == 2


def test_renamed_and_replaced_in_one_go_stays_correct(tmp_path):
    """a.md renamed to b.md and a new a.md written before one ingest: the old path still
    exists, so this is no move (b.md is embedded anew), but nothing is duplicated or stale."""
    docs = copy_docs(tmp_path / "docs", ("travel_faq.md",))
    old = docs / "travel_faq.md"
    with pipeline(tmp_path / "db") as rag:
        rag.ingest([docs], progress=False)
        old.rename(docs / "renamed.md")
        old.write_text("# Pumps\n\nThe gamma pump runs at 40 Hz.\n")
        report = rag.ingest([docs], progress=False)
        assert {Path(d.path).name: d.status for d in report.documents} == {
            "renamed.md": "added", "travel_faq.md": "updated"}
        assert sorted(d.source for d in rag.store.catalog()) == [str(docs / "renamed.md"),
                                                                 str(old)]
        assert rag.retrieve("gamma pump", k=1)[0].chunk.source == str(old)
        assert all(h.chunk.source != str(old) for h in rag.retrieve("business class", k=3))


def test_a_file_moved_over_another_replaces_it(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nThe alpha valve opens at 3 bar.\n")
    (docs / "b.md").write_text("# Beta\n\nThe beta pump runs at 40 Hz.\n")
    with pipeline(tmp_path / "db") as rag:
        rag.ingest([docs], progress=False)
        beta_id = Source.from_path(docs / "b.md").document_id
        calls = embedded()
        (docs / "b.md").replace(docs / "a.md")
        report = rag.sync([docs], progress=False)
        assert embedded() == calls
        assert [(Path(d.path).name, d.status) for d in report.documents] == [("a.md", "moved")]
        assert report.documents[0].removed >= 1  # the old a.md's chunks
        [doc] = rag.store.catalog()
        assert doc.document_id == beta_id and doc.source == str(docs / "a.md")
        assert not any("alpha" in h.chunk.text.lower() for h in rag.retrieve("alpha valve", k=3))


def test_an_interrupted_move_completes_on_the_next_run(tmp_path):
    docs = copy_docs(tmp_path / "docs", ("nimbus3_handbook.pdf",))
    with pipeline(tmp_path / "db") as rag:
        rag.ingest([docs], progress=False)
        [doc] = rag.store.catalog()
        moved = tmp_path / "moved"
        docs.rename(moved)
        new = str(moved / "nimbus3_handbook.pdf")
        half = sorted(rag.store.chunk_ids(doc.document_id))[:3]  # a crash after 3 chunks
        rag.store.set_chunk_fields(doc.document_id, {cid: {"source": new} for cid in half})
        [partial] = rag.store.catalog()
        assert len(partial.sources) == 2
        calls = embedded()
        report = rag.ingest([moved], progress=False)
        assert [d.status for d in report.documents] == ["moved"] and embedded() == calls
        [done] = rag.store.catalog()
        assert dict(done.sources) == {new: doc.chunks} and done.fingerprint == doc.fingerprint


def test_sync_removes_documents_whose_files_are_gone(tmp_path):
    docs = copy_docs(tmp_path / "docs")
    with pipeline(tmp_path / "db") as rag:
        first = rag.sync([docs], progress=False)
        assert first.files == 3 and first.documents_removed == 0
        faq = docs / "travel_faq.md"
        faq_chunks = len(rag.store.chunk_ids(Source.from_path(faq).document_id))
        faq.unlink()
        plain = rag.ingest([docs], progress=False)  # a plain ingest removes nothing
        assert plain.documents_removed == 0 and rag.stats()["documents"] == 3
        report = rag.sync([docs], progress=False)
        assert report.ok and report.documents_removed == 1 and report.chunks_removed == faq_chunks
        assert [(d.path, d.status) for d in report.removed] == [(str(faq), "removed")]
        assert report.to_dict()["documents_removed"] == 1
        assert rag.stats()["documents"] == 2
        assert all(h.chunk.source != str(faq) for h in rag.retrieve("business class flights", k=5))


def test_sync_dry_run_reports_the_plan_and_changes_nothing(tmp_path):
    docs = copy_docs(tmp_path / "docs")
    changing = docs / "changing.md"
    changing.write_text("# Valves\n\nThe alpha valve opens at 3 bar.\n")
    with pipeline(tmp_path / "db") as rag:
        rag.ingest([docs], progress=False)
        # one of each: moved, removed, changed, added, unchanged
        (docs / "lab_safety_guide.pdf").rename(docs / "lab_safety.pdf")
        (docs / "travel_faq.md").unlink()
        (docs / "notes.md").write_text("# Notes\n\nThe compressor hums at 50 Hz.\n")
        changing.write_text("# Valves\n\nThe beta valve opens at 5 bar.\n")
        before, calls = snapshot(rag), embedded()
        plan = rag.sync([docs], dry_run=True, progress=False)
        assert snapshot(rag) == before and embedded() == calls
        assert plan.dry_run and plan.to_dict()["dry_run"] is True
        expected = {"changing.md": "updated", "lab_safety.pdf": "moved",
                    "nimbus3_handbook.pdf": "unchanged", "notes.md": "added"}
        assert {Path(d.path).name: d.status for d in plan.documents} == expected
        assert [Path(d.path).name for d in plan.removed] == ["travel_faq.md"]
        assert plan.chunks_added == 0 and plan.documents_moved == 1
        assert plan.documents_removed == 1
        done = rag.sync([docs], progress=False)
        assert {Path(d.path).name: d.status for d in done.documents} == expected
        assert [d.path for d in done.removed] == [d.path for d in plan.removed]
        assert sorted(Path(d.source).name for d in rag.store.catalog()) == [
            "changing.md", "lab_safety.pdf", "nimbus3_handbook.pdf", "notes.md"]


def test_sync_leaves_documents_outside_its_roots_alone(tmp_path):
    a = copy_docs(tmp_path / "a", ("travel_faq.md",))
    b = copy_docs(tmp_path / "b", ("travel_faq.md", "lab_safety_guide.pdf"))
    ab = copy_docs(tmp_path / "ab", ("lab_safety_guide.pdf",))  # a sibling named like a prefix
    with pipeline(tmp_path / "db") as rag:
        rag.ingest([a, b, ab], progress=False)
        (a / "travel_faq.md").unlink()
        (b / "travel_faq.md").unlink()
        (ab / "lab_safety_guide.pdf").unlink()
        report = rag.sync([a], progress=False)
        assert [d.path for d in report.removed] == [str(a / "travel_faq.md")]
        sources = {d.source for d in rag.store.catalog()}
        assert sources == {str(b / "travel_faq.md"), str(b / "lab_safety_guide.pdf"),
                           str(ab / "lab_safety_guide.pdf")}
        rag.sync([b / "travel_faq.md"], progress=False)  # a file as the root
        assert {d.source for d in rag.store.catalog()} == {str(b / "lab_safety_guide.pdf"),
                                                          str(ab / "lab_safety_guide.pdf")}


def test_sync_of_a_deleted_folder_removes_what_was_under_it(tmp_path):
    docs = copy_docs(tmp_path / "docs", ("travel_faq.md", "lab_safety_guide.pdf"))
    with pipeline(tmp_path / "db") as rag:
        rag.ingest([docs], progress=False)
        shutil.rmtree(docs)
        report = rag.sync([docs], progress=False)
        assert report.ok and report.skipped == [] and report.documents_removed == 2
        assert rag.stats()["documents"] == 0
        typo = rag.sync([tmp_path / "no-such-folder"], progress=False)
        assert not typo.ok and typo.skipped[0].reason == "no such file or directory"


def test_delete_by_path_folder_and_id(tmp_path):
    docs = copy_docs(tmp_path / "docs")
    (docs / "sub").mkdir()
    shutil.copy(EXAMPLES / "travel_faq.md", docs / "sub" / "faq.md")
    with pipeline(tmp_path / "db") as rag:
        rag.ingest([docs], progress=False)
        ids = {Path(d.source).name: d.document_id for d in rag.store.catalog()}
        n_lab = len(rag.store.chunk_ids(ids["lab_safety_guide.pdf"]))

        assert rag.delete(docs / "lab_safety_guide.pdf") == n_lab  # a path that exists
        (docs / "travel_faq.md").unlink()
        report = delete_documents(rag.store, [str(docs / "travel_faq.md")])  # a file gone
        assert [(d.path, d.status) for d in report.removed] == [
            (str(docs / "travel_faq.md"), "removed")]
        assert rag.delete(ids["nimbus3_handbook.pdf"]) >= 1  # an id
        with pytest.raises(DocumentNotFoundError) as info:
            rag.delete(docs / "sub", tmp_path / "never-stored.pdf", "not-an-id")
        assert "never-stored.pdf" in str(info.value) and "'not-an-id'" in str(info.value)
        assert "nothing was deleted" in str(info.value)
        assert rag.stats()["documents"] == 1  # the folder target was not deleted either
        shutil.rmtree(docs / "sub")
        assert rag.delete(docs / "sub") >= 1  # a folder, even one that is gone
        assert rag.stats()["documents"] == 0


def test_store_catalog_and_in_place_rewrites_on_every_backend(tmp_path):
    """The two store methods the lifecycle adds, on Qdrant Edge and local mode."""
    for store in (QdrantStore(path=str(tmp_path / "edge")), QdrantStore(location=":memory:")):
        rag = Pipeline(parsers=[TextParser()], embedders={"bm25": Bm25Embedder()}, store=store)
        with rag:
            faq = copy_docs(tmp_path / store.backend, ("travel_faq.md",)) / "travel_faq.md"
            rag.ingest([faq], progress=False)
            [doc] = store.catalog()
            src = Source.from_path(faq)
            assert (doc.document_id, doc.source, doc.fingerprint) == (
                src.document_id, str(faq), src.fingerprint())
            assert store.catalog(source=str(faq)) == [doc]
            assert store.catalog(fingerprint=src.fingerprint()) == [doc]
            assert store.catalog(document_id=doc.document_id) == [doc]
            assert store.catalog(source="/nowhere.md") == []
            cid = sorted(store.chunk_ids(doc.document_id))[0]
            with pytest.raises(ValueError, match="cannot be set in place"):
                store.set_chunk_fields(doc.document_id, {cid: {"document_id": "x"}})
            with pytest.raises(ValueError, match="not stored chunks of document"):
                store.set_chunk_fields("other", {cid: {"source": "/x.md"}})
            assert store.set_chunk_fields(doc.document_id, {cid: {"source": "/x.md"}}) == 1
            [mixed] = store.catalog()
            assert mixed.sources == {str(faq): doc.chunks - 1, "/x.md": 1}
            assert mixed.fingerprint == doc.fingerprint and store.get([cid])[0].source == "/x.md"


class SourcelessText(TextParser):
    """A parser that sets no ``chunk.source`` (third-party parsers may forget it)."""

    def parse(self, source):  # type: ignore[no-untyped-def]
        from dataclasses import replace

        for chunk in super().parse(source):
            yield replace(chunk, source="")


def test_chunks_citing_no_path_still_belong_to_their_file(tmp_path):
    faq = copy_docs(tmp_path / "docs", ("travel_faq.md",)) / "travel_faq.md"
    rag = Pipeline(parsers=[SourcelessText()], embedders={"bm25": CountingBm25()},
                   store=QdrantStore(path=str(tmp_path / "db")))
    with rag:
        rag.ingest([faq], progress=False)
        again = rag.ingest([faq], progress=False)
        assert [d.status for d in again.documents] == ["unchanged"]
        assert rag.stats()["documents"] == 1
        assert rag.delete(faq) >= 1 and rag.stats()["documents"] == 0


def test_two_documents_citing_one_path_become_one(tmp_path):
    """After an interrupted move onto an existing file two documents may cite one path;
    the next ingest of that file keeps one."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nThe alpha valve opens at 3 bar.\n")
    (docs / "b.md").write_text("# Beta\n\nThe beta pump runs at 40 Hz.\n")
    with pipeline(tmp_path / "db") as rag:
        rag.ingest([docs], progress=False)
        a_id = Source.from_path(docs / "a.md").document_id
        b_id = Source.from_path(docs / "b.md").document_id
        rag.store.set_chunk_fields(b_id, {c: {"source": str(docs / "a.md")}
                                          for c in rag.store.chunk_ids(b_id)})
        (docs / "b.md").unlink()
        (docs / "a.md").write_text("# Gamma\n\nThe gamma fan spins at 900 rpm.\n")
        report = rag.ingest([docs / "a.md"], progress=False)
        assert [d.status for d in report.documents] == ["updated"]
        [doc] = rag.store.catalog()
        assert doc.document_id == a_id and doc.source == str(docs / "a.md")
        assert rag.retrieve("gamma fan", k=1)[0].chunk.source == str(docs / "a.md")


def test_sync_keeps_and_removes_files_whose_names_are_not_utf8(tmp_path):
    """Stored paths of such files are readable text (\\xNN); sync must look at the real file."""
    import os

    docs = tmp_path / "docs"
    docs.mkdir()
    raw = os.fsencode(str(docs)) + b"/caf\xe9-notes.md"
    name = os.fsdecode(raw)
    shutil.copy(EXAMPLES / "travel_faq.md", name)
    with pipeline(tmp_path / "db") as rag:
        assert rag.ingest([docs], progress=False).files == 1
        stored = [d.source for d in rag.store.catalog()]
        assert stored and "\\xe9" in stored[0]
        kept = rag.sync([docs])
        assert kept.documents_removed == 0 and len(rag.store.catalog()) == 1
        os.remove(name)
        gone = rag.sync([docs])
        assert gone.documents_removed == 1 and rag.store.catalog() == []
