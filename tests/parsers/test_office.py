"""OfficeParser with real unstructured on real documents built by office_fixtures."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

pytest.importorskip("unstructured")
pytest.importorskip("docx")
pytest.importorskip("pptx")
pytest.importorskip("pypandoc")

from office_fixtures import (  # noqa: E402  (after the importorskips)
    HTML,
    PICTURE_SIZE,
    SLIDE_PICTURE_SIZE,
    build_all,
    make_eml,
    make_markdown,
)

from ragnest.errors import ConfigError, ParseError  # noqa: E402
from ragnest.media.render import render_array  # noqa: E402
from ragnest.parsers import office  # noqa: E402
from ragnest.parsers.office import (  # noqa: E402
    LIBREOFFICE_MISSING,
    OfficeParser,
    _unstructured,
    detect_format,
    html_table_to_markdown,
    markdown_table_parts,
)
from ragnest.parsers.office import parser as office_parser  # noqa: E402
from ragnest.parsers.office import pictures as office_pictures  # noqa: E402
from ragnest.parsers.office import render as office_render  # noqa: E402
from ragnest.protocols import Parser  # noqa: E402
from ragnest.testing.contracts import check_component_contract  # noqa: E402
from ragnest.types import Chunk, Source  # noqa: E402

HAS_SOFFICE = office.find_libreoffice() is not None


@pytest.fixture(scope="session")
def docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_all(tmp_path_factory.mktemp("office"))


@pytest.fixture(scope="session")
def parser() -> OfficeParser:
    p = OfficeParser()
    p.warm_up()
    return p


@pytest.fixture(scope="session")
def parsed(docs: dict[str, Path], parser: OfficeParser) -> dict[str, list[Chunk]]:
    return {key: list(parser.parse(Source.from_path(path)))
            for key, path in docs.items() if key != "encrypted"}


def segments(chunks: list[Chunk], kind: str | None = None, role: str | None = None):
    return [s for c in chunks for s in c.segments
            if (kind is None or s.kind == kind) and (role is None or s.role == role)]


def image_size(seg) -> tuple[int, int]:
    arr = render_array(seg.image)
    assert arr.dtype.name == "uint8" and arr.shape[2] == 3
    return arr.shape[1], arr.shape[0]


# -- contract, config ------------------------------------------------------------------


def test_contract() -> None:
    obj = check_component_contract(
        OfficeParser, {"chunking": "page", "libreoffice": "/nonexistent/soffice",
                       "cache_dir": "/nonexistent/cache"}, role="parser")
    assert isinstance(obj, Parser)
    assert {".docx", ".pptx", ".xlsx", ".html", ".htm", ".md", ".markdown", ".eml", ".epub",
            ".odt"} <= set(OfficeParser.extensions)


@pytest.mark.parametrize("params", [{"chunking": "slides"}, {"max_chars": 0},
                                    {"max_chars": 100, "overlap": 100}])
def test_bad_config(params: dict) -> None:
    with pytest.raises(ConfigError):
        OfficeParser(**params)


# -- formats -----------------------------------------------------------------------------


def test_docx(parsed: dict[str, list[Chunk]], docs: dict[str, Path]) -> None:
    chunks = parsed["docx"]
    assert [c.segments[0].text for c in chunks] == ["Setup", "Specifications", "Cleaning"]
    assert all(c.segments[0].role == "heading" for c in chunks)
    assert all(c.kind == "interleaved" and c.page is None for c in chunks)
    assert all(c.metadata["format"] == "docx" and c.metadata["title"] == "Nimbus Guide"
               for c in chunks)
    first = chunks[0]
    kinds = [(s.kind, s.role) for s in first.segments]
    assert kinds == [("text", "heading"), ("text", None), ("image", "picture"),
                     ("text", "caption"), ("text", "list")]
    assert "Fill the water tank" in first.text and "Figure 1: the water tank" in first.text
    picture = first.segments[2]
    assert picture.image.blob == f"{docs['docx']}::word/media/image1.png"
    assert image_size(picture) == PICTURE_SIZE
    # the 16x16 icon in the last section is skipped
    assert len(segments(chunks, "image")) == 1
    table = segments(chunks, "table")
    assert [t.text for t in table] == ["| Part | Qty |\n| --- | --- |\n| Pump | 1 |\n| Valve | 2 |"]
    assert table[0] in chunks[1].segments


def test_pptx(parsed: dict[str, list[Chunk]], docs: dict[str, Path]) -> None:
    chunks = parsed["pptx"]
    assert [c.page for c in chunks] == [1, 2, 3]
    assert [c.segments[0].text for c in chunks] == ["Welcome", "Photo of the pump", "Spare parts"]
    assert "espresso at 93 degrees" in chunks[0].text
    pictures = segments(chunks, "image")
    assert len(pictures) == 1 and pictures[0] in chunks[1].segments
    assert pictures[0].page == 2 and pictures[0].text == ""  # file-name alt text dropped
    assert pictures[0].image.blob.startswith(f"{docs['pptx']}::ppt/media/")
    assert image_size(pictures[0]) == SLIDE_PICTURE_SIZE
    assert chunks[2].segments[1].kind == "table"
    assert "| Gasket | 4.50 |" in chunks[2].segments[1].text
    assert chunks[0].metadata["title"] == "Nimbus Deck"


def test_xlsx(parsed: dict[str, list[Chunk]]) -> None:
    chunks = parsed["xlsx"]
    assert [(c.page, c.metadata["sheet"]) for c in chunks] == [(1, "Prices"), (2, "Stock")]
    assert chunks[0].segments[0].kind == "table"
    assert chunks[0].segments[0].text.startswith("| Item | Price |\n| --- | --- |\n| Pump | 120 |")
    assert "| Valve | 3 |" in chunks[1].text


def test_html(parsed: dict[str, list[Chunk]], docs: dict[str, Path]) -> None:
    chunks = parsed["html"]
    assert [c.segments[0].text for c in chunks] == ["Café crème", "Parts"]
    assert chunks[0].metadata["title"] == "Café manual"
    assert "Brew at 93 °C – never hotter." in chunks[0].text
    picture, caption = chunks[0].segments[2:4]
    assert picture.kind == "image" and picture.text == "The pump"
    assert picture.image.blob == str(docs["html"].parent / "pump.png")
    assert image_size(picture) == PICTURE_SIZE
    assert (caption.role, caption.text) == ("caption", "Figure 2: the pump")
    assert segments(chunks, "table")[0].text == "| Part | Qty |\n| --- | --- |\n| Pump | 1 |"
    # a remote image keeps its alt text, as text
    assert "remote logo" in chunks[-1].text and len(segments(chunks, "image")) == 1


def test_markdown(parsed: dict[str, list[Chunk]]) -> None:
    chunks = parsed["md"]
    assert [c.segments[0].text for c in chunks] == ["Setup", "Descaling"]
    assert chunks[0].metadata["title"] == "Nimbus Notes"  # from the front matter
    assert "title:" not in chunks[0].text
    assert [s.kind for s in chunks[0].segments] == ["text", "text", "image", "table"]
    assert image_size(chunks[0].segments[2]) == PICTURE_SIZE


def test_eml(parsed: dict[str, list[Chunk]]) -> None:
    chunks = parsed["eml"]
    assert len(chunks) == 1
    meta = chunks[0].metadata
    assert meta["subject"] == meta["title"] == "Descaling schedule"
    assert meta["from"] == "Ana <ana@example.com>" and meta["to"] == "bob@example.com"
    assert meta["date"].startswith("Tue, 03 Mar 2026") and meta["attachments"] == ["manual.pdf"]
    assert "descale the Nimbus every 8 weeks at 93 °C – café crème" in chunks[0].text


def test_epub(parsed: dict[str, list[Chunk]], docs: dict[str, Path]) -> None:
    chunks = parsed["epub"]
    assert chunks[0].metadata["title"] == "Nimbus Book"
    assert [c.segments[0].text for c in chunks] == ["Setup", "Descaling"]
    pictures = segments(chunks, "image")
    assert len(pictures) == 1 and pictures[0].text == "The pump"
    assert pictures[0].image.blob.startswith(f"{docs['epub']}::")
    assert image_size(pictures[0]) == PICTURE_SIZE
    assert not segments(chunks, role="caption")  # pandoc's caption repeats the alt text
    assert segments(chunks, "table")


def test_odt(parsed: dict[str, list[Chunk]], docs: dict[str, Path]) -> None:
    chunks = parsed["odt"]
    assert chunks[0].metadata["title"] == "Nimbus Notes"
    pictures = segments(chunks, "image")
    assert len(pictures) == 1
    assert pictures[0].image.blob.startswith(f"{docs['odt']}::Pictures/")
    assert image_size(pictures[0]) == PICTURE_SIZE
    setup = next(c for c in chunks if c.segments[0].text == "Setup")
    assert pictures[0] in setup.segments and "Fill the tank" in setup.text
    assert segments(chunks, "table")


def test_ids_stable_and_payload_round_trip(docs: dict[str, Path], parser: OfficeParser,
                                           parsed: dict[str, list[Chunk]]) -> None:
    again = list(parser.parse(Source.from_path(docs["docx"])))
    assert [c.id for c in again] == [c.id for c in parsed["docx"]]
    for chunks in parsed.values():
        assert len({c.id for c in chunks}) == len(chunks)
        assert [c.metadata["position"] for c in chunks] == list(range(len(chunks)))
        for c in chunks:
            assert Chunk.from_payload(c.id, c.to_payload()) == c


def test_long_table_is_split_with_header(tmp_path: Path) -> None:
    rows = "".join(f"<tr><td>part {i}</td><td>{i * 3}</td></tr>" for i in range(120))
    html = f"<html><body><h1>Parts</h1><table><tr><th>Part</th><th>Qty</th></tr>{rows}</table>"
    chunks = list(OfficeParser(max_chars=500, overlap=50).parse(
        Source.from_bytes(html.encode(), name="parts.html")))
    tables = segments(chunks, "table")
    assert len(tables) > 3
    assert all(t.text.startswith("| Part | Qty |\n| --- | --- |\n") for t in tables)
    assert all(len(c.text) <= 600 for c in chunks)
    body = [line for t in tables for line in t.text.split("\n")[2:]]
    assert body == [f"| part {i} | {i * 3} |" for i in range(120)]


# -- encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize(("encoding", "charset"), [
    ("cp1252", "windows-1252"), ("latin-1", "iso-8859-1"), ("utf-16", "utf-16"),
    ("cp1252", "utf-8"),  # a lying meta charset: falls back to cp1252
])
def test_html_encodings(tmp_path: Path, parser: OfficeParser, encoding: str,
                        charset: str) -> None:
    text = HTML if encoding != "latin-1" else HTML.replace("\u2013", "-")
    path = tmp_path / "page.html"
    path.write_bytes(text.replace("{charset}", charset).encode(encoding))
    chunks = list(parser.parse(Source.from_path(path)))
    assert chunks[0].segments[0].text == "Café crème"
    assert "Brew at 93 °C" in chunks[0].text and chunks[0].metadata["title"] == "Café manual"


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "utf-16", "utf-8-sig"])
def test_markdown_encodings(tmp_path: Path, parser: OfficeParser, encoding: str) -> None:
    path = make_markdown(tmp_path / "notes.md", encoding)
    chunks = list(parser.parse(Source.from_path(path)))
    assert chunks[0].segments[0].text == "Setup"
    assert "Fill the tank with water at 20 °C." in chunks[0].text
    assert chunks[0].metadata["title"] == "Nimbus Notes"


@pytest.mark.parametrize(("charset", "declared"), [("cp1252", True), ("latin-1", True),
                                                   ("cp1252", False), ("utf-8", False)])
def test_eml_encodings(tmp_path: Path, parser: OfficeParser, charset: str,
                       declared: bool) -> None:
    path = make_eml(tmp_path / "mail.eml", charset=charset, declared=declared)
    chunks = list(parser.parse(Source.from_path(path)))
    subject = "Descaling schedule" if declared else "Descaling schedule (café)"
    assert chunks[0].metadata["subject"] == chunks[0].metadata["title"] == subject
    assert "every 8 weeks at 93 °C" in chunks[0].text and "café crème" in chunks[0].text


# -- bad input ---------------------------------------------------------------------------


def _error(parser: OfficeParser, path: Path) -> ParseError:
    with pytest.raises(ParseError) as info:
        list(parser.parse(Source.from_path(path)))
    assert info.value.path == str(path)
    return info.value


def test_zero_bytes(tmp_path: Path, parser: OfficeParser) -> None:
    path = tmp_path / "empty.docx"
    path.write_bytes(b"")
    assert "file is empty (0 bytes)" in _error(parser, path).reason


def test_missing_file(tmp_path: Path, parser: OfficeParser) -> None:
    assert "cannot read file" in _error(parser, tmp_path / "nope.docx").reason


def test_corrupt_zip(tmp_path: Path, docs: dict[str, Path], parser: OfficeParser) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(docs["docx"].read_bytes()[:3000])
    assert "corrupt file: not a readable ZIP container" in _error(parser, path).reason
    plain = tmp_path / "archive.docx"
    import zipfile

    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("readme.txt", "hello")
    assert "not an Office document" in _error(parser, plain).reason


def test_encrypted(docs: dict[str, Path], parser: OfficeParser,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    reason = _error(parser, docs["encrypted"]).reason
    assert "password-protected" in reason and "password_env" in reason
    monkeypatch.setenv("NIMBUS_PW", "wrong")
    with_env = OfficeParser(password_env="NIMBUS_PW")
    assert "could not be decrypted" in _error(with_env, docs["encrypted"]).reason
    monkeypatch.setenv("NIMBUS_PW", "s3cret")
    chunks = list(with_env.parse(Source.from_path(docs["encrypted"])))
    assert [c.segments[0].text for c in chunks] == ["Setup", "Specifications", "Cleaning"]
    assert not segments(chunks, "image")  # the file on disk stays encrypted: no refs


def test_pdf_named_docx(tmp_path: Path, parser: OfficeParser) -> None:
    path = tmp_path / "report.docx"
    path.write_bytes(b"%PDF-1.7\n%fake\n")
    reason = _error(parser, path).reason
    assert "the content is a PDF, not a Word document (.docx)" in reason


@pytest.mark.parametrize(("data", "expected"), [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "PNG image"),
    (b"just some words", "plain text"),
])
def test_other_content(tmp_path: Path, parser: OfficeParser, data: bytes, expected: str) -> None:
    path = tmp_path / "deck.pptx"
    path.write_bytes(data)
    assert expected in _error(parser, path).reason


def test_misnamed_documents_parse_by_content(tmp_path: Path, docs: dict[str, Path],
                                             parser: OfficeParser) -> None:
    as_docx = tmp_path / "deck.docx"
    shutil.copy(docs["pptx"], as_docx)
    chunks = list(parser.parse(Source.from_path(as_docx)))
    assert [c.page for c in chunks] == [1, 2, 3] and chunks[0].metadata["format"] == "pptx"
    as_bin = tmp_path / "guide.bin"
    shutil.copy(docs["docx"], as_bin)
    assert detect_format(as_bin.read_bytes(), as_bin.name) == "docx"
    assert list(parser.parse(Source.from_path(as_bin)))[0].metadata["format"] == "docx"


def test_legacy_without_libreoffice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(office_parser, "detect_format", lambda data, name: "doc")
    path = tmp_path / "old.doc"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    reason = _error(OfficeParser(), path).reason
    assert reason.startswith("legacy Word 97-2003 document (.doc) files need LibreOffice")


def test_corrupt_ole(tmp_path: Path, parser: OfficeParser) -> None:
    path = tmp_path / "old.doc"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    assert "corrupt OLE compound file" in _error(parser, path).reason


# -- helpers -----------------------------------------------------------------------------


def test_table_markdown_spans() -> None:
    html = ("<table><tr><th rowspan='2'>A</th><th>B</th></tr><tr><td>b2</td></tr>"
            "<tr><td>a3</td><td>b3<table><tr><td>x</td></tr></table></td></tr></table>")
    assert html_table_to_markdown(html) == (
        "| A | B |\n| --- | --- |\n|  | b2 |\n| a3 | b3 x |")
    assert html_table_to_markdown("<table></table>") == ""
    assert markdown_table_parts("| a |\n| --- |\n| 1 |", 5) == ["| a |\n| --- |\n| 1 |"]


# -- page mode ---------------------------------------------------------------------------


def test_page_mode_without_libreoffice(docs: dict[str, Path], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    on_path = OfficeParser(chunking="page", cache_dir=str(tmp_path))
    assert _error(on_path, docs["docx"]).reason == LIBREOFFICE_MISSING
    explicit = OfficeParser(chunking="page", libreoffice=str(tmp_path / "no-soffice"),
                            cache_dir=str(tmp_path))
    reason = _error(explicit, docs["pptx"]).reason
    assert "needs LibreOffice" in reason and "no-soffice" in reason


def test_page_mode_html_without_libreoffice(docs: dict[str, Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    parser = OfficeParser(chunking="page", cache_dir=str(tmp_path), render_dpi=50)
    source = Source.from_path(docs["html"])
    chunks = list(parser.parse(source))
    assert [c.page for c in chunks] == [1] and chunks[0].kind == "page"
    assert chunks[0].source == str(docs["html"]) and chunks[0].document_id == source.document_id
    assert "Brew at 93 °C" in chunks[0].text and chunks[0].metadata["format"] == "html"
    rendered = Path(chunks[0].image.source)
    assert rendered.parent == tmp_path and rendered.suffix == ".pdf"
    assert render_array(chunks[0].image).shape == (585, 414, 3)  # A4 at 50 dpi
    for key in ("md", "eml", "epub"):
        more = list(parser.parse(Source.from_path(docs[key])))
        assert more and all(c.kind == "page" for c in more), key


@pytest.mark.skipif(not HAS_SOFFICE, reason="LibreOffice (soffice) is not installed")
def test_page_mode_libreoffice(docs: dict[str, Path], tmp_path: Path) -> None:
    parser = OfficeParser(chunking="page", cache_dir=str(tmp_path), render_dpi=72)
    source = Source.from_path(docs["pptx"])
    chunks = list(parser.parse(source))
    assert [c.page for c in chunks] == [1, 2, 3]
    assert all(c.source == str(docs["pptx"]) and c.document_id == source.document_id
               for c in chunks)
    assert "Welcome" in chunks[0].text and "Gasket" in chunks[2].text
    assert chunks[0].metadata["title"] == "Nimbus Deck"
    pixels = render_array(chunks[1].image)
    assert pixels.shape[1] == 720  # a 10-inch slide at 72 dpi
    # the rendering is cached by content: the second parse does not render again
    rendered = Path(chunks[0].image.source)
    assert rendered.parent == tmp_path and chunks[0].metadata["rendered_pdf"] == str(rendered)
    stamp = rendered.stat().st_mtime_ns
    again = list(parser.parse(source))
    assert rendered.stat().st_mtime_ns == stamp
    assert [c.id for c in again] == [c.id for c in chunks]
    assert [Chunk.from_payload(c.id, c.to_payload()) for c in again] == again


@pytest.mark.skipif(not HAS_SOFFICE, reason="LibreOffice (soffice) is not installed")
def test_page_mode_docx_libreoffice(docs: dict[str, Path], tmp_path: Path) -> None:
    chunks = list(OfficeParser(chunking="page", cache_dir=str(tmp_path)).parse(
        Source.from_path(docs["docx"])))
    assert chunks and chunks[0].page == 1 and "Fill the water tank" in chunks[0].text
    assert dataclasses.asdict(chunks[0].image)["source"].endswith(".pdf")


@pytest.mark.skipif(not HAS_SOFFICE, reason="LibreOffice (soffice) is not installed")
def test_legacy_doc_with_libreoffice(docs: dict[str, Path], tmp_path: Path) -> None:
    soffice = office.find_libreoffice()
    legacy = office_render.run_libreoffice(soffice, docs["docx"], "doc", tmp_path / "made",
                                           120, "fixture")
    assert detect_format(legacy.read_bytes(), legacy.name) == "doc"
    cache = tmp_path / "cache"
    chunks = list(OfficeParser(cache_dir=str(cache)).parse(Source.from_path(legacy)))
    assert [c.segments[0].text for c in chunks] == ["Setup", "Specifications", "Cleaning"]
    assert chunks[0].metadata["format"] == "doc" and chunks[0].source == str(legacy)
    picture = segments(chunks, "image")[0]
    assert picture.image.blob.startswith(str(cache))  # points into the converted .docx
    assert image_size(picture) == PICTURE_SIZE


def test_picture_in_table_cell_comes_at_the_end(tmp_path: Path, parser: OfficeParser) -> None:
    import io

    import docx
    from office_fixtures import png_bytes

    doc = docx.Document()
    doc.add_heading("Parts", level=1)
    cell = doc.add_table(rows=1, cols=2).cell(0, 0)
    cell.paragraphs[0].add_run().add_picture(io.BytesIO(png_bytes(64, 48, seed=9)))
    doc.add_paragraph("After the table.")
    path = tmp_path / "cell.docx"
    doc.save(str(path))
    chunks = list(parser.parse(Source.from_path(path)))
    last = chunks[-1].segments[-1]
    assert last.kind == "image" and image_size(last) == (64, 48)


def test_picture_filters() -> None:
    state = office_pictures.Pictures(archive="/x/doc.docx")
    big = b"\0" * 4096
    assert state.accept("word/media/image1.emf", big, nbytes=4096,
                        content_type="image/x-emf") is None
    assert state.accept("word/media/image2.png", b"\0" * 100, nbytes=100) is None
    assert state.accept("word/media/image3.png", big, nbytes=4096) == "word/media/image3.png"
    assert state.accept("word/media/image3.png", big, nbytes=4096) is None  # repeated logo
    assert state.ref("word/media/image3.png").blob == "/x/doc.docx::word/media/image3.png"


def test_archive_member_errors(docs: dict[str, Path], tmp_path: Path) -> None:
    from ragnest.types import ImageRef

    with pytest.raises(ParseError, match="image word/media/nope.png is not in this file") as info:
        render_array(ImageRef(blob=f"{docs['docx']}::word/media/nope.png"))
    assert info.value.path == str(docs["docx"])
    with pytest.raises(ParseError, match="file not found") as info:
        render_array(ImageRef(blob=f"{tmp_path / 'gone.docx'}::word/media/image1.png"))
    assert info.value.path == str(tmp_path / "gone.docx")


def test_missing_unstructured(monkeypatch: pytest.MonkeyPatch) -> None:
    from ragnest.errors import MissingDependencyError

    monkeypatch.setattr(_unstructured, "_READY", False)
    monkeypatch.setitem(__import__("sys").modules, "unstructured", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'ragnest\[office\]'"):
        OfficeParser().warm_up()


def test_libreoffice_conversion_glue(tmp_path: Path, docs: dict[str, Path]) -> None:
    """The command line and file handling around soffice, with a stand-in executable
    that follows soffice's contract (LibreOffice itself is exercised above when it is
    installed): the converted file lands in the cache atomically, failures name the file."""
    fake = tmp_path / "soffice"
    fake.write_text(
        "#!/bin/sh\n"
        "# args: -env:UserInstallation=... --headless --norestore --convert-to FMT --outdir DIR SRC\n"
        'fmt="$5"; out="$7"; src="$8"; mkdir -p "$out"\n'
        'name=$(basename "$src"); stem="${name%.*}"\n'
        'printf "converted %s to %s" "$name" "$fmt" > "$out/$stem.$fmt"\n')
    fake.chmod(0o755)
    source = Source.from_path(docs["docx"])
    doc = office_parser.OfficeDocument(source=source, name=str(docs["docx"]),
                                       data=docs["docx"].read_bytes(), fmt="docx",
                                       archive=str(docs["docx"]))
    target = tmp_path / "cache" / "out.pdf"
    target.parent.mkdir()
    office_render.convert_with_libreoffice(str(fake), doc, "pdf", target, timeout=30)
    assert target.read_text() == f"converted {doc.sha256}.docx to pdf"
    assert [p.name for p in target.parent.iterdir()] == ["out.pdf"]  # no temp file left
    broken = tmp_path / "broken-soffice"
    broken.write_text("#!/bin/sh\necho 'Error: source file could not be loaded' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(ParseError, match="could not convert the document to pdf: Error: "
                                         "source file could not be loaded") as info:
        office_render.convert_with_libreoffice(str(broken), doc, "pdf", target, timeout=30)
    assert info.value.path == str(docs["docx"])
