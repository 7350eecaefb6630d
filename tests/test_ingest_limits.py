"""Limits and bad input at the pipeline level: nothing ingested is lost or duplicated.

Runs the real parsers, BM25 (fast) and the embedded Qdrant Edge store.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pymupdf
import pytest

from ragnest import Pipeline
from ragnest.config import IngestConfig
from ragnest.embedders.bm25 import Bm25Embedder
from ragnest.parsers.pdf import PdfParser
from ragnest.parsers.text import TextParser
from ragnest.stores.qdrant import QdrantStore
from ragnest.types import Source

from ._long_pdf import make_long_pdf

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"


def pipeline(store: Path, *, batch_size: int = 64, split_pages: int = 100,
             extra_parsers: tuple = ()) -> Pipeline:
    return Pipeline(
        parsers=[PdfParser(ocr="never"), TextParser(), *extra_parsers],
        embedders={"bm25": Bm25Embedder()},
        store=QdrantStore(path=str(store)),
        ingest=IngestConfig(batch_size=batch_size, split_pages=split_pages),
    )


def _image_parser() -> tuple:
    try:
        from ragnest.parsers.image import ImageParser
    except ImportError:  # pragma: no cover - the lite extra is not installed
        return ()
    return (ImageParser(ocr=False),)


def _stored(rag: Pipeline, path: Path) -> set[str]:
    return rag.store.chunk_ids(Source.from_path(path).document_id)


def _bomb_png(path: Path, side: int = 40_000) -> None:
    """A PNG that claims side x side pixels (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * (3 * side)
    idat = zlib.compress(row * 16, 9)  # far fewer rows than claimed: truncated, tiny
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("workers", [1, 2])
def test_bad_inputs_never_stop_an_ingest_or_lose_data(tmp_path: Path, workers: int) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    keep = tmp_path / "keep.pdf"
    shutil.copy(EXAMPLES / "lab_safety_guide.pdf", keep)
    shutil.copy(EXAMPLES / "nimbus3_handbook.pdf", docs / "good.pdf")
    shutil.copy(EXAMPLES / "lab_safety_guide.pdf", docs / "really_a_pdf.txt")
    (docs / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 20)
    (docs / "empty.pdf").write_bytes(b"")
    (docs / "html_error_page.pdf").write_text("<!DOCTYPE html><html><body>404</body></html>")
    (docs / "latin1.txt").write_bytes("Crème brûlée recipe: caramelise the sugar.".encode("cp1252"))
    (docs / "utf16.md").write_text("# Notes\n\nThe fjord ferry leaves at nine.", encoding="utf-16")
    enc = pymupdf.open()
    enc.new_page().insert_text((72, 72), "secret plans")
    enc.save(docs / "encrypted.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw",
             owner_pw="pw")
    images = _image_parser()
    if images:
        _bomb_png(docs / "bomb.png")
    with pipeline(tmp_path / "store", extra_parsers=images) as rag:
        rag.ingest([keep], progress=False)
        before = _stored(rag, keep)
        report = rag.ingest([keep, docs], progress=False, workers=workers)
        reasons = {Path(s.path).name: s.reason for s in report.skipped}
        ingested = sorted(Path(d.path).name for d in report.documents)
        assert ingested == ["good.pdf", "keep.pdf", "latin1.txt", "really_a_pdf.txt", "utf16.md"]
        assert "empty (0 bytes)" in reasons["empty.pdf"]
        assert "encrypted" in reasons["encrypted.pdf"]
        assert "not a valid PDF" in reasons["corrupt.pdf"]
        assert "html" in reasons["html_error_page.pdf"].lower()
        if images:
            assert "pixels" in reasons["bomb.png"]
        assert set(reasons) == ({"empty.pdf", "encrypted.pdf", "corrupt.pdf",
                                 "html_error_page.pdf"} | ({"bomb.png"} if images else set()))
        # The document ingested before is untouched, nothing is duplicated.
        assert _stored(rag, keep) == before
        assert rag.stats()["documents"] == 5
        total = sum(len(_stored(rag, p)) for p in [keep, docs / "good.pdf", docs / "latin1.txt",
                                                     docs / "really_a_pdf.txt", docs / "utf16.md"])
        assert rag.stats()["chunks"] == total
        # Non-UTF-8 text was decoded, not mangled; the PDF named .txt was read as a PDF.
        hit = rag.retrieve("crème brûlée caramelise", k=1)[0]
        assert hit.chunk.source.endswith("latin1.txt") and "brûlée" in hit.chunk.text
        assert rag.retrieve("fjord ferry", k=1)[0].chunk.source.endswith("utf16.md")
        pdf_as_txt = rag.store.get(sorted(_stored(rag, docs / "really_a_pdf.txt")))
        assert sorted(c.page for c in pdf_as_txt) == [1, 2, 3, 4]
        assert {c.kind for c in pdf_as_txt} == {"page"}


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_ten_thousand_pages_stream_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "long.pdf"
    make_long_pdf(path, 10_000)
    parser = PdfParser(ocr="never")
    rss = {}
    count = 0
    for chunk in parser.parse(Source.from_path(path)):  # a streaming consumer
        count += 1
        if count in (1_000, 10_000):
            rss[count] = _rss_mb()
        assert chunk.page == count
    assert count == 10_000
    assert rss[10_000] - rss[1_000] < 40, rss  # flat, not 10x
    tail = list(parser.parse_pages(Source.from_path(path), 9_998, None))
    assert [c.page for c in tail] == [9_999, 10_000]


def test_failed_write_keeps_the_previous_version(tmp_path: Path, monkeypatch) -> None:
    doc = tmp_path / "manual.pdf"

    def write(texts: list[str]) -> None:
        pdf = pymupdf.open()
        for text in texts:
            pdf.new_page().insert_text((72, 72), text)
        pdf.save(doc)

    write([f"Version one, page {i}: the boiler holds one litre." for i in range(3)])
    with pipeline(tmp_path / "store", batch_size=2) as rag:
        assert rag.ingest([doc], progress=False).chunks_added == 3
        v1 = _stored(rag, doc)
        fp1 = rag.store.document_fingerprint(Source.from_path(doc).document_id)
        write([f"Version two, page {i}: the boiler holds two litres." for i in range(5)])
        emb = rag.embedders["bm25"]
        real = emb.embed_documents
        calls = []

        def flaky(chunks):
            calls.append(len(chunks))
            if len(calls) == 2:
                raise RuntimeError("GPU fell off the bus")
            return real(chunks)

        monkeypatch.setattr(emb, "embed_documents", flaky)
        report = rag.ingest([doc], progress=False)
        assert calls == [2, 2]  # embedded batch by batch, stopped at the failure
        assert "GPU fell off the bus" in report.skipped[0].reason
        assert report.skipped[0].path == str(doc)
        # Nothing half-written: the first version is intact, its fingerprint too.
        assert _stored(rag, doc) == v1
        assert rag.store.document_fingerprint(Source.from_path(doc).document_id) == fp1
        assert "one litre" in rag.retrieve("boiler litre", k=1)[0].chunk.text
        monkeypatch.setattr(emb, "embed_documents", real)
        again = rag.ingest([doc], progress=False)
        assert again.documents[0].status == "updated" and again.chunks_added == 5
        assert not (_stored(rag, doc) & v1) and len(_stored(rag, doc)) == 5


def test_parallel_ingest_gives_the_same_chunks(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(EXAMPLES, docs)
    make_long_pdf(docs / "long.pdf", 30, text="Page of a longer manual.")
    results = {}
    for workers in (1, 2):
        with pipeline(tmp_path / f"store{workers}", split_pages=7) as rag:
            report = rag.ingest([docs], progress=False, workers=workers)
            assert not report.skipped
            results[workers] = (
                [(Path(d.path).name, d.pages, d.added) for d in report.documents],
                {p.name: _stored(rag, p) for p in sorted(docs.iterdir())},
            )
    assert results[1] == results[2]
    assert results[2][1]["long.pdf"] and len(results[2][1]["long.pdf"]) == 30
