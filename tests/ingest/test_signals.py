"""SIGTERM unwinds an ingest (``SystemExit(143)``) instead of killing it mid-write."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from ragnest import Pipeline
from ragnest.config import IngestConfig
from ragnest.embedders.bm25 import Bm25Embedder
from ragnest.ingest.signals import sigterm_unwinds, takes_sigterm
from ragnest.parsers import TextParser
from ragnest.stores import QdrantStore
from ragnest.types import Source

posix = pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM cannot be sent to self")


@pytest.fixture
def default_sigterm():
    old = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGTERM, old)


@posix
def test_a_sigterm_inside_the_block_raises_system_exit_143(default_sigterm) -> None:
    with pytest.raises(SystemExit) as exc, sigterm_unwinds():
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between bytecodes, right away
            pass
    assert exc.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # put back


def test_someone_elses_handler_is_left_alone(default_sigterm) -> None:
    def mine(signum, frame):  # noqa: ANN001
        pass

    signal.signal(signal.SIGTERM, mine)
    assert not takes_sigterm()
    with sigterm_unwinds():
        assert signal.getsignal(signal.SIGTERM) is mine
    assert signal.getsignal(signal.SIGTERM) is mine


def test_nothing_changes_outside_the_main_thread(default_sigterm) -> None:
    seen = []

    def body() -> None:
        with sigterm_unwinds():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [signal.SIG_DFL]


class TermOnWord(Bm25Embedder):
    """BM25 that sends this process a SIGTERM when it meets ``word`` (a ``kill PID``
    arriving while the ingest writes, with no parse pool running)."""

    word: str = "goggles"

    def embed_documents(self, chunks):  # type: ignore[no-untyped-def]
        if any(self.word in (c.text or "").lower() for c in chunks):
            os.kill(os.getpid(), signal.SIGTERM)
        return super().embed_documents(chunks)


@posix
def test_a_sigterm_while_writing_unwinds_the_ingest_and_keeps_what_was_committed(
        tmp_path: Path, default_sigterm) -> None:
    """Without a parse pool (one process) SIGTERM used to kill the process outright;
    now the ingest unwinds: exit status 143, the documents committed before it stay,
    the one being written is not half stored, and a rerun completes the rest."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("How often should I descale the machine?\n")
    (docs / "b.txt").write_text("Lab safety: wear goggles.\n")
    (docs / "c.txt").write_text("Warranty covers two years.\n")
    store = tmp_path / "store"
    with Pipeline(parsers=[TextParser()], embedders={"bm25": TermOnWord()},
                  store=QdrantStore(path=str(store)),
                  ingest=IngestConfig(workers=1, batch_size=1)) as rag:
        with pytest.raises(SystemExit) as exc:
            rag.ingest([docs], progress=False)
        assert exc.value.code == 128 + signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # put back
        stored = {p.name: len(rag.store.chunk_ids(Source.from_path(p).document_id))
                  for p in sorted(docs.iterdir())}
    assert stored == {"a.txt": 1, "b.txt": 0, "c.txt": 0}
    with Pipeline(parsers=[TextParser()], embedders={"bm25": Bm25Embedder()},
                  store=QdrantStore(path=str(store))) as rag:
        report = rag.ingest([docs], progress=False)
    assert report.ok and report.chunks_added == 2 and report.chunks_unchanged == 1
