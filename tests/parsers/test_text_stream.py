"""Streaming text parsing: the same chunks as splitting the whole text, in bounded memory.

The reference is what TextParser did before it streamed: decode the whole file, split
it into sections with ``split_sections``, merge heading-only sections into the next,
and pack each body with ``split_paragraphs``. Random texts over an alphabet of awkward
lines (blank, spaces-only, tabs, form feeds, headings, underlines, fences, long words)
must give exactly the same pieces, and random bytes exactly the same lines.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ragnest.errors import ConfigError, ParseError
from ragnest.parsers import text_stream
from ragnest.parsers.text import TextParser, decode_text, split_paragraphs, split_sections
from ragnest.parsers.text_stream import _heading_only, detect_encoding, read_lines, text_pieces
from ragnest.types import Source

ATOMS = ["", "", "", " ", "\t", "  \t ", "word", "two words", "# Head", "## Sub", "### Deep #",
         "===", "----", "Title", "```", "~~~", "\f", "x" * 37, ("lorem ipsum " * 9).strip(),
         "a" * 90, " lead", "trail ", "\u00a0"]


def reference(text: str, style: str, max_chars: int) -> list[tuple[str, str]]:
    sections = split_sections(text.split("\n"), style)
    pending = ""
    out = []
    for n, (path, lines) in enumerate(sections):
        body = "\n".join(lines).strip("\n")
        if pending:
            body, pending = f"{pending}\n\n{body}", ""
        if _heading_only(lines, style) and n + 1 < len(sections):
            pending = body
            continue
        out += [(" > ".join(path), piece) for piece in split_paragraphs(body, max_chars)]
    return out


@pytest.mark.parametrize("seed", range(4))
def test_pieces_equal_whole_text_splitting(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(2500):
        text = "\n".join(rng.choice(ATOMS) for _ in range(rng.randint(0, 25)))
        style = rng.choice(["markdown", "rst", "plain"])
        max_chars = rng.choice([5, 12, 30, 60, 200])
        got = list(text_pieces(text.split("\n"), style, max_chars))
        assert got == reference(text, style, max_chars), (style, max_chars, text)


def test_lines_equal_whole_file_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    parts = [b"a", b"\r", b"\n", b"\r\n", "é".encode(), "é".encode("cp1252"), b"\x81",
             b"\xef\xbb\xbf", b" ", "€".encode(), b"\x00"]
    for _ in range(4000):
        monkeypatch.setattr(text_stream, "_BLOCK", rng.choice([1, 2, 3, 7, 64]))
        data = b"".join(rng.choice(parts) for _ in range(rng.randint(0, 30)))
        if rng.random() < 0.1:
            data = b"\xef\xbb\xbf" + data
        if rng.random() < 0.05:
            data = "héllo\r\nwörld\r".encode("utf-16")
        try:
            text, encoding = decode_text(data)
            want: tuple = (encoding, text.replace("\r\n", "\n").replace("\r", "\n")
                           .lstrip("\ufeff").split("\n"))
        except ParseError as err:
            want = ("error", str(err))
        fh = io.BytesIO(data)
        try:
            encoding = detect_encoding(fh, "<bytes>")
            got: tuple = (encoding, list(read_lines(fh, encoding, "<bytes>")))
        except ParseError as err:
            got = ("error", str(err))
        assert got == want, data


def test_real_markdown_gives_the_same_chunks_as_before(examples_dir: Path) -> None:
    path = examples_dir / "travel_faq.md"
    chunks = list(TextParser(max_chars=400).parse(Source.from_path(path)))
    text, _ = decode_text(path.read_bytes())
    assert [(c.metadata["section"], c.text) for c in chunks] == reference(text, "markdown", 400)


def test_size_cap_is_a_skip_reason_and_configurable(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"words and more words\n" * 1000)
    with pytest.raises(ParseError, match=r"over the limit of 10,000 bytes \(TextParser max_bytes\)"):
        list(TextParser(max_bytes=10_000).parse(Source.from_path(big)))
    assert list(TextParser(max_bytes=None).parse(Source.from_path(big)))
    assert TextParser().max_bytes == 50_000_000
    with pytest.raises(ConfigError, match="max_bytes"):
        TextParser(max_bytes=0)


def test_one_huge_line_is_cut_in_linear_time(tmp_path: Path) -> None:
    path = tmp_path / "line.txt"
    path.write_bytes(b"word " * 2_000_000)  # 10 MB without a newline
    chunks = list(TextParser().parse(Source.from_path(path)))
    assert all(len(c.text) <= 1500 for c in chunks)
    assert sum(len(c.text.replace(" ", "")) for c in chunks) == 4 * 2_000_000


def _peak_rss_mb(code: str) -> float:
    """Peak RSS (MB) of a fresh Python process running ``code`` (the process's own)."""
    probe = textwrap.dedent(code) + textwrap.dedent("""
        import resource
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=600).stdout
    return int(out.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss units differ")
def test_parsing_a_big_text_file_stays_small(tmp_path: Path) -> None:
    path = tmp_path / "big.md"
    line = ("the pump, the valve and the filter need care every week " * 3).strip() + "\n\n"
    with open(path, "w") as fh:
        for i in range(100):
            fh.write(f"## Section {i}\n\n" + line * 1400)
    size_mb = path.stat().st_size / 2**20
    assert size_mb > 20
    base = _peak_rss_mb("import ragnest.parsers.text")
    peak = _peak_rss_mb(f"""
        from ragnest.parsers.text import TextParser
        from ragnest.types import Source
        n = sum(1 for _ in TextParser().parse(Source.from_path({str(path)!r})))
        assert n > 10_000, n
    """)
    # the whole file decoded once would already take size_mb more; splitting it as a list
    # of lines several times that
    assert peak - base < 0.5 * size_mb, (base, peak, size_mb)
