"""PdfParser: one chunk per page, stable ids, clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pymupdf
import pytest

from ragnest.errors import ConfigError, ParseError, RagnestError
from ragnest.parsers.pdf import PdfParser
from ragnest.protocols import Parser
from ragnest.types import Chunk, Source

PAGES = [
    "Chapter one. The pump builds 15 bar of pressure.",
    "Chapter two. Descale the machine every 8 weeks.",
    "Chapter three. Error E03 means low water flow.",
]


def parse(source: Source, **kwargs) -> list[Chunk]:
    return list(PdfParser(**kwargs).parse(source))


def test_contract() -> None:
    parser = PdfParser(dpi=144, password_env="X", max_pages=3)
    assert isinstance(parser, Parser)
    assert parser.extensions == (".pdf",)
    assert PdfParser(**dataclasses.asdict(parser)) == parser
    parser.warm_up()
    parser.close()


@pytest.mark.parametrize(("params", "field"), [
    ({"chunking": "pages"}, "chunking"),
    ({"ocr": "sometimes"}, "ocr"),
    ({"max_chars": 100, "overlap": 100}, "overlap"),
    ({"max_chars": 0, "overlap": 0}, "max_chars"),
    ({"dpi": 0}, "dpi"),
    ({"ocr_max_pixels": -1}, "ocr_max_pixels"),
    ({"table_strategy": "grid"}, "table_strategy"),
    ({"max_pages": 0}, "max_pages"),
])
def test_bad_parameters_are_config_errors(params: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^PdfParser\.{field}") as info:
        PdfParser(**params)
    assert isinstance(info.value, ValueError)  # ConfigError subclasses ValueError


def test_one_chunk_per_page(pdf_factory) -> None:
    path = pdf_factory(PAGES, title="Pump manual")
    source = Source.from_path(path)
    chunks = parse(source, dpi=120)
    assert [c.page for c in chunks] == [1, 2, 3]
    for chunk, expected in zip(chunks, PAGES):
        assert chunk.kind == "page"
        assert chunk.text == expected
        assert chunk.document_id == source.document_id
        assert chunk.source == str(path)
        assert chunk.bbox == (0.0, 0.0, 595.0, 842.0)
        assert chunk.image is not None
        image = chunk.image
        assert (image.source, image.page, image.dpi) == (str(path), chunk.page, 120)
        assert chunk.image.clip is None
        assert chunk.metadata == {
            "page_count": 3, "title": "Pump manual", "width": 595.0, "height": 842.0,
            "text_source": "text-layer",
        }
    assert len({c.id for c in chunks}) == 3


def test_payload_roundtrip(pdf_factory) -> None:
    chunk = parse(Source.from_path(pdf_factory(PAGES)))[0]
    assert Chunk.from_payload(chunk.id, chunk.to_payload()) == chunk
    assert chunk.metadata["title"] is None


def test_ids_stable_and_content_sensitive(pdf_factory) -> None:
    path = pdf_factory(PAGES, name="a.pdf")
    first = [c.id for c in parse(Source.from_path(path))]
    second = [c.id for c in parse(Source.from_path(path))]
    assert first == second
    pdf_factory([PAGES[0], PAGES[1] + " Changed.", PAGES[2]], name="a.pdf")
    third = [c.id for c in parse(Source.from_path(path))]
    assert third[0] == first[0] and third[2] == first[2]
    assert third[1] != first[1]


def test_reading_order_and_dehyphenation(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page()
    # Written bottom-first: the parser must still read top to bottom, cells left to right.
    page.insert_text((72, 300), "a long hyph-\nenated word, well-\nKnown 12-\n15",
                     fontname="helv")
    page.insert_text((300, 200), "right cell", fontname="helv", fontsize=14)
    page.insert_text((72, 100), "Heading   with    spaces", fontname="helv")
    page.insert_text((72, 200), "left cell", fontname="helv", fontsize=8)
    path = tmp_path / "order.pdf"
    doc.save(str(path))
    text = parse(Source.from_path(path))[0].text
    assert text.split("\n\n") == ["Heading with spaces", "left cell", "right cell",
                                  "a long hyphenated word, well- Known 12- 15"]


def test_bytes_source(pdf_factory) -> None:
    data = pdf_factory(PAGES).read_bytes()
    source = Source.from_bytes(data, name="manual.pdf")
    chunks = parse(source)
    assert [c.text for c in chunks] == PAGES
    assert all(c.source == "manual.pdf" and c.image.source == "manual.pdf" for c in chunks)
    again = parse(Source.from_bytes(data, name="manual.pdf"))
    assert [c.id for c in chunks] == [c.id for c in again]


def test_max_pages(pdf_factory) -> None:
    chunks = parse(Source.from_path(pdf_factory(PAGES)), max_pages=2)
    assert [c.page for c in chunks] == [1, 2]
    assert chunks[0].metadata["page_count"] == 3


def test_page_without_text_still_yields_a_chunk(pdf_factory) -> None:
    chunks = parse(Source.from_path(pdf_factory(["words here", ""])))
    assert len(chunks) == 2
    assert chunks[1].text == "" and chunks[1].metadata["text_source"] == "none"
    assert chunks[0].metadata["text_source"] == "text-layer"


def test_parse_is_lazy(pdf_factory) -> None:
    it = PdfParser().parse(Source.from_path(pdf_factory(PAGES)))
    assert next(it).page == 1
    it.close()  # closes the document early without error


def test_pdf_named_txt_is_still_a_pdf(tmp_path: Path, pdf_factory) -> None:
    path = pdf_factory(PAGES, name="misnamed.txt")
    assert [c.text for c in parse(Source.from_path(path))] == PAGES


# ----------------------------------------------------------------------------- errors


def _error(source: Source, **kwargs) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse(source, **kwargs)
    assert isinstance(info.value, RagnestError)
    return info.value


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")
    err = _error(Source.from_path(path))
    assert err.path == str(path)
    assert "file is empty (0 bytes)" in str(err)


def test_missing_file(tmp_path: Path) -> None:
    err = _error(Source.from_path(tmp_path / "gone.pdf"))
    assert "file not found" in err.reason


def test_text_named_pdf(tmp_path: Path) -> None:
    path = tmp_path / "fake.pdf"
    path.write_text("<html><body>404 Not Found</body></html>")
    err = _error(Source.from_path(path))
    assert err.reason.startswith("not a valid PDF")
    assert "html" in err.reason


@pytest.mark.parametrize("data", [
    b"%PDF-1.7\n" + bytes(range(256)) * 8,
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << >>\n%%EOF",
    b"\x00\x01\x02garbage",
])
def test_corrupt_bytes(data: bytes) -> None:
    err = _error(Source.from_bytes(data, name="broken.pdf"))
    assert err.path == "broken.pdf"
    assert "not a valid PDF" in err.reason or "no pages" in err.reason


def test_truncated_pdf_is_repaired_or_rejected(pdf_factory) -> None:
    data = pdf_factory(PAGES).read_bytes()
    source = Source.from_bytes(data[: len(data) * 2 // 3], name="cut.pdf")
    try:
        chunks = parse(source)
    except ParseError as err:
        assert err.path == "cut.pdf"
    else:
        assert chunks and chunks[0].text == PAGES[0]


@pytest.fixture
def encrypted_pdf(pdf_factory) -> Path:
    return pdf_factory(PAGES, name="secret.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256,
                       user_pw="s3cret", owner_pw="owner-pw")


def test_encrypted_without_password(encrypted_pdf: Path) -> None:
    err = _error(Source.from_path(encrypted_pdf))
    assert "encrypted" in err.reason and "password_env" in err.reason


def test_encrypted_with_unset_env_var(encrypted_pdf: Path, monkeypatch) -> None:
    monkeypatch.delenv("RAGNEST_TEST_PDF_PW", raising=False)
    err = _error(Source.from_path(encrypted_pdf), password_env="RAGNEST_TEST_PDF_PW")
    assert "encrypted" in err.reason


def test_encrypted_with_wrong_password(encrypted_pdf: Path, monkeypatch) -> None:
    monkeypatch.setenv("RAGNEST_TEST_PDF_PW", "nope")
    err = _error(Source.from_path(encrypted_pdf), password_env="RAGNEST_TEST_PDF_PW")
    assert "rejected" in err.reason


def test_encrypted_with_password_env(encrypted_pdf: Path, monkeypatch) -> None:
    monkeypatch.setenv("RAGNEST_TEST_PDF_PW", "s3cret")
    chunks = parse(Source.from_path(encrypted_pdf), password_env="RAGNEST_TEST_PDF_PW")
    assert [c.text for c in chunks] == PAGES


def test_parse_error_pickles() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(ParseError("a.pdf", "PDF has no pages")))
    assert (err.path, err.reason) == ("a.pdf", "PDF has no pages")
