"""unstructured's elements as ragnest segments, grouped by page.

Titles become ``"heading"`` text, list items ``"list"``, code ``"code"``, figure
captions ``"caption"``; tables become Markdown ``table`` segments (long ones cut into
parts that repeat the header row); pictures become ``image`` segments with lazy refs;
headers, footers and page breaks are dropped. Elements are read by their attributes
only (``category``, ``text``, ``metadata``), so nothing here imports unstructured::

    >>> from ragnest.types import Segment
    >>> segs = [Segment(kind="image", text="pump"), Segment(kind="text", text="Figure 2: Pump")]
    >>> [s.role for s in mark_captions(segs, set())]
    [None, 'caption']
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from ragnest.parsers.office.detect import OfficeDocument
from ragnest.parsers.office.pictures import LinkedImages, Pictures, accept_part
from ragnest.parsers.office.tables import html_table_to_markdown, markdown_table_parts
from ragnest.types import ImageRef, Segment

__all__ = ["page_segments", "element_segments", "mark_captions", "PageSegments"]

#: Page (``None`` for page-less formats) -> its segments and per-page metadata.
PageSegments = dict[int | None, tuple[list[Segment], dict[str, Any]]]

_CAPTION = re.compile(
    r"^\s*(figure|fig\.?|table|tab\.|image|photo|picture|chart|diagram|illustration|"
    r"exhibit|plate|abbildung|abb\.|tabelle|bild)\s*[\dIVXivx]+\b",
    re.IGNORECASE,
)
_FILE_NAME = re.compile(r"^[\w\-. ]+\.(png|jpe?g|gif|bmp|tiff?|webp|emf|wmf|svg)$", re.IGNORECASE)
_GENERIC_ALT = frozenset({"image", "img", "picture", "photo", "graphic", "figure"})


def page_segments(doc: OfficeDocument, elements: Sequence[Any], pictures: Pictures,
                  images: LinkedImages, max_chars: int) -> PageSegments:
    """Segments grouped by page (in first-seen order), with per-page metadata."""
    pages: PageSegments = {}
    current: int | None = None
    for element in elements:
        meta = element.metadata
        page = meta.page_number if meta.page_number is not None else current
        current = page
        if page not in pages:
            pages[page] = ([], {"sheet": meta.page_name} if doc.fmt in ("xlsx", "xls")
                           and meta.page_name else {})
        pages[page][0].extend(element_segments(doc, element, page, pictures, images,
                                               max_chars))
    # DOCX pictures outside body paragraphs (table cells, text frames): at the end.
    part = pictures.document_part
    if part is not None and pictures.enabled:
        tail: list[Segment] = []
        for rel in list(part.rels.values()):
            if rel.is_external or not rel.reltype.endswith("/image"):
                continue
            member = accept_part(pictures, rel.target_part)
            if member is not None:
                tail.append(Segment(kind="image", image=pictures.ref(member), page=current,
                                    role="picture"))
        if tail:
            pages.setdefault(current, ([], {}))[0].extend(tail)
    return pages


def element_segments(doc: OfficeDocument, element: Any, page: int | None, pictures: Pictures,
                     images: LinkedImages, max_chars: int) -> list[Segment]:
    """The segments of one element (none for headers, footers, page breaks)."""
    category = getattr(element, "category", type(element).__name__)
    text = (element.text or "").strip()
    if category in ("Header", "Footer", "PageBreak", "PageNumber"):
        return []
    if category in ("Table", "TableChunk"):
        html = element.metadata.text_as_html
        table = html_table_to_markdown(html) if html else ""
        if not table:
            return [Segment(kind="text", text=text, page=page)] if text else []
        return [Segment(kind="table", text=part, page=page)
                for part in markdown_table_parts(table, max_chars)]
    if category == "Image":
        member = element.metadata.image_path
        if member and member in pictures.seen:  # set by the DOCX/PPTX picture hooks
            ref: ImageRef | None = pictures.ref(member)
        else:
            ref = images.resolve(element.metadata.image_url)
        if _FILE_NAME.match(text) or text.lower() in _GENERIC_ALT:
            text = ""  # python-pptx and others store the file name as alt text
        if ref is not None:
            return [Segment(kind="image", text=text, image=ref, page=page, role="picture")]
        return [Segment(kind="text", text=text, page=page)] if text else []
    if not text:
        return []
    role = {"Title": "heading", "ListItem": "list", "CodeSnippet": "code",
            "FigureCaption": "caption"}.get(category)
    if role == "heading" and doc.fmt in ("eml", "msg"):
        role = None  # in mail bodies "titles" are greetings and signatures
    return [Segment(kind="text", text=text, page=page, role=role)]


def mark_captions(segments: list[Segment], captions: set[str]) -> list[Segment]:
    """Give the caption role to text next to an image or table that reads like one
    ("Figure 2: ...", an HTML ``<figcaption>``); drop captions that repeat alt text."""
    out: list[Segment] = []
    for i, seg in enumerate(segments):
        if seg.kind == "text" and seg.role in (None, "caption"):
            prev = segments[i - 1] if i else None
            nxt = segments[i + 1] if i + 1 < len(segments) else None
            beside = [s for s in (prev, nxt) if s is not None and s.kind in ("image", "table")]
            if seg.text in captions or (beside and _CAPTION.match(seg.text)):
                if prev is not None and prev.kind == "image" and prev.text.strip() == seg.text:
                    continue  # pandoc repeats alt text as the figure caption
                seg = dataclasses.replace(seg, role="caption")
        out.append(seg)
    return out
