"""HTML and Markdown text: charsets, titles, front matter, ``<figure>`` blocks.

Helpers the office parser applies before handing markup to unstructured (or to MuPDF
for page rendering), and the titles it reads from document metadata::

    >>> front_matter("---\\ntitle: Nimbus notes\\n---\\n# Setup\\n")
    ('# Setup\\n', {'title': 'Nimbus notes'})
    >>> html_title("<html><head><title>Brew  guide</title></head></html>")
    'Brew guide'
"""

from __future__ import annotations

import html as html_lib
import io
import re
import zipfile

from ragnest.errors import MissingDependencyError
from ragnest.parsers.office.detect import INSTALL_HINT
from ragnest.parsers.text import decode_text

__all__ = [
    "decode_html",
    "html_title",
    "unwrap_figures",
    "front_matter",
    "archive_title",
    "markdown_html",
]

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)",
                           re.DOTALL)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""",
                           re.IGNORECASE)


def decode_html(data: bytes, name: str) -> tuple[str, str]:
    """HTML bytes to text: BOM, then a ``<meta charset>``, then UTF-8, then cp1252."""
    if not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        match = _META_CHARSET.search(data[:4096])
        if match:
            charset = match.group(1).decode("ascii").lower()
            try:
                text = data.decode(charset)
            except (LookupError, UnicodeDecodeError):
                pass
            else:
                return text, charset
    text, encoding = decode_text(data, name)
    return text.lstrip("\ufeff"), encoding


def html_title(text: str) -> str | None:
    """The text of an HTML page's ``<title>``, if any."""
    match = re.search(r"<title[^>]*>(.*?)</title>", text[:20000], re.IGNORECASE | re.DOTALL)
    if not match:
        return None
    title = " ".join(html_lib.unescape(re.sub(r"<[^>]+>", "", match.group(1))).split())
    return title or None


def unwrap_figures(text: str) -> tuple[str, set[str]]:
    """unstructured drops ``<figure>`` blocks whole; turn them into ``<div>``/``<p>``
    so their images and captions are kept, and return the caption texts."""
    captions = {
        " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", m)).split())
        for m in re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", text,
                            re.IGNORECASE | re.DOTALL)
    }
    text = re.sub(r"<(/?)figure\b", r"<\1div", text, flags=re.IGNORECASE)
    text = re.sub(r"<(/?)figcaption\b", r"<\1p", text, flags=re.IGNORECASE)
    return text, {c for c in captions if c}


def front_matter(text: str) -> tuple[str, dict[str, str]]:
    """Markdown text without its YAML front matter, and that front matter's flat
    ``key: value`` fields (keys lower-cased)."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return text, {}
    fields: dict[str, str] = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith((" ", "\t", "-")):
            fields[key.strip().lower()] = value.strip().strip("'\"")
    return text[match.end():], fields


def _xml_title(xml: bytes) -> str | None:
    match = re.search(rb"<dc:title[^>]*>(.*?)</dc:title>", xml, re.DOTALL)
    if not match:
        return None
    title = html_lib.unescape(match.group(1).decode("utf-8", "replace"))
    return " ".join(re.sub(r"<[^>]+>", "", title).split()) or None


def archive_title(data: bytes, fmt: str) -> str | None:
    """The title stored in an OOXML/ODT/EPUB container's metadata, if any."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            if fmt in ("docx", "pptx", "xlsx") and "docProps/core.xml" in names:
                return _xml_title(zf.read("docProps/core.xml"))
            if fmt == "odt" and "meta.xml" in names:
                return _xml_title(zf.read("meta.xml"))
            if fmt == "epub":
                for member in names:
                    if member.endswith(".opf"):
                        return _xml_title(zf.read(member))
    except (zipfile.BadZipFile, OSError, KeyError):
        return None
    return None



def markdown_html(data: bytes, name: str) -> str:
    """Markdown bytes (front matter dropped) as HTML, with tables and fenced code."""
    text, _ = decode_text(data, name)
    body, _ = front_matter(text.lstrip("\ufeff"))
    try:
        import markdown
    except ImportError as err:
        raise MissingDependencyError(
            f"Markdown needs the 'markdown' package (unstructured's 'md' extra): "
            f"{INSTALL_HINT}") from err
    return markdown.markdown(body, extensions=["tables", "fenced_code"])
