"""One store, many `ragnest` processes: concurrent queries, queries during an ingest,
reads of a store that is not there (real processes, the shipped lite pipeline)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ragnest.cli._app import DEFAULT_PIPELINE, _config
from ragnest.pipeline import Pipeline
from ragnest.stores._commit import CommitLock

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "docs"
CLI = [sys.executable, "-m", "ragnest.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1",
       "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
QUESTIONS = {  # question -> (file, page) of the answer
    "How often should I descale the espresso machine?": ("nimbus3_handbook.pdf", 5),
    "What does error code E03 mean?": ("nimbus3_handbook.pdf", 6),
}


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV, cwd=str(REPO))


def finish(proc: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def ingest(store: Path, *paths: Path) -> dict[str, Any]:
    rc, out, err = finish(start("ingest", *map(str, paths), "--store", str(store), "--json"))
    assert rc == 0, err[-3000:]
    return json.loads(out)


def contents(store: Path) -> dict[str, Any]:
    """What a store holds, document by document: fingerprint, chunk ids, the chunks."""
    with Pipeline.from_config(_config(DEFAULT_PIPELINE, str(store), None, read_wait=10)) as rag:
        rag.open()
        out = {}
        for doc in rag.store.documents():  # type: ignore[attr-defined]
            doc_id = doc["document_id"]
            ids = sorted(rag.store.chunk_ids(doc_id))
            out[doc_id] = (rag.store.document_fingerprint(doc_id), ids,
                           rag.store.get(ids))  # type: ignore[attr-defined]
        return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("concurrency") / "store"
    assert ingest(path, EXAMPLES)["files"] == 3
    return path


def test_eight_concurrent_queries_all_answer(store: Path) -> None:
    questions = list(QUESTIONS) * 4
    procs = [start("query", q, "--store", str(store), "--json", "--k", "3") for q in questions]
    for question, proc in zip(questions, procs):
        rc, out, err = finish(proc)
        assert rc == 0, err[-3000:]
        data = json.loads(out)
        top = data["hits"][0]
        assert data["found"] and (Path(top["source"]).name, top["page"]) == QUESTIONS[question]


def test_queries_during_an_ingest_answer_and_it_ends_like_a_clean_ingest(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for f in EXAMPLES.iterdir():
        shutil.copy(f, docs / f.name)
    store = tmp_path / "store"
    ingest(store, docs / "travel_faq.md")  # the store exists; the PDFs come next
    writer = start("ingest", str(docs), "--store", str(store), "--json")
    answered, during = 0, 0
    while writer.poll() is None or answered == 0:
        busy = writer.poll() is None
        rc, out, err = finish(start("query", "How often should I descale the espresso machine?",
                                    "--store", str(store), "--json", "--wait", "30"))
        assert rc == 0, err[-3000:]
        json.loads(out)  # an answer from the last committed state (maybe "not found" yet)
        answered += 1
        during += busy and writer.poll() is None
    rc, out, err = finish(writer)
    assert rc == 0, err[-3000:]
    assert json.loads(out)["files"] == 3
    assert during >= 1, "no query ran while the ingest did"
    clean = tmp_path / "clean"
    ingest(clean, docs)
    assert contents(store) == contents(clean)


@pytest.mark.parametrize("command", [["query", "anything"], ["stats"]])
def test_reads_refuse_a_store_that_is_not_there(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "nowhere" / "deeper" / "store"
    rc, out, err = finish(start(*command, "--store", str(missing), "--json"))
    assert rc == 2 and out == ""
    assert f"no store at {missing}" in " ".join(err.split()) and "ragnest ingest" in err
    assert "Traceback" not in err and not (tmp_path / "nowhere").exists()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("hello")
    rc, out, err = finish(start(*command, "--store", str(a_file)))
    assert rc == 2 and "is a file, not a directory" in " ".join(err.split())
    assert "Traceback" not in err and a_file.read_text() == "hello"


def test_a_query_waits_for_a_change_in_progress_or_says_why(store: Path) -> None:
    question = "What does error code E03 mean?"
    with CommitLock(store).exclusive(logical=True):  # as a writer mid-change holds it
        rc, out, err = finish(start("query", question, "--store", str(store), "--wait", "0.5"))
    assert rc == 2 and out == ""
    assert "did not reach a committed state within 0.5 s" in " ".join(err.split())

    held = threading.Event()

    def change_for_a_while() -> None:
        with CommitLock(store).exclusive(logical=True):
            held.set()
            time.sleep(3)

    thread = threading.Thread(target=change_for_a_while)
    thread.start()
    held.wait(5)
    rc, out, err = finish(start("query", question, "--store", str(store), "--json",
                                "--wait", "60"))
    thread.join()
    assert rc == 0, err[-3000:]
    assert json.loads(out)["found"]
