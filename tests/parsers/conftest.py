"""Fixtures for parser tests: real PDFs built with pymupdf in a temp dir."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pymupdf
import pytest

__all__ = ["make_pdf"]


def make_pdf(path: Path, pages: list[str], *, title: str = "", **save_kwargs) -> Path:
    """Write a PDF with one page per string (an empty string gives a blank page)."""
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page(width=595, height=842)
        if text:
            page.insert_textbox(pymupdf.Rect(72, 72, 523, 770), text, fontname="helv",
                                fontsize=11)
    if title:
        doc.set_metadata({"title": title})
    doc.save(str(path), **save_kwargs)
    doc.close()
    return path


@pytest.fixture
def pdf_factory(tmp_path: Path) -> Callable[..., Path]:
    """``pdf_factory(["page one", "page two"], name="x.pdf", **save_kwargs) -> Path``."""

    def factory(pages: list[str], name: str = "doc.pdf", **kwargs) -> Path:
        return make_pdf(tmp_path / name, pages, **kwargs)

    return factory
