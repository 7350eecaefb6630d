"""A many-page PDF written directly (10,000 pages in milliseconds) for streaming tests."""

from __future__ import annotations

import os

__all__ = ["make_long_pdf", "pdf_file"]


def make_long_pdf(path: str | os.PathLike[str], pages: int, text: str = "A page of the long file.") -> None:
    """Write a PDF of ``pages`` pages that share one content stream (fast for 10k pages)."""
    objs: list[bytes] = []
    content = f"BT /F1 9 Tf 20 160 Td ({text}) Tj ET".encode()
    kids = " ".join(f"{5 + i} 0 R" for i in range(pages))
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(f"<< /Type /Pages /Count {pages} /Kids [{kids}] >>".encode())
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    page = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>")
    objs += [page] * pages
    with open(path, "wb") as fh:
        fh.write(pdf_file(objs))


def pdf_file(objs: list[bytes]) -> bytes:
    """A PDF file of these objects (numbered from 1; object 1 is the catalog), with its
    cross-reference table."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)
