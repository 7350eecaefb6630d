"""Plain text, Markdown and reStructuredText into ``text`` chunks.

Markdown (``#`` headings) and reStructuredText (underlined titles) are split at
headings, so each chunk stays inside one section; a section longer than
``max_chars`` is split on paragraph boundaries (then lines, then words). Nothing is
dropped: the chunks' texts, joined, hold every non-blank line of the file::

    >>> from ragnest.parsers.text import TextParser
    >>> from ragnest.types import Source
    >>> md = b"# Setup\\nFill the tank.\\n\\n## Descaling\\nEvery 8 weeks."
    >>> chunks = list(TextParser().parse(Source.from_bytes(md, name="faq.md")))
    >>> [(c.metadata["section"], c.text) for c in chunks]
    [('Setup', '# Setup\\nFill the tank.'), ('Setup > Descaling', '## Descaling\\nEvery 8 weeks.')]
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, ClassVar

from ragnest.errors import ConfigError, ParseError
from ragnest.parsers.text_stream import detect_encoding, read_lines, text_pieces
from ragnest.types import Chunk, Source, make_chunk_id

__all__ = ["TextParser", "decode_text", "split_sections", "split_paragraphs"]

logger = logging.getLogger(__name__)

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+_:.])\1{2,}\s*$")


def decode_text(data: bytes, name: str = "<bytes>") -> tuple[str, str]:
    """Decode bytes as text; returns ``(text, encoding)``.

    Tries a BOM (UTF-8 / UTF-16), then UTF-8, then cp1252 (latin-1 as the last
    resort). Raises :class:`ParseError` for NUL bytes ("binary data, not text").

    >>> decode_text("café".encode("cp1252"))
    ('café', 'cp1252')
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as err:
            raise ParseError(name, f"invalid UTF-16 text: {err}") from err
    if b"\x00" in data:
        raise ParseError(name, "binary data, not text (contains NUL bytes)")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def split_sections(lines: list[str], style: str) -> list[tuple[list[str], list[str]]]:
    """Split lines into ``(heading path, lines)`` sections.

    ``style`` is ``"markdown"``, ``"rst"`` or ``"plain"`` (no headings). Headings
    inside fenced code blocks are ignored.
    """
    sections: list[tuple[list[str], list[str]]] = []
    path: list[tuple[int, str]] = []
    current: list[str] = []
    rst_levels: list[str] = []
    fence: str | None = None

    def flush() -> None:
        if current:
            sections.append(([t for _, t in path], list(current)))
            current.clear()

    def enter(level: int, title: str) -> None:
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, title))

    i = 0
    while i < len(lines):
        line = lines[i]
        if style == "markdown":
            m = _FENCE.match(line)
            if m:
                marker = m.group(1)[0] * 3
                fence = None if fence and line.lstrip().startswith(fence) else (fence or marker)
            elif fence is None:
                h = _ATX.match(line)
                if h:
                    flush()
                    enter(len(h.group(1)), h.group(2).strip())
        elif style == "rst" and i + 1 < len(lines):
            under = lines[i + 1]
            if (
                line.strip()
                and not _RST_UNDERLINE.match(line)
                and _RST_UNDERLINE.match(under)
                and len(under.rstrip()) >= len(line.rstrip())
            ):
                flush()
                char = under.strip()[0]
                if char not in rst_levels:
                    rst_levels.append(char)
                enter(rst_levels.index(char) + 1, line.strip())
                current.extend([line, under])
                i += 2
                continue
        current.append(line)
        i += 1
    flush()
    return sections


def split_paragraphs(text: str, max_chars: int) -> list[str]:
    """Pack paragraphs (blank-line separated) into pieces of at most ``max_chars``.

    A paragraph longer than ``max_chars`` is cut at line ends, then at spaces, then
    hard. Every non-whitespace character of ``text`` ends up in exactly one piece.
    """
    paragraphs = [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    units: list[str] = []
    for para in paragraphs:
        units.extend(_cut(para, max_chars) if len(para) > max_chars else [para])
    pieces: list[str] = []
    buf = ""
    for unit in units:
        if buf and len(buf) + 2 + len(unit) > max_chars:
            pieces.append(buf)
            buf = unit
        else:
            buf = f"{buf}\n\n{unit}" if buf else unit
    if buf:
        pieces.append(buf)
    return pieces


def _cut(para: str, max_chars: int) -> list[str]:
    out: list[str] = []
    buf = ""
    for line in para.split("\n"):
        while len(line) > max_chars:
            cut = line.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            head, line = line[:cut].rstrip(), line[cut:].lstrip()
            if buf:
                out.append(buf)
                buf = ""
            out.append(head)
        if buf and len(buf) + 1 + len(line) > max_chars:
            out.append(buf)
            buf = line
        else:
            buf = f"{buf}\n{line}" if buf else line
    if buf.strip():
        out.append(buf)
    return out


@dataclass(kw_only=True)
class TextParser:
    """Parser for ``.txt``, ``.md``, ``.markdown`` and ``.rst`` files.

    Each chunk has ``kind="text"``, ``page=None`` and metadata ``section`` (the
    heading path joined with ``" > "``, ``""`` before the first heading),
    ``chunk_index`` and ``encoding``. Files are read as a stream (see
    :mod:`ragnest.parsers.text_stream`), so memory stays bounded however big the file;
    files over ``max_bytes`` (default 50 MB; ``None``: no limit) are refused with a
    :class:`ParseError` that says so (the ingest skips them with that reason).

    >>> p = TextParser(max_chars=1500)
    >>> p.extensions
    ('.txt', '.md', '.markdown', '.rst')
    >>> list(TextParser(max_bytes=5).parse(Source.from_bytes(b"x" * 10, name="big.txt")))
    Traceback (most recent call last):
    ...
    ragnest.errors.ParseError: big.txt: text file of 10 bytes is over the limit of 5 bytes (TextParser max_bytes); raise max_bytes to read it
    """

    max_chars: int = 1500
    max_bytes: int | None = 50_000_000
    extensions: ClassVar[tuple[str, ...]] = (".txt", ".md", ".markdown", ".rst")

    def __post_init__(self) -> None:
        if self.max_chars <= 0:
            raise ConfigError(f"TextParser.max_chars must be positive, not {self.max_chars}")
        if self.max_bytes is not None and (isinstance(self.max_bytes, bool) or self.max_bytes < 1):
            raise ConfigError(f"TextParser.max_bytes must be at least 1 (or null for no limit), "
                              f"not {self.max_bytes}")

    def warm_up(self) -> None:
        """Nothing to load."""

    def close(self) -> None:
        """Nothing to release."""

    def _open(self, source: Source) -> BinaryIO:
        name = source.display_name
        if source.data is not None:
            size = len(source.data)
        elif source.path is not None:
            try:
                size = os.stat(source.path).st_size
            except OSError as err:
                raise ParseError(name, f"cannot read file: {err.strerror or err}") from err
        else:
            raise ParseError(name, "source has neither a path nor data")
        if not size:
            raise ParseError(name, "file is empty (0 bytes)")
        if self.max_bytes is not None and size > self.max_bytes:
            raise ParseError(name, f"text file of {_size(size)} is over the limit of "
                                   f"{_size(self.max_bytes)} (TextParser max_bytes); raise "
                                   "max_bytes to read it")
        if source.data is not None:
            return io.BytesIO(source.data)
        try:
            return open(source.path, "rb")  # type: ignore[arg-type]
        except OSError as err:
            raise ParseError(name, f"cannot read file: {err.strerror or err}") from err

    def parse(self, source: Source) -> Iterator[Chunk]:
        """Yield the text chunks of ``source`` (raises :class:`ParseError` on bad input)."""
        name = source.display_name
        style = _style_for(source.suffix or Path(name).suffix.lower())
        document_id = source.document_id
        index = 0
        with self._open(source) as fh:
            try:
                encoding = detect_encoding(fh, name)
                lines = read_lines(fh, encoding, name)
                for section, piece in text_pieces(lines, style, self.max_chars):
                    yield Chunk(
                        id=make_chunk_id(document_id, index, piece),
                        document_id=document_id,
                        kind="text",
                        text=piece,
                        source=name,
                        page=None,
                        metadata={"section": section, "chunk_index": index, "encoding": encoding},
                    )
                    index += 1
            except OSError as err:
                raise ParseError(name, f"cannot read file: {err.strerror or err}") from err
        if not index:
            raise ParseError(name, "file is empty (whitespace only)")
        logger.debug("parsed %s: %d text chunks (%s)", name, index, encoding)


def _size(n: int) -> str:
    if n < 1_000_000:
        return f"{n:,} bytes"
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


def _style_for(suffix: str) -> str:
    if suffix in (".md", ".markdown"):
        return "markdown"
    if suffix == ".rst":
        return "rst"
    return "plain"
