"""Documents for the reliability suite: busy PDFs, the hostile files, a big text file."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

from .._long_pdf import pdf_file

__all__ = ["R_MANUALS", "busy_pdf", "hostile_files", "large_text", "nested_pdf", "pdf_bytes",
           "r_manuals"]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "docs"
R_MANUALS = Path("/usr/share/R/doc/manual")


def pdf_bytes(pages: list[bytes], extra: tuple[bytes, ...] = (), size: tuple[int, int] = (612, 792),
              page_extra: bytes = b"") -> bytes:
    """A PDF whose pages have the given content streams (Helvetica as /F1); ``extra``
    objects are appended after the pages (object numbers 4 + 2 * pages onwards) and
    ``page_extra`` is added to every page dictionary."""
    n = len(pages)
    objs: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n))
    objs.append(f"<< /Type /Pages /Count {n} /Kids [{kids}] >>".encode())
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, content in enumerate(pages):
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] " % size
                    + b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R " % (5 + 2 * i)
                    + page_extra + b">>")
        objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objs += list(extra)
    return pdf_file(objs)


def _page_text(number: int, lines: int) -> bytes:
    rows = [f"(Page {number}, line {i}: the pump, the valve and the filter need care.) Tj T*"
            for i in range(lines)]
    return ("BT /F1 10 Tf 12 TL 40 750 Td " + " ".join(rows) + " ET").encode()


def busy_pdf(path: Path, pages: int, lines: int = 50) -> Path:
    """A PDF of ``pages`` distinct full pages of text (slower to parse than one line)."""
    path.write_bytes(pdf_bytes([_page_text(i + 1, lines) for i in range(pages)]))
    return path


def nested_pdf(path: Path, depth: int = 100_000) -> Path:
    """A valid one-page PDF with an annotation array nested ``depth`` levels deep: MuPDF
    says "exception stack overflow!" about it (it used to print that on stdout)."""
    page = b"BT /F1 24 Tf 72 700 Td (Hello from a deeply nested file) Tj ET"
    path.write_bytes(pdf_bytes([page], extra=(b"[" * depth + b"]" * depth,),
                               page_extra=b"/Annots 6 0 R "))
    return path


def r_manuals(limit: int | None = None) -> list[Path]:
    """The small R manuals installed with R (largest first), or [] when absent."""
    if not R_MANUALS.is_dir():
        return []
    found = sorted((p for p in R_MANUALS.glob("R-*.pdf")), key=lambda p: -p.stat().st_size)
    return found[:limit] if limit else found


def hostile_files(folder: Path) -> dict[str, str]:
    """Write the hostile files into ``folder``; returns {name: a word of the reason it
    must be skipped with}, or "" for files that must be ingested (with warnings)."""
    folder.mkdir(parents=True, exist_ok=True)
    expect: dict[str, str] = {}
    nested_pdf(folder / "nested.pdf")
    expect["nested.pdf"] = ""
    whole = (EXAMPLES / "nimbus3_handbook.pdf").read_bytes()
    (folder / "truncated.pdf").write_bytes(whole[: len(whole) // 5])
    expect["truncated.pdf"] = "PDF"
    (folder / "error_page.pdf").write_text(
        "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
        "<body><h1>502 Bad Gateway</h1></body></html>")
    expect["error_page.pdf"] = "html"
    (folder / "empty.pdf").write_bytes(b"")
    expect["empty.pdf"] = "empty"
    (folder / "garbage.pdf").write_bytes(b"%PDF-1.7\n" + random.Random(7).randbytes(4000))
    expect["garbage.pdf"] = "PDF"
    (folder / "binary.txt").write_bytes(b"text\x00\x01\x02 with NUL bytes")
    expect["binary.txt"] = "binary"
    os.mkfifo(folder / "pipe.pdf")
    expect["pipe.pdf"] = "named pipe"
    (folder / "loop_a").symlink_to("loop_b")
    (folder / "loop_b").symlink_to("loop_a")
    expect["loop_a"] = expect["loop_b"] = "loop"
    (folder / "up").symlink_to("..")
    expect["up"] = "not followed"
    (folder / "dangling.pdf").symlink_to(folder / "no-such-target.pdf")
    expect["dangling.pdf"] = "broken symbolic link"
    latin1 = os.fsdecode(b"caf\xe9 menu.pdf")
    shutil.copy(EXAMPLES / "lab_safety_guide.pdf", folder / latin1)
    expect[latin1] = ""
    return expect


def large_text(path: Path, megabytes: float, *, seed: int = 0) -> Path:
    """A Markdown file of about ``megabytes`` MB: sections of word paragraphs."""
    rng = random.Random(seed)
    words = ("the espresso machine descale water tank pump pressure valve filter coffee "
             "grind bean milk steam clean weekly monthly manual safety warning").split()
    target = int(megabytes * 1024 * 1024)
    written = section = 0
    with open(path, "w", encoding="utf-8") as fh:
        while written < target:
            if rng.random() < 0.01:
                section += 1
                block = f"\n## Section {section}\n\n"
            else:
                block = " ".join(rng.choices(words, k=rng.randint(20, 120))) + ".\n\n"
            fh.write(block)
            written += len(block)
    return path
