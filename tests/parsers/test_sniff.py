"""sniff(): the real type from the first bytes, whatever the file is called."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from ragnest.media.sniff import SNIFF_BYTES, extension_for, sniff, sniff_bytes
from ragnest.types import Source


def _png() -> bytes:
    return pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 4, 4), 0).tobytes("png")


@pytest.mark.parametrize(("head", "kind"), [
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "pdf"),
    (b"\r\n\r\n%PDF-1.4 junk first", "pdf"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
    (b"GIF89a\x01\x00", "gif"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp"),
    (b"II*\x00\x08\x00\x00\x00", "tiff"),
    (b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml", "zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "ole"),
    (b"{\\rtf1\\ansi", "rtf"),
    (b"  <!DOCTYPE html><html><body>404</body></html>", "html"),
    (b"<?xml version='1.0'?><html xmlns='http://www.w3.org/1999/xhtml'>", "html"),
    (b"<?xml version='1.0'?><root/>", "xml"),
    (b"# Title\n\nSome markdown text.", "text"),
    ("caf\u00e9 cr\u00e8me".encode("cp1252"), "text"),
    ("\ufeffBOM text".encode("utf-8"), "text"),
    ("utf-16 text".encode("utf-16"), "text"),
    (b"\x00\x01\x02\x03\x04binary", None),
    (b"", None),
])
def test_sniff_bytes(head: bytes, kind: str | None) -> None:
    assert sniff_bytes(head) == kind
    assert sniff(head) == kind


def test_utf8_cut_inside_a_character_is_still_text() -> None:
    data = ("é" * SNIFF_BYTES).encode("utf-8")  # 2 bytes each: the 8 KB cut splits nothing
    assert sniff(data) == "text"
    data = b"a" + ("é" * SNIFF_BYTES).encode("utf-8")  # the cut splits a character
    assert sniff(data) == "text"


def test_misnamed_files(tmp_path: Path) -> None:
    doc = pymupdf.open()
    doc.new_page()
    pdf_as_txt = tmp_path / "report.txt"
    doc.save(str(pdf_as_txt))
    text_as_pdf = tmp_path / "notes.pdf"
    text_as_pdf.write_text("just some notes\n")
    png_as_jpg = tmp_path / "photo.jpg"
    png_as_jpg.write_bytes(_png())
    assert sniff(pdf_as_txt) == "pdf"
    assert sniff(str(text_as_pdf)) == "text"
    assert sniff(Source.from_path(png_as_jpg)) == "png"
    assert sniff(Source.from_bytes(pdf_as_txt.read_bytes(), name="x.txt")) == "pdf"


def test_missing_and_empty_files(tmp_path: Path) -> None:
    assert sniff(tmp_path / "missing.pdf") is None
    (tmp_path / "empty.pdf").write_bytes(b"")
    assert sniff(tmp_path / "empty.pdf") is None
    assert sniff(Source()) is None


def test_reads_only_the_head(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"text " * 10_000 + b"\x00" * 10)  # NUL bytes beyond the first 8 KB
    assert sniff(path) == "text"


def test_extension_for() -> None:
    assert extension_for("pdf") == ".pdf"
    assert extension_for("jpeg") == ".jpg"
    assert extension_for(None) is None
    assert extension_for("nonsense") is None
