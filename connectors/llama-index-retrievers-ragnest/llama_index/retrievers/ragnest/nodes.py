"""ragnest chunks and hits as LlamaIndex nodes, and back.

A chunk becomes a :class:`~llama_index.core.schema.TextNode`, or an
:class:`~llama_index.core.schema.ImageNode` when it has a page or figure image (the
image rendered as a base64 JPEG, only when asked for). The node id is the chunk id;
its source relationship is the document; its metadata says where the chunk is::

    file_name, file_path, page_label   what LlamaIndex file readers set (the LLM sees
                                       file_name and page_label)
    page, pages, bbox                  1-based page and the region in PDF points
    kind, chunk_id, document_id        the ragnest chunk
    image_ref                          how ragnest renders the chunk's image again
    scores_by_stage                    (hits only) the score at every stage

    >>> from ragnest.types import Chunk, Hit
    >>> from llama_index.retrievers.ragnest.nodes import hit_to_node, node_to_hit
    >>> chunk = Chunk(id="c1", document_id="d1", kind="text", text="Descale every 8 weeks.",
    ...               source="/docs/manual.pdf", page=5, bbox=(64.0, 272.0, 521.0, 328.0))
    >>> node = hit_to_node(Hit(chunk=chunk, score=0.9, scores_by_stage={"bm25": 2.5}))
    >>> node.score, node.node.metadata["page"], node.node.metadata["bbox"]
    (0.9, 5, [64.0, 272.0, 521.0, 328.0])
    >>> node_to_hit(node).chunk.bbox
    (64.0, 272.0, 521.0, 328.0)
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from llama_index.core.schema import (
    BaseNode,
    ImageNode,
    MetadataMode,
    NodeRelationship,
    NodeWithScore,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from ragnest.media.encode import encode
from ragnest.media.render import Renderer
from ragnest.multimodal import chunk_image, chunk_text
from ragnest.types import Chunk, Hit, ImageRef, Query

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageMode",
    "LLM_METADATA_KEYS",
    "chunk_metadata",
    "chunk_to_node",
    "hit_to_node",
    "image_bytes",
    "node_to_hit",
    "to_filters",
    "to_query",
]

logger = logging.getLogger(__name__)

#: ``"base64"``: image chunks become ImageNodes carrying a JPEG; ``"none"``: TextNodes only.
ImageMode = Literal["base64", "none"]
#: Metadata the LLM and the embedding model see; everything else is excluded from both.
LLM_METADATA_KEYS = ("file_name", "page_label", "title")
#: Pixel cap of the images put into nodes (about 1000 x 1000).
DEFAULT_MAX_PIXELS = 1_000_000

_RAGNEST_KEYS = {"file_name", "file_path", "page_label", "page", "pages", "bbox", "kind",
                 "chunk_id", "document_id", "image_ref", "scores_by_stage"}


def chunk_metadata(chunk: Chunk) -> dict[str, Any]:
    """The node metadata of a chunk (see the module docs); the chunk's own metadata
    (``title``, ``page_count``, ``width``, ...) is kept under its own keys."""
    meta: dict[str, Any] = {
        "file_name": Path(chunk.source).name if chunk.source else "",
        "file_path": chunk.source,
        "kind": chunk.kind,
        "chunk_id": chunk.id,
        "document_id": chunk.document_id,
    }
    if chunk.page is not None:
        meta["page"] = chunk.page
        meta["page_label"] = str(chunk.page)
    if chunk.pages:
        meta["pages"] = list(chunk.pages)
    if chunk.bbox is not None:
        meta["bbox"] = [float(v) for v in chunk.bbox]
    image = chunk_image(chunk, region=True)
    if image is not None:
        meta["image_ref"] = image.to_dict()
    for key, value in chunk.metadata.items():
        meta.setdefault(key, value)
    return meta


def image_bytes(ref: ImageRef, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                renderer: Renderer | None = None) -> bytes:
    """JPEG bytes of a page, region or image (rendered by ragnest)."""
    return encode(ref, "jpeg", max_pixels=max_pixels, renderer=renderer)


def chunk_to_node(
    chunk: Chunk,
    *,
    images: ImageMode = "base64",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    renderer: Renderer | None = None,
) -> TextNode:
    """A TextNode for the chunk, or an ImageNode (text + base64 JPEG) when it has an
    image and ``images="base64"``. An image that cannot be rendered (a moved file)
    leaves a TextNode and a warning."""
    meta = chunk_metadata(chunk)
    shown = [k for k in meta if k not in LLM_METADATA_KEYS]
    kwargs: dict[str, Any] = {
        "id_": chunk.id,
        "text": chunk_text(chunk),
        "metadata": meta,
        "excluded_llm_metadata_keys": shown,
        "excluded_embed_metadata_keys": shown,
        "relationships": {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=chunk.document_id)},
    }
    image = chunk_image(chunk, region=True)
    if images == "base64" and image is not None:
        try:
            data = image_bytes(image, max_pixels=max_pixels, renderer=renderer)
        except Exception as err:
            logger.warning("%s p.%s: no image for chunk %s (%s); giving a TextNode",
                           chunk.source, chunk.page, chunk.id, err)
        else:
            return ImageNode(image=base64.b64encode(data).decode("ascii"),
                             image_mimetype="image/jpeg", **kwargs)
    elif images not in ("base64", "none"):
        raise ValueError(f"images must be 'base64' or 'none', not {images!r}")
    return TextNode(**kwargs)


def hit_to_node(hit: Hit, **kwargs: Any) -> NodeWithScore:
    """A NodeWithScore for a hit: :func:`chunk_to_node` (``kwargs`` go there) with the
    hit's score, and ``scores_by_stage`` in the metadata."""
    node = chunk_to_node(hit.chunk, **kwargs)
    node.metadata["scores_by_stage"] = {k: float(v) for k, v in hit.scores_by_stage.items()}
    node.excluded_llm_metadata_keys.append("scores_by_stage")
    node.excluded_embed_metadata_keys.append("scores_by_stage")
    return NodeWithScore(node=node, score=float(hit.score))


def _bbox(value: Any) -> tuple[float, float, float, float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 4:
        return tuple(float(v) for v in value)  # type: ignore[return-value]
    return None


def node_to_hit(node_with_score: NodeWithScore) -> Hit:
    """A ragnest hit for any node: exact for nodes made by :func:`chunk_to_node`; for
    other nodes a text chunk (an image path becomes the chunk's image), so a ragnest
    reranker can score nodes from any LlamaIndex retriever."""
    node: BaseNode = node_with_score.node
    meta = dict(node.metadata)
    image = ImageRef.from_dict(meta.get("image_ref"))
    if image is None and isinstance(node, ImageNode) and node.image_path:
        image = ImageRef(blob=str(node.image_path))
    kind = meta.get("kind")
    if kind not in ("page", "interleaved", "text", "image"):
        kind = "image" if image is not None and not node.get_content().strip() else "text"
    page = meta.get("page")
    if page is None and str(meta.get("page_label", "")).isdigit():
        page = int(meta["page_label"])
    own = {k: v for k, v in meta.items() if k not in _RAGNEST_KEYS}
    chunk = Chunk(
        id=str(meta.get("chunk_id") or node.node_id),
        document_id=str(meta.get("document_id") or node.ref_doc_id or node.node_id),
        kind=kind,
        text=node.get_content(metadata_mode=MetadataMode.NONE),
        source=str(meta.get("file_path") or meta.get("file_name") or ""),
        page=int(page) if isinstance(page, (int, str)) and str(page).isdigit() else None,
        pages=tuple(meta.get("pages") or ()),
        bbox=_bbox(meta.get("bbox")),
        image=image,
        metadata=own,
    )
    stages = meta.get("scores_by_stage")
    scores = dict(stages) if isinstance(stages, Mapping) else {}
    score = node_with_score.score
    return Hit(chunk=chunk, score=float(score) if score is not None else 0.0,
               scores_by_stage=scores)


def to_query(query_bundle: QueryBundle | str, filters: Mapping[str, Any] | None = None) -> Query:
    """A ragnest query for a LlamaIndex one: its text, and its ``image_path`` as an
    image query (empty text with an image means an image-only query)."""
    if isinstance(query_bundle, str):
        query_bundle = QueryBundle(query_str=query_bundle)
    image = ImageRef(blob=str(query_bundle.image_path)) if query_bundle.image_path else None
    text = query_bundle.query_str or None
    if text is None and image is None:
        raise ValueError("the query is empty: give query_str text or an image_path")
    return Query(text=text, image=image, filters=dict(filters) if filters else None)


_RANGE = {FilterOperator.GT: "gt", FilterOperator.GTE: "gte",
          FilterOperator.LT: "lt", FilterOperator.LTE: "lte"}
#: Node metadata keys that name a different ragnest payload key.
_PAYLOAD_KEYS = {"file_path": "source"}


def to_filters(filters: MetadataFilters | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """ragnest payload filters (``{"page": {"gte": 2}, "source": "/docs/a.pdf"}``) from
    LlamaIndex ``MetadataFilters`` combined with AND: ``==``, ``in`` and ranges
    (``>``, ``>=``, ``<``, ``<=``). ``file_path`` filters ragnest's ``source``; other
    keys are ragnest payload paths (``page``, ``kind``, ``document_id``,
    ``metadata.title``). A mapping is already in ragnest's form and passes through."""
    if filters is None or isinstance(filters, Mapping):
        return dict(filters) if filters else None
    if filters.condition not in (None, FilterCondition.AND):
        raise ValueError(f"ragnest filters combine conditions with AND only, not "
                         f"{filters.condition.value!r}")
    out: dict[str, Any] = {}
    for f in filters.filters:
        if not isinstance(f, MetadataFilter):
            raise ValueError("nested MetadataFilters are not supported: flatten them (AND)")
        key = _PAYLOAD_KEYS.get(f.key, f.key)
        if f.operator == FilterOperator.EQ:
            out[key] = f.value
        elif f.operator == FilterOperator.IN:
            out[key] = list(f.value) if isinstance(f.value, list) else [f.value]
        elif f.operator in _RANGE:
            bounds = out.setdefault(key, {})
            if not isinstance(bounds, dict):
                raise ValueError(f"filter {f.key!r}: both a value and a range given")
            bounds[_RANGE[f.operator]] = f.value
        else:
            raise ValueError(f"filter {f.key!r}: operator {f.operator.value!r} is not supported "
                             "by ragnest (use ==, in, >, >=, <, <=)")
    return out or None
