"""RagnestLoader: ragnest's parsers as a LangChain document loader."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from langchain_core.document_loaders import BaseLoader
from langchain_ragnest import RagnestLoader, document_to_chunk
from langchain_ragnest.images import image_bytes

from ragnest import ParseError
from ragnest.parsers.text import TextParser


def test_page_chunks_with_screenshot_references(docs_dir: Path):
    loader = RagnestLoader(docs_dir / "nimbus3_handbook.pdf")
    assert isinstance(loader, BaseLoader)
    docs = loader.load()
    assert [d.metadata["page"] for d in docs] == list(range(1, 9))
    page5 = docs[4]
    assert page5.metadata["kind"] == "page" and "Descale the machine" in page5.page_content
    assert page5.metadata["image"]["uri"].endswith("nimbus3_handbook.pdf#page=5")
    assert page5.metadata["text_source"] == "text-layer"
    data, mime = image_bytes(page5)
    assert mime == "image/jpeg" and data[:2] == b"\xff\xd8"
    assert document_to_chunk(page5).id == page5.id


def test_interleaved_chunks_over_a_folder_are_lazy(docs_dir: Path):
    stream = RagnestLoader(docs_dir, chunking="interleaved").lazy_load()
    first = next(stream)  # one file parsed so far, not the folder
    assert first.metadata["source"].endswith("lab_safety_guide.pdf")
    docs = [first, *stream]
    kinds = {d.metadata["kind"] for d in docs}
    assert kinds == {"interleaved", "text"}
    pdf = [d for d in docs if d.metadata["kind"] == "interleaved"]
    assert all("viewrect=" in d.metadata["image"]["uri"] for d in pdf if "image" in d.metadata)
    assert sum("image" in d.metadata for d in pdf) > 0
    md = [d for d in docs if d.metadata["source"].endswith("travel_faq.md")]
    assert md and all("image" not in d.metadata for d in md)


def test_bad_and_unknown_files_are_skipped_or_raised(tmp_path: Path, docs_dir: Path, caplog):
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "data.bin").write_bytes(bytes(range(256)))
    (tmp_path / "notes.md").write_text("# Notes\n\nDescale monthly.\n")
    with caplog.at_level(logging.WARNING, logger="langchain_ragnest"):
        docs = RagnestLoader([tmp_path, tmp_path / "missing.pdf"]).load()
    assert [Path(d.metadata["source"]).name for d in docs] == ["notes.md"]
    assert "empty.pdf" in caplog.text and "data.bin" in caplog.text and "missing.pdf" in caplog.text
    with pytest.raises(ParseError, match="empty.pdf"):
        RagnestLoader(tmp_path / "empty.pdf", strict=True).load()
    only_text = RagnestLoader(docs_dir, parsers=[TextParser()]).load()
    assert {Path(d.metadata["source"]).name for d in only_text} == {"travel_faq.md"}
    with pytest.raises(ValueError, match="chunking='pages'"):
        RagnestLoader(docs_dir, chunking="pages")  # type: ignore[arg-type]
