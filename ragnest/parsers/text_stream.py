"""Text files read and split as a stream: big files in bounded memory.

:func:`read_lines` decodes a binary stream line by line (BOM, then UTF-8, then cp1252,
then Latin-1, decided in a first pass that keeps nothing), and :func:`text_pieces`
splits those lines into ``(section path, piece)`` pairs exactly as
:func:`~ragnest.parsers.text.split_sections` and
:func:`~ragnest.parsers.text.split_paragraphs` split the whole text at once, while
holding only about one piece, one paragraph head and one line at a time (a heading-only
section waits for the next one, as it is merged into it)::

    >>> from ragnest.parsers.text_stream import text_pieces
    >>> lines = ["# Setup", "Fill the tank.", "", "## Descaling", "Every 8 weeks."]
    >>> list(text_pieces(lines, "markdown", max_chars=1500))
    [('Setup', '# Setup\\nFill the tank.'), ('Setup > Descaling', '## Descaling\\nEvery 8 weeks.')]

A 100 MB file is never held whole, nor any list of its lines (a single huge line is,
up to the parser's ``max_bytes``).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from ragnest.errors import ParseError

__all__ = ["detect_encoding", "read_lines", "text_pieces"]

_BLOCK = 1 << 20
_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+_:.])\1{2,}\s*$")
_SEPARATOR = re.compile(r"[ \t]*")
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
#: Lines a heading-only section may hold before it is taken as a real section.
_HELD_LINES = 10_000


# ------------------------------------------------------------------ decoding
def detect_encoding(fh: BinaryIO, name: str) -> str:
    """The encoding :func:`~ragnest.parsers.text.decode_text` would pick, from one pass
    over the stream (rewound afterwards); raises :class:`ParseError` for NUL bytes."""
    head = fh.read(4)
    fh.seek(0)
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    utf8 = codecs.getincrementaldecoder("utf-8")()
    utf8_ok = cp1252_ok = True
    for block in iter(lambda: fh.read(_BLOCK), b""):
        if b"\x00" in block:
            fh.seek(0)
            raise ParseError(name, "binary data, not text (contains NUL bytes)")
        if utf8_ok:
            try:
                utf8.decode(block)
            except UnicodeDecodeError:
                utf8_ok = False
        if cp1252_ok and _CP1252_UNDEFINED.search(block):
            cp1252_ok = False
    if utf8_ok:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_ok = False
    fh.seek(0)
    return "utf-8" if utf8_ok else "cp1252" if cp1252_ok else "latin-1"


def read_lines(fh: BinaryIO, encoding: str, name: str) -> Iterator[str]:
    """The decoded lines of ``fh`` as ``text.split("\\n")`` gives them after CRLF/CR
    normalisation and stripping leading BOM characters (a final ``""`` included)."""
    if encoding == "utf-8-sig":
        fh.read(3)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    else:
        decoder = codecs.getincrementaldecoder(encoding)()
    parts: list[str] = []  # the line being read (one huge line is joined once)
    carry_cr = False
    start = True
    while True:
        block = fh.read(_BLOCK)
        try:
            text = decoder.decode(block, final=not block)
        except UnicodeDecodeError as err:
            raise ParseError(name, f"invalid {encoding.upper()} text: {err}") from err
        if carry_cr:
            text = "\r" + text
            carry_cr = False
        if block and text.endswith("\r"):  # "\r\n" may straddle two blocks
            text, carry_cr = text[:-1], True
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if start and text:
            text = text.lstrip("\ufeff")
            start = not text
        pieces = text.split("\n")
        if len(pieces) > 1:
            parts.append(pieces[0])
            yield "".join(parts)
            yield from pieces[1:-1]
            parts = [pieces[-1]]
        elif pieces[0]:
            parts.append(pieces[0])
        if not block:
            break
    yield "".join(parts)


# ------------------------------------------------------------------ splitting
class _Packer:
    """Units into pieces of at most ``max_chars`` (greedy, ``"\\n\\n"``-joined)."""

    def __init__(self, max_chars: int) -> None:
        self.max = max_chars
        self.buf = ""

    def add(self, unit: str) -> Iterator[str]:
        if self.buf and len(self.buf) + 2 + len(unit) > self.max:
            yield self.buf
            self.buf = unit
        else:
            self.buf = f"{self.buf}\n\n{unit}" if self.buf else unit

    def end(self) -> Iterator[str]:
        if self.buf:
            yield self.buf
        self.buf = ""


class _Cutter:
    """A paragraph longer than ``max_chars`` cut at line ends, then spaces, then hard
    (the streaming form of ``text._cut``; long lines are walked, never re-sliced)."""

    def __init__(self, max_chars: int) -> None:
        self.max = max_chars
        self.buf = ""

    def line(self, line: str) -> Iterator[str]:
        m, pos, n = self.max, 0, len(line)
        while n - pos > m:
            cut = line.rfind(" ", pos, pos + m)
            cut = cut if cut - pos > m // 2 else pos + m
            head = line[pos:cut].rstrip()
            pos = cut
            while pos < n and line[pos].isspace():
                pos += 1
            if self.buf:
                yield self.buf
                self.buf = ""
            yield head
        rest = line[pos:] if pos else line
        if self.buf and len(self.buf) + 1 + len(rest) > m:
            yield self.buf
            self.buf = rest
        else:
            self.buf = f"{self.buf}\n{rest}" if self.buf else rest

    def end(self) -> Iterator[str]:
        if self.buf.strip():
            yield self.buf
        self.buf = ""


class _Body:
    """The lines of one section body in, pieces out: ``split_paragraphs`` of
    ``"\\n".join(lines).strip("\\n")`` without holding the body."""

    def __init__(self, max_chars: int) -> None:
        self.max = max_chars
        self.packer = _Packer(max_chars)
        self.started = False  # a non-empty line came (leading "" lines are stripped)
        self.can_split = False  # a separator needs a "\n" before it not taken by another
        self.held: list[str] = []  # a possible separator, then "" lines: the end or not
        self._para_reset()

    def _para_reset(self) -> None:
        self.lines: list[str] = []
        self.size = -1
        self.cutter: _Cutter | None = None
        self.content = False  # the paragraph has a non-whitespace character
        self.early: list[str] = []  # cut units before any content (dropped if none comes)

    def feed(self, line: str) -> Iterator[str]:
        if line == "":
            if self.started:
                self.held.append(line)
            return
        self.started = True
        yield from self._release()
        if self.can_split and _SEPARATOR.fullmatch(line):
            self.held.append(line)  # a separator unless it is the body's last line
        else:
            yield from self._line(line)

    def end(self) -> Iterator[str]:
        if self.held and self.held[0]:
            yield from self._add(self.held[0])  # the last line: part of the paragraph
        self.held = []
        yield from self._end_para()
        yield from self.packer.end()

    def _release(self) -> Iterator[str]:
        held, self.held = self.held, []
        for line in held:
            yield from self._line(line)

    def _line(self, line: str) -> Iterator[str]:
        """One line that is known not to be the body's last."""
        if self.can_split and _SEPARATOR.fullmatch(line):
            yield from self._end_para()
            self.can_split = False
            return
        yield from self._add(line)
        self.can_split = True

    def _add(self, line: str) -> Iterator[str]:
        if not self.lines and self.cutter is None and line == "":
            return  # the paragraph's leading "\n" is stripped
        self.content = self.content or not line.isspace() and bool(line)
        if self.cutter is not None:
            yield from self._units(self.cutter.line(line))
            return
        self.lines.append(line)
        self.size += len(line) + 1
        if self.size > self.max:
            self.cutter = _Cutter(self.max)
            lines, self.lines = self.lines, []
            for held in lines:
                yield from self._units(self.cutter.line(held))

    def _units(self, units: Iterable[str]) -> Iterator[str]:
        for unit in units:
            if self.content:
                for early in self.early:
                    yield from self.packer.add(early)
                self.early = []
                yield from self.packer.add(unit)
            else:
                self.early.append(unit)

    def _end_para(self) -> Iterator[str]:
        if self.cutter is not None:
            yield from self._units(self.cutter.end())
        elif self.lines:
            para = "\n".join(self.lines)
            if para.strip():
                yield from self.packer.add(para)
        self._para_reset()


def _heading_only(lines: list[str], style: str) -> bool:
    content = [ln for ln in lines if ln.strip()]
    if style == "markdown":
        return len(content) == 1 and bool(_ATX.match(content[0]))
    if style == "rst":
        return len(content) == 2 and bool(_RST_UNDERLINE.match(content[1]))
    return False


def _sectioned(lines: Iterable[str], style: str) -> Iterator[tuple[int, tuple[str, ...], str]]:
    """``(section number, heading path, line)`` as ``split_sections`` groups them."""
    path: list[tuple[int, str]] = []
    rst_levels: list[str] = []
    fence: str | None = None
    number = 0
    current = False  # the current section has a line

    def enter(level: int, title: str) -> None:
        nonlocal number, current
        if current:
            number += 1
            current = False
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, title))

    it = iter(lines)
    line = next(it, None)
    while line is not None:
        nxt = next(it, None)
        if style == "markdown":
            m = _FENCE.match(line)
            if m:
                marker = m.group(1)[0] * 3
                fence = None if fence and line.lstrip().startswith(fence) else (fence or marker)
            elif fence is None:
                h = _ATX.match(line)
                if h:
                    enter(len(h.group(1)), h.group(2).strip())
        elif style == "rst" and nxt is not None:
            if (line.strip() and not _RST_UNDERLINE.match(line) and _RST_UNDERLINE.match(nxt)
                    and len(nxt.rstrip()) >= len(line.rstrip())):
                char = nxt.strip()[0]
                if char not in rst_levels:
                    rst_levels.append(char)
                enter(rst_levels.index(char) + 1, line.strip())
                titles = tuple(t for _, t in path)
                yield number, titles, line
                yield number, titles, nxt
                current = True
                line = next(it, None)
                continue
        yield number, tuple(t for _, t in path), line
        current = True
        line = nxt


def text_pieces(lines: Iterable[str], style: str, max_chars: int) -> Iterator[tuple[str, str]]:
    """``(" > "-joined heading path, piece)`` for the lines of a text file (see the
    module docs); ``style`` is ``"markdown"``, ``"rst"`` or ``"plain"``."""
    pending = ""  # the body of heading-only sections, merged into the next section
    section = -1
    titles: tuple[str, ...] = ()
    held: list[str] | None = None  # lines of a section that may be heading-only
    body: _Body | None = None

    def open_body() -> Iterator[str]:
        nonlocal body, pending
        body = _Body(max_chars)
        if pending:
            for line in [*pending.split("\n"), ""]:
                yield from body.feed(line)
            body.started = True
            pending = ""
        for line in held or ():
            yield from body.feed(line)

    def close_section(last: bool) -> Iterator[str]:
        nonlocal held, body, pending
        if held is not None and not last and _heading_only(held, style):
            text = "\n".join(held).strip("\n")
            pending = f"{pending}\n\n{text}" if pending else text
        else:
            if body is None:
                yield from open_body()
            assert body is not None
            yield from body.end()
        held, body = None, None

    most = 2 if style == "rst" else 1  # content lines of a heading-only section
    content = 0
    lead = True
    for number, path, line in _sectioned(lines, style):
        if number != section:
            if section >= 0:
                for piece in close_section(last=False):
                    yield " > ".join(titles), piece
            section, titles = number, path
            held = [] if style in ("markdown", "rst") else None
            content, lead = 0, True
        if lead:
            if line == "":
                continue  # the body is strip("\n")-ed: its leading empty lines go
            lead = False
        if held is not None:
            held.append(line)
            content += bool(line.strip())
            if content > most or len(held) > _HELD_LINES:
                for piece in open_body():
                    yield " > ".join(titles), piece
                held = None
            continue
        if body is None:
            for piece in open_body():
                yield " > ".join(titles), piece
        assert body is not None
        for piece in body.feed(line):
            yield " > ".join(titles), piece
    if section >= 0:
        for piece in close_section(last=True):
            yield " > ".join(titles), piece
