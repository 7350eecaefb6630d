"""ragnest.media.resolve: every ImageRef's bytes come through one resolver."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from ragnest.errors import ParseError
from ragnest.media.resolve import LocalResolver, Resolved, Resolver, split_member


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "report.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("word/media/image1.png", b"\x89PNG fake picture bytes")
        zf.writestr("word/document.xml", "<w:document/>")
    return path


def test_local_file_is_opened_in_place_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "page.pdf"
    path.write_bytes(b"%PDF-1.7 first")
    found = LocalResolver().resolve(str(path))
    assert found.path == str(path) and found.data is None and found.name == str(path)
    assert found.read_bytes() == b"%PDF-1.7 first"
    path.write_bytes(b"%PDF-1.7 second, longer")
    os.utime(path, ns=(1, 1))  # even a file rewritten with an older stamp is seen
    again = LocalResolver().resolve(str(path))
    assert again.version != found.version and again.read_bytes().endswith(b"longer")


def test_file_uri(tmp_path: Path) -> None:
    path = tmp_path / "with space.png"
    path.write_bytes(b"data")
    found = LocalResolver().resolve(path.as_uri())
    assert found.path == str(path) and found.location == path.as_uri()


def test_missing_file_names_it(tmp_path: Path) -> None:
    gone = tmp_path / "moved.pdf"
    with pytest.raises(ParseError, match="file not found") as info:
        LocalResolver().resolve(str(gone))
    assert info.value.path == str(gone)


def test_archive_members(archive: Path) -> None:
    found = LocalResolver().resolve(f"{archive}::word/media/image1.png")
    assert found.data == b"\x89PNG fake picture bytes" and found.path is None
    assert found.name == str(archive)
    assert found.version[-1] == "word/media/image1.png"
    with pytest.raises(ParseError, match="image word/media/nope.png is not in this file") as info:
        LocalResolver().resolve(f"{archive}::word/media/nope.png")
    assert info.value.path == str(archive)
    gone = archive.with_name("gone.docx")
    with pytest.raises(ParseError, match="file not found; cannot load image") as info:
        LocalResolver().resolve(f"{gone}::word/media/image1.png")
    assert info.value.path == str(gone)
    not_zip = archive.with_name("plain.docx")
    not_zip.write_bytes(b"not a zip at all")
    with pytest.raises(ParseError, match="cannot read image"):
        LocalResolver().resolve(f"{not_zip}::word/media/image1.png")


def test_a_file_named_with_the_separator_is_that_file(tmp_path: Path) -> None:
    odd = tmp_path / "odd::name.png"
    odd.write_bytes(b"pixels")
    assert LocalResolver().resolve(str(odd)).path == str(odd)


def test_other_storage_is_refused_with_a_clear_error() -> None:
    for location in ("s3://bucket/report.pdf", "https://example.org/a.png"):
        with pytest.raises(ParseError, match="no resolver for") as info:
            LocalResolver().resolve(location)
        assert info.value.path == location and "Renderer" in info.value.reason


def test_protocol_and_helpers() -> None:
    assert isinstance(LocalResolver(), Resolver)
    assert split_member("a.epub::OEBPS/img/x.jpg") == ("a.epub", "OEBPS/img/x.jpg")
    assert split_member("::x") is None and split_member("a.docx::") is None
    with pytest.raises(ValueError, match="exactly one"):
        Resolved("x", name="x")
    with pytest.raises(ValueError, match="exactly one"):
        Resolved("x", name="x", path="x", data=b"")
    with pytest.raises(ParseError, match="cannot read file"):
        Resolved("x", name="x", path="/nonexistent/x").read_bytes()
