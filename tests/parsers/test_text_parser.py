"""TextParser: sections, paragraph splitting without loss, encodings, bad input."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from ragnest.errors import ConfigError, ParseError
from ragnest.parsers.text import TextParser, decode_text, split_paragraphs
from ragnest.protocols import Parser
from ragnest.types import Chunk, Source

MD = """\
Intro line before any heading.

# Nimbus 3

Overview paragraph.

## Setup

Fill the tank.

```bash
# not a heading: inside a code fence
make coffee
```

## Cleaning

### Descaling

Descale every 8 weeks.

# Warranty
Two years.
"""


def parse_bytes(data: bytes, name: str, **kwargs) -> list[Chunk]:
    return list(TextParser(**kwargs).parse(Source.from_bytes(data, name=name)))


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_contract() -> None:
    parser = TextParser(max_chars=800)
    assert isinstance(parser, Parser)
    assert parser.extensions == (".txt", ".md", ".markdown", ".rst")
    assert TextParser(**dataclasses.asdict(parser)) == parser


def test_markdown_sections() -> None:
    chunks = parse_bytes(MD.encode(), "guide.md")
    sections = [c.metadata["section"] for c in chunks]
    assert sections == [
        "",
        "Nimbus 3",
        "Nimbus 3 > Setup",
        "Nimbus 3 > Cleaning > Descaling",  # heading-only "Cleaning" is carried into it
        "Warranty",
    ]
    assert [c.metadata["chunk_index"] for c in chunks] == list(range(5))
    assert "# not a heading" in chunks[2].text
    assert chunks[3].text.startswith("## Cleaning\n\n### Descaling")
    for c in chunks:
        assert c.kind == "text" and c.page is None and c.metadata["encoding"] == "utf-8"
    assert squash("".join(c.text for c in chunks)) == squash(MD)


def test_ids_stable_and_unique() -> None:
    first = parse_bytes(MD.encode(), "guide.md")
    second = parse_bytes(MD.encode(), "guide.md")
    assert [c.id for c in first] == [c.id for c in second]
    assert len({c.id for c in first}) == len(first)
    changed = parse_bytes(MD.replace("Two years.", "Three years.").encode(), "guide.md")
    assert [c.id for c in changed][:-1] == [c.id for c in first][:-1]
    assert changed[-1].id != first[-1].id


def test_long_text_split_on_paragraphs_without_loss() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * (20 + (i * 37) % 90) for i in range(60)]
    text = "\n\n".join(paragraphs)
    chunks = parse_bytes(text.encode(), "long.txt", max_chars=1500)
    assert len(chunks) > 5
    assert all(len(c.text) <= 1500 for c in chunks)
    assert squash("".join(c.text for c in chunks)) == squash(text)
    # each paragraph lands whole in one chunk
    for p in paragraphs:
        assert sum(p.strip() in c.text for c in chunks) == 1
    assert all(c.metadata["section"] == "" for c in chunks)


def test_giant_paragraph_and_line_are_cut() -> None:
    text = ("x" * 5000) + "\n" + "short line\n" * 400
    pieces = split_paragraphs(text, 1000)
    assert all(len(p) <= 1000 for p in pieces)
    assert squash("".join(pieces)) == squash(text)


def test_plain_text_ignores_hash_lines() -> None:
    chunks = parse_bytes(b"# just a comment\nbody", "notes.txt")
    assert len(chunks) == 1 and chunks[0].metadata["section"] == ""


def test_rst_sections() -> None:
    rst = "Title\n=====\n\nIntro.\n\nInstall\n-------\n\nRun pip.\n\nUsage\n-----\n\nCall it.\n"
    chunks = parse_bytes(rst.encode(), "README.rst")
    assert [c.metadata["section"] for c in chunks] == [
        "Title", "Title > Install", "Title > Usage"
    ]
    assert squash("".join(c.text for c in chunks)) == squash(rst)


@pytest.mark.parametrize(("data", "encoding"), [
    ("café crème 93 °C".encode(), "utf-8"),
    ("\ufeffcafé crème 93 °C".encode("utf-8"), "utf-8-sig"),
    ("café crème 93 °C".encode("utf-16"), "utf-16"),  # with BOM
    ("café crème 93 °C".encode("utf-16-be").join([b"\xfe\xff", b""]), "utf-16"),
    ("café crème 93 °C – “quoted”".encode("cp1252"), "cp1252"),
])
def test_encodings(data: bytes, encoding: str) -> None:
    chunks = parse_bytes(data, "note.txt")
    assert len(chunks) == 1
    assert chunks[0].metadata["encoding"] == encoding
    assert chunks[0].text.startswith("café crème 93 °C")


def test_crlf_normalised() -> None:
    chunks = parse_bytes(b"# A\r\nline one\r\n\r\n# B\r\nline two\r\n", "x.md")
    assert [c.text for c in chunks] == ["# A\nline one", "# B\nline two"]


def test_binary_rejected() -> None:
    with pytest.raises(ParseError, match="binary data, not text"):
        parse_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image.txt")


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n  "])
def test_empty_rejected(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "empty.md"
    path.write_bytes(data)
    with pytest.raises(ParseError, match="file is empty") as info:
        list(TextParser().parse(Source.from_path(path)))
    assert info.value.path == str(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="cannot read file"):
        list(TextParser().parse(Source.from_path(tmp_path / "nope.txt")))


def test_decode_text_latin1_fallback() -> None:
    # 0x81 is undefined in cp1252
    assert decode_text(b"a\x81b") == ("a\x81b", "latin-1")


def test_bad_max_chars_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="TextParser.max_chars"):
        TextParser(max_chars=0)
