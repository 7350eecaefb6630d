"""MuPDF's complaints about a damaged file go to the log and to that file's warnings,
never to stdout (fd 1 included: ``ragnest ingest --json`` prints its report there)."""

from __future__ import annotations

import logging
from pathlib import Path

from ragnest.ingest.pool import ParsePool
from ragnest.media.diagnostics import MAX_DISTINCT, collect_warnings, warn
from ragnest.media.mupdf import pymupdf
from ragnest.media.render import render_array
from ragnest.parsers.pdf import PdfParser
from ragnest.types import ImageRef, Source

from ._docs import nested_pdf


def test_nothing_on_stdout_and_the_messages_are_collected(tmp_path: Path, capfd, caplog) -> None:
    path = nested_pdf(tmp_path / "nested.pdf")
    caplog.set_level(logging.INFO, logger="ragnest.media.mupdf")
    with collect_warnings() as notes:
        chunks = list(PdfParser(ocr="never").parse(Source.from_path(path)))
    pixels = render_array(ImageRef(source=str(path), page=1, dpi=30))
    out, _ = capfd.readouterr()
    assert out == ""
    assert chunks and "nested" in chunks[0].text and pixels.size
    assert any("stack overflow" in m for m in notes.messages()), notes.messages()
    assert any("MuPDF: exception stack overflow" in r.getMessage() for r in caplog.records)
    assert pymupdf.TOOLS.mupdf_warnings(reset=False) == ""  # drained: the store stays small


def test_pool_keeps_each_documents_warnings(tmp_path: Path, capfd) -> None:
    nested = nested_pdf(tmp_path / "nested.pdf")
    clean = Path(__file__).resolve().parents[2] / "examples" / "docs" / "lab_safety_guide.pdf"
    jobs = [(Source.from_path(p), PdfParser(ocr="never")) for p in (nested, clean)]
    for workers in (1, 2):
        with ParsePool(workers=workers) as pool:
            said = {s.name: pool.warnings(s) for s, _, err in pool.map(jobs) if err is None}
        assert any("stack overflow" in m for m in said["nested.pdf"]), (workers, said)
        assert said["lab_safety_guide.pdf"] == ()
    assert capfd.readouterr().out == ""


def test_warnings_are_bounded() -> None:
    with collect_warnings() as notes:
        for i in range(1000):
            warn(f"problem {i % (MAX_DISTINCT + 5)}")
    messages = notes.messages()
    assert len(messages) == MAX_DISTINCT + 1 and messages[-1].startswith("... and ")
