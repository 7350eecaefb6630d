"""Every bad input named, nothing lost: odd file names and folder entries, bad query
arguments. Real parsers, the real embedded Qdrant Edge store, real ``ragnest`` processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ragnest import Pipeline
from ragnest.embedders.bm25 import Bm25Embedder
from ragnest.errors import ConfigError
from ragnest.ingest.discover import discover
from ragnest.ingest.report import SkippedFile
from ragnest.media.render import render_array
from ragnest.parsers.pdf import PdfParser
from ragnest.parsers.text import TextParser
from ragnest.stores.qdrant import QdrantStore
from ragnest.types import Source

from ._docs import EXAMPLES
from ._procs import ragnest_cmd

LATIN1 = os.fsdecode(b"manuel d'entretien caf\xe9.pdf")  # not UTF-8: surrogate-escaped
SHOWN = "manuel d'entretien caf\\xe9.pdf"


def _pipeline(store: Path) -> Pipeline:
    return Pipeline(parsers=[PdfParser(ocr="never"), TextParser()],
                    embedders={"bm25": Bm25Embedder()}, store=QdrantStore(path=str(store)))


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("odd")
    docs = root / "docs"
    docs.mkdir()
    shutil.copy(EXAMPLES / "nimbus3_handbook.pdf", docs / LATIN1)
    shutil.copy(EXAMPLES / "lab_safety_guide.pdf", docs / "lab_safety_guide.pdf")
    rag = _pipeline(root / "store")
    report = rag.ingest([docs], progress=False)
    yield rag, report, docs, root / "store"
    rag.close()


@pytest.fixture(scope="module")
def closed_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store no process holds open, made by the pipeline ``ragnest query`` uses by
    default (reads refuse a store or collection that does not exist)."""
    store = tmp_path_factory.mktemp("closed") / "store"
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}) as rag:
        rag.ingest([EXAMPLES / "lab_safety_guide.pdf"], progress=False)
    return store


# ------------------------------------------------------------ non-UTF-8 file names
def test_non_utf8_file_name_is_ingested_and_reported_readably(ingested):
    rag, report, docs, _ = ingested
    assert not report.skipped, report.skipped
    shown = [d.path for d in report.documents if d.path.endswith(".pdf") and "caf" in d.path]
    assert shown == [str(docs / SHOWN)]
    assert report.to_dict()["documents"][0]["path"].encode("utf-8")  # valid UTF-8 in JSON
    again = rag.ingest([docs], progress=False)
    assert {d.status for d in again.documents} == {"unchanged"}  # same document id


def test_non_utf8_file_is_searched_cited_and_rendered(ingested):
    rag, _, docs, _ = ingested
    hits = rag.retrieve("How often should the espresso machine be descaled?", k=3)
    top = hits[0].chunk
    assert top.source == str(docs / SHOWN)
    assert top.image is not None and top.image.source == str(docs / SHOWN)
    pixels = render_array(top.image)  # the readable name resolves to the real file
    assert pixels.ndim == 3 and pixels.shape[2] == 3
    only = rag.retrieve("descaled", k=5, filters={"source": str(docs / SHOWN)})
    assert only and {h.chunk.source for h in only} == {str(docs / SHOWN)}


def test_a_skipped_file_is_reported_readably():
    assert SkippedFile(os.fsdecode(b"/d/caf\xe9.md"), "x").path == "/d/caf\\xe9.md"
    assert Source.from_path(os.fsdecode(b"/d/caf\xe9.md")).display_name == "/d/caf\\xe9.md"


# ------------------------------------------------------------ folder entries
@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, sockets and symlinks")
def test_discover_names_every_entry_it_does_not_read(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "ok.md").write_text("# fine\n")
    os.mkfifo(folder / "pipe.md")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "live.sock"))
    (folder / "a").symlink_to("b")
    (folder / "b").symlink_to("a")
    (folder / "gone.md").symlink_to(folder / "nowhere.md")
    (folder / "again").symlink_to(folder)
    (folder / ".hidden.md").write_text("not listed")
    result: list = []
    worker = threading.Thread(target=lambda: result.append(discover([folder])), daemon=True)
    worker.start()
    worker.join(10)
    server.close()
    assert result, "discover blocked (on the FIFO?)"
    files, skipped = result[0]
    assert [f.name for f in files] == ["ok.md"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons == {
        "pipe.md": "not a regular file: a named pipe (FIFO)",
        "live.sock": "not a regular file: a socket",
        "a": "symbolic link loop (too many levels of symbolic links)",
        "b": "symbolic link loop (too many levels of symbolic links)",
        "gone.md": f"broken symbolic link (its target {str(folder / 'nowhere.md')!r} does not exist)",
        "again": "symbolic link to a folder: not followed (ingest its target directly)",
    }


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0,
                    reason="root reads every file whatever its mode")
def test_unreadable_files_and_folders_are_named(tmp_path):
    folder = tmp_path / "d"
    (folder / "locked").mkdir(parents=True)
    secret = folder / "secret.md"
    secret.write_text("# no\n")
    secret.chmod(0)
    (folder / "locked").chmod(0)
    try:
        _, skipped = discover([folder])
    finally:
        secret.chmod(0o600)
        (folder / "locked").chmod(0o700)
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons["secret.md"] == "permission denied: cannot read this file"
    assert reasons["locked"] == "permission denied: cannot read this folder"


# ------------------------------------------------------------ query arguments
@pytest.mark.parametrize("k", [0, -1, True, 2.5])
def test_k_below_one_is_a_config_error(ingested, k):
    rag = ingested[0]
    with pytest.raises(ConfigError, match="k="):
        rag.retrieve("descaling", k=k)
    with pytest.raises(ConfigError, match="k="):
        rag.query("descaling", k=k)


def test_unknown_filter_keys_are_refused_with_a_did_you_mean(ingested):
    rag = ingested[0]
    with pytest.raises(ConfigError, match=r"unknown filter key 'sorce'; did you mean 'source'\?"):
        rag.retrieve("descaling", filters={"sorce": "x.pdf"})
    with pytest.raises(ConfigError, match=r"did you mean 'metadata.title'\?"):
        rag.retrieve("descaling", filters={"title": "Nimbus"})
    assert rag.retrieve("descaling", filters={"metadata.page_count": {"gte": 1}})
    pages = {h.chunk.page for h in rag.retrieve("descaling", k=10, filters={"pages": [2, 3]})}
    assert pages and pages <= {2, 3}  # an unindexed list field filters too


def test_unknown_budget_stages_are_refused_with_a_did_you_mean(ingested):
    rag = ingested[0]
    with pytest.raises(ConfigError, match=r"unknown stage 'sparce'; did you mean 'sparse'"):
        rag.retrieve("descaling", budgets={"sparce": 10})
    with pytest.raises(ConfigError, match="integer >= 1"):
        rag.retrieve("descaling", budgets={"sparse": 0})
    assert rag.retrieve("descaling", budgets={"bm25-sparse": 10})


def test_query_text_that_is_not_utf8_is_refused(ingested):
    rag = ingested[0]
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        rag.query(b"descal\xe9".decode("utf-8", "surrogateescape"))


@pytest.mark.parametrize(("args", "message"), [
    ([b"descale \xff\xfe the machine"], b"not valid UTF-8"),
    ([b"descale", b"--k", b"0"], b"--k"),
    ([b"descale", b"--k", b"-1"], b"--k"),
    ([b"descale", b"--filter", b"sorce=x.pdf"], b"did you mean 'source'"),
    ([b"descale", b"--budget", b"coarce=10"], b"did you mean"),
])
def test_cli_refuses_bad_query_arguments(closed_store, args, message):
    store = closed_store
    cmd = [os.fsencode(c) for c in ragnest_cmd()]
    proc = subprocess.run([*cmd, b"query", *args, b"--store", os.fsencode(str(store)), b"--json"],
                          capture_output=True, timeout=120, cwd=Path(__file__).parents[2])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and b"Traceback" not in proc.stderr
    assert proc.stdout == b""
