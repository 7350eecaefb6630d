"""ragnest chunks and hits as LangChain ``Document``\\ s, and back.

A ``Document`` from ragnest carries the chunk's text as ``page_content`` and, in its
(flat, JSON-basic) ``metadata``: ``source``, ``page``, ``pages``, ``bbox`` (PDF points),
``kind``, ``chunk_id``, ``document_id``, for hits ``score`` and ``scores_by_stage``,
the parser's own metadata (``title``, ``text_source``, ...), and, when the chunk has
one, its page or region image as a reference, never as pixels::

    {"uri": "file:///docs/manual.pdf#page=12", "mime_type": "image/jpeg",
     "ref": {"source": "/docs/manual.pdf", "page": 12, "clip": None, "dpi": 96, "blob": None}}

The pixels are rendered and encoded on demand (:mod:`langchain_ragnest.images`).
``Document.id`` is the chunk id::

    >>> from ragnest.types import Chunk, Hit, ImageRef
    >>> chunk = Chunk(id="c1", document_id="d1", kind="page", text="Descale monthly.",
    ...               source="/docs/manual.pdf", page=5,
    ...               image=ImageRef(source="/docs/manual.pdf", page=5))
    >>> doc = hit_to_document(Hit(chunk=chunk, score=0.9, scores_by_stage={"bm25": 4.2}))
    >>> doc.id, doc.metadata["page"], doc.metadata["image"]["uri"]
    ('c1', 5, 'file:///docs/manual.pdf#page=5')
    >>> document_to_chunk(doc) == chunk
    True
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from langchain_core.documents import Document
from ragnest.media.encode import mime_type, normalize_format
from ragnest.multimodal import chunk_image, chunk_text
from ragnest.types import NAMESPACE, Chunk, Hit, ImageRef, make_chunk_id

__all__ = [
    "IMAGE_KEY",
    "chunk_to_document",
    "document_to_chunk",
    "document_to_hit",
    "hit_to_document",
    "image_uri",
]

logger = logging.getLogger(__name__)

#: The metadata key holding a Document's image reference (``uri``, ``mime_type``, ``ref``).
IMAGE_KEY = "image"

# Keys this module writes; the rest of a Document's metadata is the chunk's own.
_OWN_KEYS = frozenset({
    "source", "page", "pages", "bbox", "kind", "chunk_id", "document_id", "score",
    "scores_by_stage", IMAGE_KEY,
})
_KINDS = frozenset({"page", "interleaved", "text", "image"})


def image_uri(ref: ImageRef) -> str:
    """A URI naming the pixels of ``ref``: ``file:///doc.pdf#page=3`` for a page
    (``&viewrect=left,top,width,height`` in PDF points for a region of it),
    ``file:///fig.png`` for an image file, ``file:///a.docx#member=word/media/1.png``
    for a member of a container.

    >>> image_uri(ImageRef(source="/d/m.pdf", page=2, clip=(10, 20, 110, 70)))
    'file:///d/m.pdf#page=2&viewrect=10,20,100,50'
    """
    if ref.blob:
        location, _, member = ref.blob.partition("::")
        base = _file_uri(location)
        return f"{base}#member={quote(member)}" if member else base
    base = _file_uri(ref.source or "")
    fragment = f"page={ref.page}" if ref.page else ""
    if ref.clip:
        x0, y0, x1, y1 = ref.clip
        fragment += f"&viewrect={_num(x0)},{_num(y0)},{_num(x1 - x0)},{_num(y1 - y0)}"
    return f"{base}#{fragment.lstrip('&')}" if fragment else base


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.2f}"


def _file_uri(location: str) -> str:
    if "://" in location:  # already a URI (s3://, https://)
        return location
    path = Path(location)
    return path.as_uri() if path.is_absolute() else quote(location)


def _image_metadata(ref: ImageRef, image_format: str) -> dict[str, Any]:
    return {"uri": image_uri(ref), "mime_type": mime_type(image_format), "ref": ref.to_dict()}


def chunk_to_document(
    chunk: Chunk,
    *,
    score: float | None = None,
    scores_by_stage: Mapping[str, float] | None = None,
    image_format: str = "jpeg",
) -> Document:
    """A LangChain ``Document`` for ``chunk`` (see the module docs for its metadata).

    ``image_format`` (``jpeg``, ``png``, ``webp``) is the MIME type the image reference
    announces: the format its bytes are encoded in on demand.
    """
    image_format = normalize_format(image_format)
    metadata: dict[str, Any] = {k: v for k, v in chunk.metadata.items() if k not in _OWN_KEYS}
    metadata.update({
        "source": chunk.source,
        "page": chunk.page,
        "pages": list(chunk.pages) if chunk.pages else ([chunk.page] if chunk.page else []),
        "bbox": list(chunk.bbox) if chunk.bbox else None,
        "kind": chunk.kind,
        "chunk_id": chunk.id,
        "document_id": chunk.document_id,
    })
    if score is not None:
        metadata["score"] = float(score)
    if scores_by_stage is not None:
        metadata["scores_by_stage"] = {str(k): float(v) for k, v in scores_by_stage.items()}
    ref = chunk_image(chunk, region=True)
    if ref is not None:
        metadata[IMAGE_KEY] = _image_metadata(ref, image_format)
    return Document(id=chunk.id, page_content=chunk_text(chunk), metadata=metadata)


def hit_to_document(hit: Hit, *, image_format: str = "jpeg") -> Document:
    """A ``Document`` for a retrieved hit: the chunk plus ``score`` and ``scores_by_stage``."""
    return chunk_to_document(hit.chunk, score=hit.score, scores_by_stage=hit.scores_by_stage,
                             image_format=image_format)


def _image_ref(metadata: Mapping[str, Any]) -> ImageRef | None:
    image = metadata.get(IMAGE_KEY)
    if isinstance(image, ImageRef):
        return image
    if isinstance(image, Mapping) and isinstance(image.get("ref"), Mapping):
        return ImageRef.from_dict(image["ref"])
    return None


def document_to_chunk(doc: Document) -> Chunk:
    """The ragnest ``Chunk`` a ``Document`` stands for.

    A Document made by this package comes back as its chunk (text, page, region, image
    reference; the layout segments are not carried). Any other Document becomes a
    ``text`` chunk: its id (or a uuid derived from its content) names it, ``source``
    comes from its metadata, and its metadata is kept.
    """
    meta = dict(doc.metadata or {})
    chunk_id, document_id, kind = meta.get("chunk_id"), meta.get("document_id"), meta.get("kind")
    if isinstance(chunk_id, str) and isinstance(document_id, str) and kind in _KINDS:
        page = meta.get("page") if isinstance(meta.get("page"), int) else None
        pages = tuple(p for p in meta.get("pages") or () if isinstance(p, int))
        bbox = meta.get("bbox")
        return Chunk(
            id=chunk_id,
            document_id=document_id,
            kind=kind,
            text=doc.page_content,
            source=str(meta.get("source") or ""),
            page=page,
            pages=() if pages == ((page,) if page else ()) else pages,
            bbox=tuple(float(v) for v in bbox) if bbox and len(bbox) == 4 else None,  # type: ignore[arg-type]
            image=_image_ref(meta),
            metadata={k: v for k, v in meta.items() if k not in _OWN_KEYS},
        )
    source = str(meta.get("source") or "")
    document_id = str(uuid.uuid5(NAMESPACE, f"langchain:{doc.id or source}")) if (
        doc.id or source) else str(uuid.uuid5(NAMESPACE, f"langchain-text:{doc.page_content}"))
    return Chunk(
        id=make_chunk_id(document_id, 0, doc.page_content),
        document_id=document_id,
        kind="text",
        text=doc.page_content,
        source=source,
        image=_image_ref(meta),
        metadata=meta,
    )


def document_to_hit(doc: Document) -> Hit:
    """A ``Hit`` for a Document (its ``score`` and ``scores_by_stage`` when it has them)."""
    meta = doc.metadata or {}
    score = meta.get("score")
    stages = meta.get("scores_by_stage")
    return Hit(
        chunk=document_to_chunk(doc),
        score=float(score) if isinstance(score, (int, float)) else 0.0,
        scores_by_stage=dict(stages) if isinstance(stages, Mapping) else {},
    )
