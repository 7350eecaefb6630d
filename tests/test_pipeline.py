"""End-to-end: the lite pipeline on real PDFs, the real embedded Qdrant engine, real models."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pymupdf
import pytest

from ragnest import Pipeline, Query, RagnestError, StoreMismatchError
from ragnest.config import load_config

from ._samples import SAMPLE_QUESTIONS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"


def lite(store: Path, **overrides) -> Pipeline:
    return Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}, overrides=overrides or None)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    rag = lite(store)
    report = rag.ingest([EXAMPLES], progress=False)
    yield rag, report, store
    rag.close()


def test_ingest_samples(ingested):
    rag, report, _ = ingested
    assert report.files == 3 and not report.skipped
    assert report.pages >= 10
    assert report.chunks_added > 0 and report.chunks_unchanged == 0
    stats = rag.stats()
    assert stats["chunks"] == report.chunks_added
    assert stats["documents"] == 3


def test_reingest_is_a_noop(ingested):
    rag, first, _ = ingested
    before = rag.stats()
    again = rag.ingest([EXAMPLES], progress=False)
    assert again.chunks_added == 0 and again.chunks_removed == 0
    assert again.chunks_unchanged == first.chunks_added
    assert again.pages == first.pages
    assert rag.stats()["chunks"] == before["chunks"]


@pytest.mark.parametrize("question, file, page", SAMPLE_QUESTIONS)
def test_sample_questions_find_their_page(ingested, question, file, page):
    rag, _, _ = ingested
    answer = rag.query(question)
    assert answer.found, answer.text
    top = [(Path(h.chunk.source).name, h.chunk.page) for h in answer.hits[:5]]
    if page is None:
        assert file in [name for name, _ in top]
    else:
        assert (file, page) in top
    assert answer.citations and "[1]" in answer.text


def test_answer_cites_expected_page_first(ingested):
    rag, _, _ = ingested
    answer = rag.query("How often should I descale the machine?")
    first = answer.citations[0]
    assert Path(first.source).name == "nimbus3_handbook.pdf" and first.page == 5
    assert "8 weeks" in answer.text
    # The citation points at the region of the page the quote comes from.
    assert first.bbox is not None
    x0, y0, x1, y1 = first.bbox
    assert 0 <= x0 < x1 <= 595 and 0 <= y0 < y1 <= 842 and (y1 - y0) < 300
    chunk = rag.store.get([first.chunk_id])[0]
    seg = next(s for s in chunk.segments if s.bbox == first.bbox)
    assert first.quote.rstrip("\u2026")[:40] in " ".join(seg.text.split())


def test_unanswerable_question_says_so(ingested):
    rag, _, _ = ingested
    answer = rag.query("What is the orbital period of Neptune's moon Triton?")
    assert not answer.found
    assert "could not find" in answer.text.lower()


def test_known_item_queries_on_samples(ingested):
    """14-word windows with a quarter of the words dropped find their page in the top 5."""
    rag, _, _ = ingested
    rng = random.Random(3)
    queries = []
    for pdf in sorted(EXAMPLES.glob("*.pdf")):
        with pymupdf.open(pdf) as doc:
            for page in doc:
                words = [w for w in page.get_text().split() if any(ch.isalnum() for ch in w)]
                for _ in range(3):
                    if len(words) < 30:
                        continue
                    s = rng.randrange(0, len(words) - 14)
                    window = words[s : s + 14]
                    drop = set(rng.sample(range(14), 4))
                    queries.append((" ".join(w for i, w in enumerate(window) if i not in drop),
                                    pdf.name, page.number + 1))
    found = 0
    for text, name, page in queries:
        hits = rag.retrieve(text, k=5)
        found += any(Path(h.chunk.source).name == name and h.chunk.page == page for h in hits)
    assert len(queries) >= 20
    assert found / len(queries) >= 0.95, f"{found}/{len(queries)}"


def test_filters_restrict_every_stage(ingested):
    rag, _, _ = ingested
    target = str((EXAMPLES / "lab_safety_guide.pdf").absolute())
    hits = rag.retrieve("descale the espresso machine", k=5, filters={"source": target})
    assert hits and all(h.chunk.source == target for h in hits)
    hits = rag.retrieve("descale the espresso machine", k=5, filters={"page": [2, 3]})
    assert hits and all(h.chunk.page in (2, 3) for h in hits)


def test_single_retrievers_and_budgets(ingested):
    rag, _, _ = ingested
    for using in (["bm25"], ["dense"]):
        hits = rag.retrieve("descaling solution every 8 weeks", k=3, using=using)
        assert hits and hits[0].chunk.page == 5
    hits = rag.retrieve("descaling every 8 weeks", k=3, budgets={"coarse": 5, "mid": 3})
    assert hits and len(hits) <= 3
    assert all(h.scores_by_stage for h in hits)
    # A budget of one candidate at the coarse stage leaves the dense funnel one hit.
    assert len(rag.retrieve("descaling", k=5, using=["dense"], budgets={"coarse": 1})) == 1


def test_hits_carry_every_stage_score(ingested):
    rag, _, _ = ingested
    hits = rag.retrieve("How often should I descale the machine?", k=5, explain=True)
    for hit in hits:
        stages = hit.scores_by_stage
        assert {"final", "dense-coarse", "dense-mid", "dense-fine"} <= set(stages)
        assert -1.01 <= stages["dense-coarse"] <= 1.01  # one normalised vector: a cosine
    # With one route the final score is the last stage's: the recomputation matches it.
    dense = rag.retrieve("How often should I descale the machine?", k=5, using=["dense"],
                         explain=True)
    for hit in dense:
        assert abs(hit.scores_by_stage["dense-fine"] - hit.score) < 1e-2 * max(1, abs(hit.score))


def test_image_query_without_ocr_needs_an_image_embedder(ingested, tmp_path, monkeypatch):
    rag, _, _ = ingested
    img = tmp_path / "crop.png"
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 8, 8), False)
    pix.clear_with(255)  # blank: nothing for the visual fingerprint either
    pix.save(img)
    monkeypatch.setattr(rag.retrieval, "image_ocr", False)
    with pytest.raises(RagnestError, match="image query"):
        rag.retrieve(Pipeline.image_query(img))


def test_image_query_crop_of_a_table_finds_its_page(ingested, tmp_path):
    """A screenshot of the error-code table (page 6) is read by OCR and found."""
    pytest.importorskip("rapidocr")
    rag, _, _ = ingested
    doc = pymupdf.open(EXAMPLES / "nimbus3_handbook.pdf")
    table = doc[5].find_tables().tables[0]
    crop = tmp_path / "table.png"
    doc[5].get_pixmap(dpi=110, clip=table.bbox).save(crop)
    hits = rag.retrieve(Pipeline.image_query(crop), k=5)
    assert hits and hits[0].chunk.page == 6
    assert hits[0].chunk.source.endswith("nimbus3_handbook.pdf")
    blank = tmp_path / "blank.png"
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 64, 64), False)
    pix.clear_with(255)
    pix.save(blank)
    assert rag.retrieve(Pipeline.image_query(blank)) == []


def test_bad_files_do_not_stop_the_ingest(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(EXAMPLES / "lab_safety_guide.pdf", docs / "good.pdf")
    (docs / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 20)
    (docs / "empty.pdf").write_bytes(b"")
    (docs / "notes.xyz").write_bytes(b"\x00\x01binary")
    enc = pymupdf.open()
    enc.new_page().insert_text((72, 72), "secret plans")
    enc.save(docs / "encrypted.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="pw")
    with lite(tmp_path / "store") as rag:
        report = rag.ingest([docs, tmp_path / "missing.pdf"], progress=False)
        reasons = {Path(s.path).name: s.reason for s in report.skipped}
        assert [Path(d.path).name for d in report.documents] == ["good.pdf"]
        assert "empty" in reasons["empty.pdf"]
        assert "encrypted" in reasons["encrypted.pdf"].lower()
        assert "pdf" in reasons["corrupt.pdf"].lower()
        assert "unsupported" in reasons["notes.xyz"]
        assert "no such file" in reasons["missing.pdf"]
        assert report.ok
        assert rag.stats()["documents"] == 1


def test_changed_file_replaces_its_chunks(tmp_path):
    doc = tmp_path / "notes.md"
    doc.write_text("# Alpha\n\nThe alpha valve opens at 3 bar.\n\n# Beta\n\nThe beta pump runs at 40 Hz.\n")
    with lite(tmp_path / "store") as rag:
        first = rag.ingest([doc], progress=False)
        assert first.chunks_added >= 1
        doc.write_text("# Alpha\n\nThe alpha valve opens at 3 bar.\n\n# Gamma\n\nThe gamma fan spins at 900 rpm.\n")
        second = rag.ingest([doc], progress=False)
        assert second.chunks_removed >= 1 and second.chunks_added >= 1
        assert rag.stats()["chunks"] == first.chunks_added - second.chunks_removed + second.chunks_added
        assert not any("beta" in h.chunk.text.lower() for h in rag.retrieve("beta pump 40 Hz", k=5))
        assert rag.delete(doc) >= 1
        assert rag.stats()["chunks"] == 0


def test_persists_and_refuses_another_ladder(tmp_path):
    store = tmp_path / "store"
    with lite(store) as rag:
        rag.ingest([EXAMPLES / "lab_safety_guide.pdf"], progress=False)
        n = rag.stats()["chunks"]
    with lite(store) as rag:
        assert rag.stats()["chunks"] == n
        assert rag.retrieve("eyewash station 15 minutes", k=1)[0].chunk.page == 3
    other_ladder = {"components": {"dense": {"params": {"ladder": [
        {"name": "coarse", "dim": 32, "vectors": 1, "index": "hnsw"},
        {"name": "fine", "dim": 64, "vectors": 16},
    ]}}}}
    with lite(store, **other_ladder) as rag, pytest.raises(StoreMismatchError):
        rag.stats()


def test_to_config_round_trips(tmp_path):
    rag = lite(tmp_path / "s")
    cfg = rag.to_config()
    again = Pipeline.from_config(cfg).to_config()
    assert again == cfg
    assert cfg.components["store"].params["path"] == str(tmp_path / "s")
    assert cfg.embedders == ["dense", "bm25", "visual"]


def test_shipped_pipelines_are_valid():
    from ragnest import registry

    root = Path(__file__).resolve().parent.parent / "pipelines"
    files = sorted(root.glob("*.yaml"))
    assert files
    for f in files:
        cfg = load_config(f, env={})
        for name, comp in cfg.components.items():
            registry.create(comp.type, comp.params, where=f"{f.name}: components.{name}")


def test_query_objects_and_errors(ingested):
    rag, _, _ = ingested
    with pytest.raises(ValueError):
        Query()
    with pytest.raises(TypeError):
        rag.retrieve(42)  # type: ignore[arg-type]
    hits = rag.retrieve(Query(text="warranty registration"), k=2)
    assert len(hits) == 2
