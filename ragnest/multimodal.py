"""What a model reads of a chunk: its text, its one image, or its ordered text and image parts.

The one place that turns a :class:`~ragnest.types.Chunk` into model input, for every
model that reads chunks (the DSE embedder today; vision-language rerankers and
generators next). Parts are strings and :class:`~ragnest.types.ImageRef` objects, in
reading order; pixels are not rendered here (see :func:`ragnest._hf.load_image`)::

    >>> from ragnest.types import Chunk, ImageRef, Segment
    >>> fig = ImageRef(blob="fig.png")
    >>> chunk = Chunk(id="c", document_id="d", kind="interleaved", segments=(
    ...     Segment(kind="text", text="The pump:"), Segment(kind="image", image=fig),
    ...     Segment(kind="table", text="| a | b |")))
    >>> chunk_parts(chunk) == ["The pump:", fig, "| a | b |"]
    True
    >>> page = Chunk(id="p", document_id="d", kind="page", text="Page text", image=fig)
    >>> chunk_parts(page), chunk_parts(page, prefer="both")[1]
    ([ImageRef(source=None, page=None, clip=None, dpi=96, blob='fig.png')], 'Page text')
"""

from __future__ import annotations

import logging
from typing import Literal, Union

from ragnest.types import Chunk, ImageRef

__all__ = ["Part", "chunk_image", "chunk_parts", "chunk_text", "is_interleaved"]

logger = logging.getLogger(__name__)

#: One ordered piece of model input: text, or an image not rendered yet.
Part = Union[str, ImageRef]


def chunk_text(chunk: Chunk) -> str:
    """The chunk's text, or its segments' text joined by newlines (image alt/OCR text and
    table Markdown included)."""
    if chunk.text.strip():
        return chunk.text
    return "\n".join(s.text for s in chunk.segments if s.text).strip()


def chunk_image(chunk: Chunk, *, region: bool = False) -> ImageRef | None:
    """The one image a chunk is read from when a model reads one image per chunk.

    Page chunks: the page screenshot. Other chunks: the first image segment, else the
    chunk's own image. With ``region=True`` the chunk's own image comes first for every
    kind: for a PDF interleaved chunk that is the rendered region of the page the chunk
    covers (its text and figures in their layout, i.e. the whole chunk as one image);
    chunks without one (Office, HTML) fall back to their first image segment.
    """
    if chunk.image is not None and (region or chunk.kind == "page"):
        return chunk.image
    for seg in chunk.segments:
        if seg.kind == "image" and seg.image is not None:
            return seg.image
    return chunk.image


def is_interleaved(chunk: Chunk) -> bool:
    """Whether a sequence model reads ``chunk`` as its segments in order: interleaved
    chunks (or any chunk with several segments) holding at least one image segment;
    page chunks with a screenshot never."""
    if chunk.kind == "page" and chunk.image is not None:
        return False
    if chunk.kind != "interleaved" and len(chunk.segments) < 2:
        return False
    return any(s.kind == "image" and s.image is not None for s in chunk.segments)


def chunk_parts(
    chunk: Chunk,
    *,
    max_images: int | None = None,
    region: bool = False,
    prefer: Literal["image", "text", "both"] = "image",
) -> list[Part]:
    """The ordered text and image parts a model reads of ``chunk`` (``[]``: nothing).

    * Interleaved chunks (:func:`is_interleaved`): their segments in reading order, text
      and table segments (Markdown) as text, image segments as their refs (the first
      ``max_images``; the rest are dropped, logged at debug level). With ``region=True``
      a chunk that carries its own rendered region is read as one image instead.
    * Every other chunk (pages, images, text): its one image (:func:`chunk_image`) and/or
      its text (:func:`chunk_text`, the page's text layer for pages): ``prefer="image"``
      gives the image, or the text when there is no image; ``"text"`` the text, or the
      image when there is no text; ``"both"`` the image, then the text.
    """
    if max_images is not None and max_images < 0:
        raise ValueError(f"max_images must be >= 0, got {max_images}")
    if is_interleaved(chunk) and not (region and chunk.image is not None):
        return _segment_parts(chunk, max_images)
    image = chunk_image(chunk, region=region)
    if max_images == 0:
        image = None
    text = chunk_text(chunk)
    if prefer == "both":
        parts: list[Part] = [image] if image is not None else []
        return parts + ([text] if text else [])
    if prefer == "text":
        return [text] if text else [image] if image is not None else []
    return [image] if image is not None else [text] if text else []


def _segment_parts(chunk: Chunk, max_images: int | None) -> list[Part]:
    parts: list[Part] = []
    kept = dropped = 0
    for seg in chunk.segments:
        if seg.kind == "image" and seg.image is not None:
            if max_images is None or kept < max_images:
                parts.append(seg.image)
                kept += 1
            else:
                dropped += 1
        elif seg.text.strip():  # text, table Markdown, alt text of an image without pixels
            parts.append(seg.text.strip())
    if dropped:
        logger.debug(
            "%s p.%s: chunk %s has %d images, reading the first %d (max_images)",
            chunk.source,
            chunk.page,
            chunk.id,
            kept + dropped,
            kept,
        )
    return parts
