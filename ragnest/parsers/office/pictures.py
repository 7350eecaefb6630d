"""Pictures of Office documents and e-books as lazy ImageRefs (nothing is extracted).

A picture inside a ZIP container becomes ``ImageRef(blob="/abs/report.docx::word/
media/image1.png")``, read only when something renders it (through the one resolver,
:mod:`ragnest.media.resolve`); an image next to an HTML or Markdown file becomes a
ref to that file. Icons and bullets (under 32x32 px or 2 KB), repeated pictures
(logos) and vector formats (EMF/WMF/SVG) are skipped::

    >>> state = Pictures(archive="/docs/report.docx")
    >>> state.accept("word/media/image9.emf", None, nbytes=9000, content_type="image/x-emf")
    >>> state.ref("word/media/image1.png").blob
    '/docs/report.docx::word/media/image1.png'

:class:`Pictures` is the per-parse state; the unstructured adapter's picture hooks
find it in a context variable (:func:`collecting`), so concurrent parses never mix.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import io
import logging
import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ragnest._paths import readable_path
from ragnest.media.resolve import MEMBER_SEPARATOR
from ragnest.parsers.office.detect import OfficeDocument
from ragnest.types import ImageRef

__all__ = [
    "Pictures",
    "LinkedImages",
    "collecting",
    "current",
    "accept_part",
    "docx_paragraph_pictures",
    "pptx_picture",
    "pixel_size",
]

logger = logging.getLogger(__name__)

_MIN_IMAGE_BYTES = 2048
_MIN_IMAGE_SIDE = 32
_VECTOR_IMAGE = re.compile(r"(emf|wmf|svg|emz|wmz|x-pict)", re.IGNORECASE)

_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_WP = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
_VML = "urn:schemas-microsoft-com:vml"


@dataclass
class Pictures:
    """Per-parse state of the picture sub-partitioners (held in a context variable)."""

    archive: str  # the file the ImageRef blobs point into
    enabled: bool = True
    crc_members: dict[tuple[int, int], str] | None = None  # ODT: (crc32, size) -> member
    seen: set[str] = dataclasses.field(default_factory=set)
    document_part: Any = None  # DOCX: the main document part (for pictures not in paragraphs)

    def accept(self, member: str, blob: bytes | None, *, nbytes: int, content_type: str = "",
               head: bytes | None = None) -> str | None:
        """The member to reference for this picture, or ``None`` to skip it."""
        if not self.enabled:
            return None
        if _VECTOR_IMAGE.search(content_type) or _VECTOR_IMAGE.search(Path(member).suffix):
            logger.debug("%s: skipping vector picture %s (%s)", self.archive, member,
                         content_type or "by extension")
            return None
        if nbytes < _MIN_IMAGE_BYTES:
            logger.debug("%s: skipping small picture %s (%d bytes)", self.archive, member, nbytes)
            return None
        size = pixel_size(head if head is not None else blob or b"")
        if size is not None and min(size) < _MIN_IMAGE_SIDE:
            logger.debug("%s: skipping small picture %s (%dx%d px)", self.archive, member, *size)
            return None
        if self.crc_members is not None:
            key = (zlib.crc32(blob or b""), nbytes)
            original = self.crc_members.get(key)
            if original is None:
                logger.debug("%s: picture %s not found in the original file", self.archive,
                             member)
                return None
            member = original
        if member in self.seen:
            return None
        self.seen.add(member)
        return member

    def ref(self, member: str) -> ImageRef:
        """The lazy ref to ``member`` of this parse's container."""
        return ImageRef(blob=f"{self.archive}{MEMBER_SEPARATOR}{member}")


_PICTURES: contextvars.ContextVar[Pictures | None] = contextvars.ContextVar(
    "ragnest_office_pictures", default=None
)


@contextlib.contextmanager
def collecting(state: Pictures) -> Iterator[Pictures]:
    """Make ``state`` the current parse's pictures (what the picture hooks fill)."""
    token = _PICTURES.set(state)
    try:
        yield state
    finally:
        _PICTURES.reset(token)


def current() -> Pictures | None:
    """The pictures of the parse running in this context, or ``None`` outside one."""
    return _PICTURES.get()


def pixel_size(head: bytes) -> tuple[int, int] | None:
    """``(width, height)`` of an image from its first bytes (Pillow), else ``None``."""
    if not head:
        return None
    try:
        from PIL import Image as PILImage

        with PILImage.open(io.BytesIO(head)) as img:
            return int(img.size[0]), int(img.size[1])
    except Exception:  # no Pillow, or a format it cannot size: keep the picture
        return None


def accept_part(state: Pictures, part: Any) -> str | None:
    """The member name of a python-docx/python-pptx image part if ``state`` keeps it."""
    if part is None or not hasattr(part, "blob"):
        return None
    blob = part.blob
    member = str(part.partname).lstrip("/")
    return state.accept(member, blob, nbytes=len(blob), content_type=part.content_type or "")


def docx_paragraph_pictures(paragraph: Any) -> list[tuple[Any, str]]:
    """``(image part, alt text)`` of each picture in a python-docx paragraph (DrawingML
    ``a:blip`` and legacy VML ``v:imagedata``), in document order."""
    element = paragraph._p
    rids: list[tuple[str, str]] = []
    for blip in element.iter(f"{{{_A}}}blip"):
        rid = blip.get(f"{{{_R}}}embed")
        if rid:
            rids.append((rid, _docx_alt_text(blip)))
    for imagedata in element.iter(f"{{{_VML}}}imagedata"):
        rid = imagedata.get(f"{{{_R}}}id")
        if rid:
            rids.append((rid, imagedata.get("title") or ""))
    return [(paragraph.part.related_parts.get(rid), alt) for rid, alt in rids]


def _docx_alt_text(blip: Any) -> str:
    node = blip.getparent()
    while node is not None and node.tag not in (f"{{{_WP}}}inline", f"{{{_WP}}}anchor"):
        node = node.getparent()
    if node is None:
        return ""
    doc_pr = node.find(f"{{{_WP}}}docPr")
    if doc_pr is None:
        return ""
    return (doc_pr.get("descr") or doc_pr.get("title") or "").strip()


def pptx_picture(picture: Any) -> tuple[Any, str]:
    """``(image part, alt text)`` of a python-pptx picture shape (raises
    ``AttributeError``/``KeyError`` for a picture without a readable image)."""
    rid = picture._element.blip_rId
    part = picture.part.related_part(rid) if rid else None
    return part, (picture._element._nvXxPr.cNvPr.get("descr") or "").strip()


class LinkedImages:
    """HTML/Markdown/EPUB image sources to lazy ImageRefs (local files and EPUB members).

    Remote and inline (``http:``, ``data:``, ``cid:``) sources give ``None``.
    """

    def __init__(self, doc: OfficeDocument) -> None:
        self.doc = doc
        self.seen: set[str] = set()
        self._members: dict[str, zipfile.ZipInfo] | None = None

    def resolve(self, url: str | None) -> ImageRef | None:
        """The ref for an image source of this document, or ``None`` to skip it."""
        if not url or not self.doc.archive:
            return None
        parts = urlsplit(url.strip())
        if parts.scheme or parts.netloc or not parts.path:  # http:, data:, cid:, ...
            return None
        path = unquote(parts.path)
        if self.doc.fmt == "epub":
            return self._epub_member(path)
        if self.doc.fmt in ("html", "md") and self.doc.source.path:
            return self._local_file(path)
        return None

    def _accept(self, key: str, nbytes: int, head: bytes) -> bool:
        if key in self.seen:
            return False
        state = Pictures(archive=self.doc.name)
        if state.accept(key, None, nbytes=nbytes, head=head) is None:
            return False
        self.seen.add(key)
        return True

    def _epub_member(self, path: str) -> ImageRef | None:
        if self._members is None:
            with zipfile.ZipFile(io.BytesIO(self.doc.data)) as zf:
                self._members = {info.filename: info for info in zf.infolist()}
        clean = os.path.normpath(path).lstrip("./").replace("\\", "/")
        hits = sorted(m for m in self._members if m == clean or m.endswith("/" + clean))
        if not hits:
            logger.debug("%s: image %s not in the e-book", self.doc.name, path)
            return None
        member = hits[0]
        with zipfile.ZipFile(io.BytesIO(self.doc.data)) as zf, zf.open(member) as fh:
            head = fh.read(65536)
        if not self._accept(member, self._members[member].file_size, head):
            return None
        return ImageRef(blob=f"{self.doc.archive}{MEMBER_SEPARATOR}{member}")

    def _local_file(self, path: str) -> ImageRef | None:
        base = Path(str(self.doc.source.path)).parent
        candidate = (base / path).resolve() if not os.path.isabs(path) else Path(path)
        if not candidate.is_file():
            logger.debug("%s: image %s not found", self.doc.name, candidate)
            return None
        with open(candidate, "rb") as fh:
            head = fh.read(65536)
        if not self._accept(str(candidate), candidate.stat().st_size, head):
            return None
        return ImageRef(blob=readable_path(candidate))
