"""Page and region images of Documents: bytes and base64 on demand, and LangChain
content blocks for multimodal chat models.

A Document from ragnest holds a reference to its image (``metadata["image"]``: ``uri``,
``mime_type``, ``ref``); the pixels are rendered and encoded only when asked for::

    from langchain_core.messages import HumanMessage
    from langchain_ragnest import RagnestRetriever
    from langchain_ragnest.images import to_content_blocks

    docs = retriever.invoke("Where is the descaling button?")
    message = HumanMessage(content=[
        {"type": "text", "text": "Answer from these pages: where is the descaling button?"},
        *to_content_blocks(docs),          # "[P1] manual.pdf p. 5", its text, its image
    ])
    answer = chat_model.invoke([message])

:func:`image_blocks` gives the image blocks alone, :func:`image_base64` one image's
base64, :func:`with_image_base64` copies of the Documents with the base64 filled in
(``metadata["image"]["base64"]``) for code that reads it from there.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages.content import (
    ImageContentBlock,
    TextContentBlock,
    create_image_block,
    create_text_block,
)
from ragnest.media.encode import encode, mime_type, normalize_format
from ragnest.media.render import Renderer
from ragnest.types import ImageRef

from langchain_ragnest.documents import IMAGE_KEY, _image_ref

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "document_image",
    "image_base64",
    "image_block",
    "image_blocks",
    "image_bytes",
    "to_content_blocks",
    "with_image_base64",
]

logger = logging.getLogger(__name__)

#: Pixel cap of an image sent to a chat model (about 1.6 MP: an A4 page at ~130 dpi).
DEFAULT_MAX_PIXELS = 1_600_000


def document_image(doc: Document | ImageRef) -> ImageRef | None:
    """The :class:`~ragnest.types.ImageRef` a Document refers to (``None``: it has none)."""
    if isinstance(doc, ImageRef):
        return doc
    return _image_ref(doc.metadata or {})


def image_bytes(
    doc: Document | ImageRef,
    *,
    format: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    renderer: Renderer | None = None,
) -> tuple[bytes, str]:
    """``(bytes, mime type)`` of a Document's page or region image, rendered now.

    ``format`` defaults to the MIME type the Document announces (JPEG otherwise).
    Raises ``ValueError`` when the Document has no image reference.
    """
    ref = document_image(doc)
    if ref is None:
        raise ValueError(
            f"{_describe(doc)} has no image reference (metadata['{IMAGE_KEY}']); only "
            "Documents of page, region and image chunks from ragnest carry one"
        )
    fmt = normalize_format(format or _announced_format(doc) or "jpeg")
    data = encode(ref, fmt, max_pixels=max_pixels, renderer=renderer)
    return data, mime_type(fmt)


def image_base64(
    doc: Document | ImageRef,
    *,
    format: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    renderer: Renderer | None = None,
) -> str:
    """The image of ``doc`` as base64 text (a ``base64`` already in its metadata is reused)."""
    cached = _cached_base64(doc, format)
    if cached is not None:
        return cached
    data, _ = image_bytes(doc, format=format, max_pixels=max_pixels, renderer=renderer)
    return base64.b64encode(data).decode("ascii")


def image_block(
    doc: Document | ImageRef,
    *,
    format: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    renderer: Renderer | None = None,
) -> ImageContentBlock | None:
    """A LangChain image content block (base64 + MIME type) for ``doc``, or ``None``
    when it has no image."""
    if document_image(doc) is None:
        return None
    fmt = normalize_format(format or _announced_format(doc) or "jpeg")
    data = image_base64(doc, format=fmt, max_pixels=max_pixels, renderer=renderer)
    return create_image_block(base64=data, mime_type=mime_type(fmt))


def image_blocks(
    docs: Iterable[Document],
    *,
    format: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_images: int | None = None,
    renderer: Renderer | None = None,
) -> list[ImageContentBlock]:
    """Image content blocks for the Documents that have an image (at most ``max_images``)."""
    out: list[ImageContentBlock] = []
    for doc in docs:
        if max_images is not None and len(out) >= max_images:
            break
        block = image_block(doc, format=format, max_pixels=max_pixels, renderer=renderer)
        if block is not None:
            out.append(block)
    return out


def _label(i: int, doc: Document) -> str:
    meta = doc.metadata or {}
    source = str(meta.get("source") or "")
    name = Path(source).name if source else (doc.id or "document")
    page = meta.get("page")
    return f"[P{i}] {name}" + (f" p. {page}" if page else "")


def to_content_blocks(
    docs: Sequence[Document],
    *,
    text: bool = True,
    images: bool = True,
    format: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_images: int | None = None,
    max_chars: int = 4000,
    renderer: Renderer | None = None,
) -> list[TextContentBlock | ImageContentBlock]:
    """Documents as the content of one multimodal chat message: for each, a text block
    ``[P1] manual.pdf p. 12`` (with its text when ``text``), then its image (when
    ``images``; at most ``max_images``). The labels match ragnest's citation tags, so
    an answer citing ``[P1]`` can be resolved with
    :func:`ragnest.generators.evidence.parse_citations`.
    """
    out: list[TextContentBlock | ImageContentBlock] = []
    sent = 0
    for i, doc in enumerate(docs, 1):
        header = _label(i, doc)
        body = doc.page_content.strip()[:max_chars] if text else ""
        out.append(create_text_block(f"{header}\n{body}" if body else header))
        if images and (max_images is None or sent < max_images):
            block = image_block(doc, format=format, max_pixels=max_pixels, renderer=renderer)
            if block is not None:
                out.append(block)
                sent += 1
    return out


def with_image_base64(
    docs: Iterable[Document],
    *,
    format: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    renderer: Renderer | None = None,
) -> list[Document]:
    """Copies of ``docs`` whose image reference also holds the pixels
    (``metadata["image"]["base64"]``); Documents without an image are copied as they are."""
    out = []
    for doc in docs:
        meta = dict(doc.metadata or {})
        image = meta.get(IMAGE_KEY)
        if isinstance(image, dict) and document_image(doc) is not None:
            fmt = normalize_format(format or _announced_format(doc) or "jpeg")
            data = image_base64(doc, format=fmt, max_pixels=max_pixels, renderer=renderer)
            meta[IMAGE_KEY] = {**image, "mime_type": mime_type(fmt), "base64": data}
        out.append(doc.model_copy(update={"metadata": meta}))
    return out


def _announced_format(doc: Document | ImageRef) -> str | None:
    if isinstance(doc, ImageRef):
        return None
    image = (doc.metadata or {}).get(IMAGE_KEY)
    mime = image.get("mime_type") if isinstance(image, dict) else None
    if isinstance(mime, str) and mime.startswith("image/"):
        try:
            return normalize_format(mime.split("/", 1)[1])
        except ValueError:
            return None
    return None


def _cached_base64(doc: Document | ImageRef, format: str | None) -> str | None:
    if isinstance(doc, ImageRef):
        return None
    image: Any = (doc.metadata or {}).get(IMAGE_KEY)
    if not isinstance(image, dict) or not isinstance(image.get("base64"), str):
        return None
    if format is not None and image.get("mime_type") != mime_type(format):
        return None
    return str(image["base64"])


def _describe(doc: Document | ImageRef) -> str:
    if isinstance(doc, ImageRef):
        return repr(doc)
    source = (doc.metadata or {}).get("source")
    return f"Document {doc.id or ''} ({source or 'no source'})".replace("  ", " ")
