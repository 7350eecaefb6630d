"""`ragnest sync`, `ragnest delete`, and `ragnest ingest` of a moved folder, driven through
typer's runner on the real embedded store and the shipped sample documents."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragnest.cli import app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"
NAMES = ("lab_safety_guide.pdf", "nimbus3_handbook.pdf", "travel_faq.md")
runner = CliRunner()

BM25_PIPELINE = """\
components:
  pdf: {type: parser/pdf, params: {ocr: never}}
  text: {type: parser/text}
  bm25: {type: embedder/bm25}
  store: {type: store/qdrant, params: {path: .ragnest}}
pipeline: {parsers: [pdf, text], embedders: [bm25], store: store}
"""


def run(*args: str):
    return runner.invoke(app, list(args))


def run_json(*args: str) -> dict:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def copy_docs(folder: Path, names: tuple[str, ...] = NAMES) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        shutil.copy(EXAMPLES / name, folder / name)
    return folder


@pytest.fixture
def fast(tmp_path: Path) -> list[str]:
    """``--pipeline`` (PDF text layer + Markdown, BM25 only) and ``--store`` options."""
    yaml = tmp_path / "bm25.yaml"
    yaml.write_text(BM25_PIPELINE)
    return ["--pipeline", str(yaml), "--store", str(tmp_path / "store")]


def test_ingest_of_a_moved_folder_keeps_the_documents_and_cites_the_new_path(tmp_path):
    """The shipped lite pipeline: ingest, move the folder, ingest again."""
    docs = copy_docs(tmp_path / "docs")
    store = ["--store", str(tmp_path / "store")]
    first = run_json("ingest", str(docs), *store)
    question = "How often should I descale the espresso machine?"
    hit = run_json("query", question, *store, "--k", "1")["hits"][0]
    stats = run_json("stats", *store)

    moved = tmp_path / "moved"
    docs.rename(moved)
    again = run_json("ingest", str(moved), *store)
    assert again["documents_moved"] == 3 and again["chunks_added"] == 0
    assert again["chunks_unchanged"] == first["chunks_added"]
    assert {d["status"] for d in again["documents"]} == {"moved"}
    assert {Path(d["previous_path"]).parent for d in again["documents"]} == {docs}
    after = run_json("stats", *store)
    assert (after["documents"], after["chunks"]) == (stats["documents"], stats["chunks"]) == (
        3, first["chunks_added"])
    moved_hit = run_json("query", question, *store, "--k", "1")["hits"][0]
    assert moved_hit["source"] == str(moved / "nimbus3_handbook.pdf")
    assert moved_hit["chunk_id"] == hit["chunk_id"] and moved_hit["page"] == hit["page"] == 5

    text = run("ingest", str(moved), *store)  # the human table counts them
    assert text.exit_code == 0 and "documents moved" in text.output


def test_sync_dry_run_changes_nothing_then_sync_removes_gone_files(tmp_path, fast):
    docs = copy_docs(tmp_path / "docs")
    assert run_json("sync", str(docs), *fast)["files"] == 3
    (docs / "travel_faq.md").unlink()
    (docs / "lab_safety_guide.pdf").rename(docs / "lab_safety.pdf")
    (docs / "notes.md").write_text("# Notes\n\nThe compressor hums at 50 Hz.\n")
    before = run_json("stats", *fast)

    plan = run_json("sync", str(docs), *fast, "--dry-run")
    assert plan["dry_run"] is True
    assert plan["documents_removed"] == 1 and plan["documents_moved"] == 1
    assert [d["path"] for d in plan["removed"]] == [str(docs / "travel_faq.md")]
    assert {Path(d["path"]).name: d["status"] for d in plan["documents"]} == {
        "lab_safety.pdf": "moved", "nimbus3_handbook.pdf": "unchanged", "notes.md": "added"}
    assert run_json("stats", *fast) == before  # nothing changed
    human = run("sync", str(docs), *fast, "--dry-run")
    assert human.exit_code == 0
    assert "dry run" in human.output and "would be removed" in human.output
    assert "would be moved" in human.output and "would be added" in human.output

    done = run_json("sync", str(docs), *fast, "--workers", "2")  # parser processes too
    assert done["dry_run"] is False and done["documents_removed"] == 1
    assert done["documents_moved"] == 1 and done["chunks_added"] == 1  # notes.md only
    assert done["removed"] == plan["removed"]
    assert run_json("stats", *fast)["documents"] == 3
    hits = run_json("query", "business class flights", *fast)["hits"]
    assert all(Path(h["source"]).name != "travel_faq.md" for h in hits)


def test_sync_leaves_documents_outside_its_roots_alone(tmp_path, fast):
    a = copy_docs(tmp_path / "a", ("travel_faq.md",))
    b = copy_docs(tmp_path / "b", ("travel_faq.md",))
    run_json("ingest", str(a), str(b), *fast)
    (a / "travel_faq.md").unlink()
    (b / "travel_faq.md").unlink()
    report = run_json("sync", str(a), *fast)
    assert [d["path"] for d in report["removed"]] == [str(a / "travel_faq.md")]
    assert run_json("stats", *fast)["documents"] == 1  # b's document stays until b is synced
    assert run_json("sync", str(b), *fast)["documents_removed"] == 1


def test_delete_by_path_and_id(tmp_path, fast):
    docs = copy_docs(tmp_path / "docs")
    ingested = run_json("ingest", str(docs), *fast)
    ids = {Path(d["path"]).name: d["document_id"] for d in ingested["documents"]}

    gone = run_json("delete", str(docs / "lab_safety_guide.pdf"), *fast)
    assert gone["documents_removed"] == 1 and gone["chunks_removed"] == 4
    assert gone["removed"][0]["document_id"] == ids["lab_safety_guide.pdf"]
    by_id = run("delete", ids["travel_faq.md"], *fast)
    assert by_id.exit_code == 0
    assert "removed" in by_id.output and "travel_faq.md" in by_id.output
    assert run_json("stats", *fast)["documents"] == 1

    unknown = run("delete", str(docs / "nimbus3_handbook.pdf"), "no-such-id", *fast)
    assert unknown.exit_code == 2
    assert "no-such-id" in unknown.output and "nothing was deleted" in unknown.output
    assert run_json("stats", *fast)["documents"] == 1  # the known target was kept too

    missing = run("delete", "x", "--store", str(tmp_path / "no-store"))
    assert missing.exit_code == 2 and "no store at" in missing.output
    assert not (tmp_path / "no-store").exists()
