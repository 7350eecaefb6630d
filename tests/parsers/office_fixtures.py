"""Real Office, web, mail and e-book documents for the OfficeParser tests, built in code.

python-docx, python-pptx and openpyxl write DOCX/PPTX/XLSX; pypandoc (with its bundled
pandoc) writes EPUB and ODT from Markdown; HTML, Markdown and e-mail are strings.
:func:`build_all` writes every fixture into a directory and returns their paths.
"""

from __future__ import annotations

import io
from email.message import EmailMessage
from pathlib import Path

import numpy as np
import pymupdf

__all__ = [
    "png_bytes",
    "make_docx",
    "make_pptx",
    "make_xlsx",
    "make_html",
    "make_markdown",
    "make_eml",
    "make_epub",
    "make_odt",
    "encrypt_ooxml",
    "build_all",
    "PICTURE_SIZE",
    "SLIDE_PICTURE_SIZE",
    "MARKDOWN",
    "HTML",
]

#: (width, height) of the picture in the DOCX, ODT, EPUB, HTML and Markdown fixtures.
PICTURE_SIZE = (120, 80)
#: (width, height) of the picture on slide 2 of the PPTX fixture.
SLIDE_PICTURE_SIZE = (160, 90)


def png_bytes(width: int, height: int, seed: int = 0) -> bytes:
    """A noisy RGB PNG (noise keeps it above the parser's 2 KB icon threshold)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    pix = pymupdf.Pixmap(pymupdf.csRGB, width, height, pixels.tobytes(), 0)
    return pix.tobytes("png")


def make_docx(path: Path) -> Path:
    """Heading, paragraph, picture + caption, bullet, table, a second section with an
    icon-sized picture that the parser must skip."""
    import docx
    from docx.shared import Inches

    doc = docx.Document()
    doc.core_properties.title = "Nimbus Guide"
    doc.add_heading("Setup", level=1)
    doc.add_paragraph("Fill the water tank with fresh water before first use.")
    doc.add_picture(io.BytesIO(png_bytes(*PICTURE_SIZE, seed=1)), width=Inches(1.25))
    doc.add_paragraph("Figure 1: the water tank", style="Caption")
    doc.add_paragraph("Check the seal of the tank", style="List Bullet")
    doc.add_heading("Specifications", level=1)
    table = doc.add_table(rows=3, cols=2)
    for i, row in enumerate([("Part", "Qty"), ("Pump", "1"), ("Valve", "2")]):
        for j, value in enumerate(row):
            table.cell(i, j).text = value
    doc.add_heading("Cleaning", level=1)
    doc.add_paragraph("Rinse the group head daily with warm water.")
    doc.add_picture(io.BytesIO(png_bytes(16, 16, seed=2)))  # an icon: skipped
    doc.save(str(path))
    return path


def make_pptx(path: Path) -> Path:
    """Three slides: title + body, a picture slide, a table slide."""
    import pptx
    from pptx.util import Inches

    prs = pptx.Presentation()
    prs.core_properties.title = "Nimbus Deck"
    slide = prs.slides.add_slide(prs.slide_layouts[1])
    slide.shapes.title.text = "Welcome"
    slide.placeholders[1].text = "The Nimbus brews espresso at 93 degrees."
    slide = prs.slides.add_slide(prs.slide_layouts[5])
    slide.shapes.title.text = "Photo of the pump"
    slide.shapes.add_picture(io.BytesIO(png_bytes(*SLIDE_PICTURE_SIZE, seed=3)),
                             Inches(1), Inches(2))
    slide = prs.slides.add_slide(prs.slide_layouts[5])
    slide.shapes.title.text = "Spare parts"
    shape = slide.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1))
    for (i, j), value in {(0, 0): "Part", (0, 1): "Price", (1, 0): "Gasket",
                          (1, 1): "4.50"}.items():
        shape.table.cell(i, j).text = value
    prs.save(str(path))
    return path


def make_xlsx(path: Path) -> Path:
    """Two sheets, ``Prices`` and ``Stock``."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Prices"
    ws.append(["Item", "Price"])
    ws.append(["Pump", 120])
    ws.append(["Gasket", 4.5])
    ws = wb.create_sheet("Stock")
    ws.append(["Item", "Count"])
    ws.append(["Valve", 3])
    wb.save(str(path))
    return path


HTML = """<!DOCTYPE html>
<html><head><meta charset="{charset}"><title>Caf\u00e9 manual</title></head>
<body>
<h1>Caf\u00e9 cr\u00e8me</h1>
<p>Brew at 93 \u00b0C \u2013 never hotter.</p>
<figure><img src="pump.png" alt="The pump"><figcaption>Figure 2: the pump</figcaption></figure>
<h2>Parts</h2>
<table><tr><th>Part</th><th>Qty</th></tr><tr><td>Pump</td><td>1</td></tr></table>
<img src="https://example.com/remote.png" alt="remote logo">
</body></html>
"""

MARKDOWN = """---
title: Nimbus Notes
---

# Setup

Fill the tank with water at 20 \u00b0C.

![The pump](pump.png)

| Part | Qty |
|------|-----|
| Pump | 1   |

# Descaling

Descale every 8 weeks.
"""


def make_html(path: Path, encoding: str = "utf-8", charset: str | None = None) -> Path:
    """The :data:`HTML` page in ``encoding`` (its ``<meta charset>`` says ``charset``)."""
    text = HTML.replace("{charset}", charset or encoding)
    path.write_bytes(text.encode(encoding))
    return path


def make_markdown(path: Path, encoding: str = "utf-8") -> Path:
    path.write_bytes(MARKDOWN.encode(encoding))
    return path


def make_eml(path: Path, *, charset: str = "utf-8", declared: bool = True) -> Path:
    """A message with a subject, a body and a PDF attachment.

    With ``declared=False`` the subject and body are raw 8-bit ``charset`` bytes without
    a charset parameter or RFC 2047 encoding (common in old mail).
    """
    dash = "-" if charset.lower() in ("latin-1", "latin1", "iso-8859-1") else "\u2013"
    body = (f"Hello Bob,\n\nPlease descale the Nimbus every 8 weeks at 93 \u00b0C {dash} "
            "caf\u00e9 cr\u00e8me.\n\nAna\n")
    if not declared:
        raw = (
            "From: Ana <ana@example.com>\r\nTo: bob@example.com\r\n"
            "Subject: Descaling schedule (caf\u00e9)\r\n"
            "Date: Tue, 03 Mar 2026 10:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
        ).encode(charset) + body.replace("\n", "\r\n").encode(charset)
        path.write_bytes(raw)
        return path
    msg = EmailMessage()
    msg["Subject"] = "Descaling schedule"
    msg["From"] = "Ana <ana@example.com>"
    msg["To"] = "bob@example.com"
    msg["Date"] = "Tue, 03 Mar 2026 10:00:00 +0000"
    msg.set_content(body, charset=charset, cte="8bit" if charset != "utf-8" else None)
    msg.add_attachment(b"%PDF-1.4 not really", maintype="application", subtype="pdf",
                       filename="manual.pdf")
    path.write_bytes(bytes(msg))
    return path


def _pandoc(markdown: str, fmt: str, path: Path, resources: Path) -> Path:
    import pypandoc

    pypandoc.convert_text(markdown, fmt, format="md", outputfile=str(path),
                          extra_args=[f"--resource-path={resources}"])
    return path


def make_epub(path: Path, resources: Path) -> Path:
    """An EPUB from :data:`MARKDOWN` (``resources`` holds ``pump.png``)."""
    return _pandoc(MARKDOWN.replace("Nimbus Notes", "Nimbus Book"), "epub", path, resources)


def make_odt(path: Path, resources: Path) -> Path:
    """An ODT from :data:`MARKDOWN` (``resources`` holds ``pump.png``)."""
    return _pandoc(MARKDOWN, "odt", path, resources)


def encrypt_ooxml(src: Path, dest: Path, password: str) -> Path:
    """``src`` encrypted with ``password`` (Agile encryption, as Office does)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    with open(src, "rb") as fh:
        out = io.BytesIO()
        OOXMLFile(fh).encrypt(password, out)
    dest.write_bytes(out.getvalue())
    return dest


def build_all(root: Path) -> dict[str, Path]:
    """Every fixture, written under ``root``; keys name them."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pump.png").write_bytes(png_bytes(*PICTURE_SIZE, seed=4))
    paths = {
        "docx": make_docx(root / "guide.docx"),
        "pptx": make_pptx(root / "deck.pptx"),
        "xlsx": make_xlsx(root / "book.xlsx"),
        "html": make_html(root / "page.html"),
        "md": make_markdown(root / "notes.md"),
        "eml": make_eml(root / "mail.eml"),
        "epub": make_epub(root / "book.epub", root),
        "odt": make_odt(root / "notes.odt", root),
    }
    paths["encrypted"] = encrypt_ooxml(paths["docx"], root / "secret.docx", "s3cret")
    return paths
