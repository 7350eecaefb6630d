"""Parser workers that also embed: the same points as an ingest in one process, and the
fallbacks (embedders that cannot travel, a worker whose embedding fails)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from ragnest import Pipeline
from ragnest.config import IngestConfig
from ragnest.embedders.bm25 import Bm25Embedder
from ragnest.errors import ConfigError
from ragnest.ingest.embed import embed_chunks, portable_embedders, unpack_embedders
from ragnest.ingest.pool import ParsePool
from ragnest.media.mupdf import pymupdf
from ragnest.parsers import PdfParser, TextParser
from ragnest.stores import QdrantStore
from ragnest.types import Source
from tests.distributed._store import snapshot

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "docs"
GNUPLOT = Path("/usr/share/doc/gnuplot/gnuplot.pdf")


def _corpus(tmp_path: Path) -> Path:
    """examples/docs plus, where the machine has it, 25 figure-heavy gnuplot pages."""
    docs = tmp_path / "docs"
    shutil.copytree(EXAMPLES, docs)
    if GNUPLOT.is_file():
        with pymupdf.open(GNUPLOT) as src, pymupdf.open() as out:
            out.insert_pdf(src, from_page=60, to_page=84)
            out.save(docs / "gnuplot-part.pdf")
    return docs


def _same(a: Any, b: Any) -> bool:
    if hasattr(a, "indices"):
        return list(a.indices) == list(b.indices) and list(a.values) == list(b.values)
    return a.dtype == b.dtype and np.array_equal(a, b)


def test_two_workers_store_exactly_what_one_process_stores(tmp_path: Path) -> None:
    docs = _corpus(tmp_path)
    stores = {}
    for workers in (1, 2):
        store = tmp_path / f"store{workers}"
        with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}) as rag:
            rag.ingest_config = IngestConfig(split_pages=15, embed_in_workers=True)
            report = rag.ingest([docs], workers=workers, progress=False)
            assert report.ok and not report.skipped
        stores[workers] = snapshot(store)
    one, two = stores[1], stores[2]
    assert len(one) > 25 and one.keys() == two.keys()
    for pid in one:  # payloads and every vector, point by point
        assert one[pid] == two[pid], pid


def test_worker_vectors_equal_the_main_process_vectors(tmp_path: Path) -> None:
    docs = _corpus(tmp_path)
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(tmp_path / "s")}) as rag:
        rag.warm_up()
        sources = [Source.from_path(p) for p in sorted(docs.glob("*.pdf"))]
        parser = PdfParser(ocr="never")
        first = sources[0]
        with ParsePool(workers=2, split_pages=10, embedders=rag.embedders, embed=True,
                       stored=lambda doc: {"not-a-chunk"}) as pool:
            assert pool.embeds
            for source, chunks, error in pool.map([(s, parser) for s in sources]):
                assert error is None and chunks
                made = pool.vectors(source)
                assert set(made) == {c.id for c in chunks}
                here = embed_chunks(rag.embedders, chunks)
                for point in here:
                    theirs = made[point.chunk.id]
                    assert theirs.keys() == point.vectors.keys()
                    assert all(_same(v, theirs[k]) for k, v in point.vectors.items())
            assert pool.vectors(first) == {}  # handed over once


def test_stored_chunks_are_not_embedded_again(tmp_path: Path) -> None:
    pdf = EXAMPLES / "lab_safety_guide.pdf"
    source = Source.from_path(pdf)
    parser = PdfParser(ocr="never")
    ids = [c.id for c in parser.parse(source)]
    keep = set(ids[:2])
    with ParsePool(workers=2, embedders={"bm25": Bm25Embedder()}, embed=True,
                   stored=lambda doc: keep if doc == source.document_id else set()) as pool:
        [(_, chunks, error)] = list(pool.map([(source, parser)]))
        assert error is None and [c.id for c in chunks] == ids
        assert set(pool.vectors(source)) == set(ids) - keep


class _LockedBm25:
    """A real BM25 embedder holding a lock: it cannot be pickled (nor copied as a
    dataclass), so it cannot travel to a worker."""

    def __init__(self) -> None:
        self.inner = Bm25Embedder()
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_embedders_that_cannot_travel_stay_in_the_main_process(tmp_path: Path) -> None:
    assert portable_embedders({"bm25": _LockedBm25()}) is None
    # a model that does not say it may be copied into every worker (a GPU or remote
    # model) stays in the main process, whatever the others say
    assert portable_embedders({"bm25": Bm25Embedder(), "gpu": _MainOnly()}) is None
    packed = portable_embedders({"bm25": Bm25Embedder()})
    assert packed is not None and isinstance(unpack_embedders(packed)["bm25"], Bm25Embedder)
    with ParsePool(workers=2, embedders={"bm25": _LockedBm25()}) as pool:
        assert not pool.embeds
    with ParsePool(workers=1, embedders={"bm25": Bm25Embedder()}) as pool:
        assert not pool.embeds  # in one process the writer embeds
    rag = Pipeline(parsers=[PdfParser(ocr="never"), TextParser()],
                   embedders={"bm25": _LockedBm25()},
                   store=QdrantStore(path=str(tmp_path / "store")))
    with rag:
        report = rag.ingest([EXAMPLES], workers=2, progress=False)
    assert report.ok and report.chunks_added > 0


class _MainOnly(Bm25Embedder):
    embeds_in_workers: ClassVar[bool] = False


class FailsOnWord(Bm25Embedder):
    """BM25 that refuses any chunk holding ``word`` (a model that breaks on one input)."""

    word: str = "descale"

    def embed_documents(self, chunks):  # type: ignore[no-untyped-def]
        if any(self.word in (c.text or "").lower() for c in chunks):
            raise ValueError(f"cannot embed a chunk holding {self.word!r}")
        return super().embed_documents(chunks)


def test_a_document_that_fails_to_embed_is_skipped_the_others_are_stored(tmp_path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("How often should I descale the machine?\n")
    (docs / "b.txt").write_text("Lab safety: wear goggles.\n")
    (docs / "c.txt").write_text("Warranty covers two years.\n")
    emb = FailsOnWord()
    assert portable_embedders({"bm25": emb}) is not None  # the worker gets it too
    rag = Pipeline(parsers=[TextParser()], embedders={"bm25": emb},
                   store=QdrantStore(path=str(tmp_path / "store")),
                   ingest=IngestConfig(embed_in_workers=True))
    with rag:
        report = rag.ingest([docs], workers=2, progress=False)
    assert [Path(s.path).name for s in report.skipped] == ["a.txt"]
    assert "embedding failed" in report.skipped[0].reason
    assert "descale" in report.skipped[0].reason
    assert sorted(Path(d.path).name for d in report.documents) == ["b.txt", "c.txt"]


def test_an_update_with_workers_keeps_unchanged_chunks(tmp_path: Path) -> None:
    workers = 2
    docs = tmp_path / "docs"
    docs.mkdir()
    note = docs / "notes.md"
    note.write_text("# One\n\nfirst section\n\n# Two\n\nsecond section\n")
    store = tmp_path / "store"
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}) as rag:
        rag.ingest_config = IngestConfig(embed_in_workers=True)
        rag.ingest([docs], workers=workers, progress=False)
        note.write_text("# One\n\nfirst section\n\n# Two\n\nsecond section, changed\n")
        report = rag.ingest([docs], workers=workers, progress=False)
    [doc] = report.documents
    assert doc.status == "updated" and doc.unchanged >= 1 and doc.added >= 1
    fresh = tmp_path / "fresh"
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(fresh)}) as rag:
        rag.ingest([docs], workers=1, progress=False)
    assert snapshot(store) == snapshot(fresh)


def test_workers_embed_under_auto_only_with_a_cpu_left_for_the_writer() -> None:
    from ragnest.ingest.pool import _cpus

    cpus = _cpus()
    with ParsePool(workers=cpus, embedders={"bm25": Bm25Embedder()}) as pool:
        assert not pool.embeds or cpus == 1  # every CPU parses: the writer embeds
    with ParsePool(workers=2, embedders={"bm25": Bm25Embedder()}, embed=False) as pool:
        assert not pool.embeds
    if cpus > 2:
        with ParsePool(workers=2, embedders={"bm25": Bm25Embedder()}) as pool:
            assert pool.embeds
    with pytest.raises(ConfigError, match="embed must be"):
        ParsePool(workers=2, embed="sometimes")
