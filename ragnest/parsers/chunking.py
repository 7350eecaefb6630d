"""Group ordered segments (text, images, tables) into ``interleaved`` chunks.

Every parser that produces interleaved chunks (PDF in ``interleaved`` mode, Office,
HTML, e-mail) hands its segments, in reading order, to :func:`chunk_segments`. The
rules are the same for every format:

* a heading starts a new chunk (unless the current chunk holds only headings);
* a chunk closes before it would exceed ``max_chars`` of text; the next chunk starts
  with the last ``overlap`` characters of text of the previous one (an overlap
  segment, role ``"overlap"``) so a sentence cut at the boundary is found from both;
* a single text segment longer than ``max_chars`` is cut at sentence (else word)
  boundaries;
* an image or table is never separated from the caption that follows or precedes it;
* chunks never span pages, so each one cites exactly one page and a region of it.

::

    >>> from ragnest.types import Segment
    >>> segs = [Segment(kind="text", text="Cleaning", role="heading"),
    ...         Segment(kind="text", text="Rinse the group head daily."),
    ...         Segment(kind="image", text="", role="figure"),
    ...         Segment(kind="text", text="Figure 2: the group head", role="caption"),
    ...         Segment(kind="text", text="Descaling", role="heading"),
    ...         Segment(kind="text", text="Descale every 8 weeks.")]
    >>> chunks = chunk_segments(segs, document_id="doc", source="manual.pdf", page=4)
    >>> [c.text for c in chunks]
    ['Cleaning\\n\\nRinse the group head daily.\\n\\nFigure 2: the group head', 'Descaling\\n\\nDescale every 8 weeks.']
    >>> [s.kind for s in chunks[0].segments]
    ['text', 'text', 'image', 'text']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ragnest.media.geometry import union_bbox
from ragnest.types import Chunk, ImageRef, Segment, make_chunk_id

__all__ = ["chunk_segments", "segments_text", "union_bbox", "split_text"]

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_BREAKING_ROLES = ("heading", "title")


def segments_text(segments: Sequence[Segment]) -> str:
    """The text an embedder reads for ``segments``: every non-empty text, blank-line separated.

    >>> segments_text([Segment(kind="text", text="a"), Segment(kind="image"),
    ...                Segment(kind="table", text="| x |")])
    'a\\n\\n| x |'
    """
    return "\n\n".join(s.text.strip() for s in segments if s.text and s.text.strip())


def split_text(text: str, max_chars: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``max_chars`` at sentence, else word, boundaries.

    >>> split_text("One two. Three four. Five.", 12)
    ['One two.', 'Three four.', 'Five.']
    """
    if max_chars <= 0:
        raise ValueError("max_chars must be positive")
    text = text.strip()
    if len(text) <= max_chars:
        return [text] if text else []
    pieces: list[str] = []
    current = ""
    for unit in _units(text, max_chars):
        candidate = f"{current} {unit}" if current else unit
        if len(candidate) <= max_chars:
            current = candidate
        else:
            if current:
                pieces.append(current)
            current = unit
    if current:
        pieces.append(current)
    return pieces


def _units(text: str, max_chars: int) -> list[str]:
    """Sentences, with over-long sentences cut into words (and over-long words cut hard)."""
    out: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        if len(sentence) <= max_chars:
            out.append(sentence)
            continue
        for word in sentence.split():
            while len(word) > max_chars:
                out.append(word[:max_chars])
                word = word[max_chars:]
            if word:
                out.append(word)
    return [u for u in out if u]


def _tail(segments: Sequence[Segment], overlap: int) -> str:
    """The last ``overlap`` characters of text in ``segments``, starting at a word."""
    text = segments_text([s for s in segments if s.kind == "text" and s.role != "overlap"])
    if overlap <= 0 or not text:
        return ""
    if len(text) <= overlap:
        return text
    cut = text[-overlap:]
    space = cut.find(" ")
    return cut[space + 1 :] if 0 <= space < len(cut) - 1 else cut


def _groups(segments: Sequence[Segment]) -> list[list[Segment]]:
    """Bind captions to the image or table they describe (either side of it)."""
    groups: list[list[Segment]] = []
    for seg in segments:
        if seg.role == "caption" and groups:
            prev = groups[-1]
            if prev[-1].kind in ("image", "table"):
                prev.append(seg)
                continue
        if seg.kind in ("image", "table") and groups:
            prev = groups[-1]
            if len(prev) == 1 and prev[0].role == "caption":
                prev.append(seg)
                continue
        groups.append([seg])
    return groups


def _size(group: Sequence[Segment]) -> int:
    return sum(len(s.text) for s in group)


def chunk_segments(
    segments: Sequence[Segment],
    *,
    document_id: str,
    source: str,
    page: int | None = None,
    max_chars: int = 1500,
    overlap: int = 200,
    first_position: int = 0,
    image: ImageRef | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> list[Chunk]:
    """Turn the ordered ``segments`` of one page (or one page-less unit) into chunks.

    ``first_position`` numbers the chunks (positions feed the chunk ids, so they must
    be unique within the document). When ``image`` is a page reference, each chunk
    gets that reference clipped to the chunk's region, so a reranker or generator
    can look at exactly that part of the page. ``metadata`` is copied onto every chunk.
    """
    if max_chars <= 0:
        raise ValueError("max_chars must be positive")
    if not 0 <= overlap < max_chars:
        raise ValueError("overlap must be >= 0 and smaller than max_chars")
    # Over-long text segments are cut first, so every group fits in one chunk.
    pieces: list[Segment] = []
    for seg in segments:
        if seg.kind == "text" and len(seg.text) > max_chars:
            for part in split_text(seg.text, max_chars - overlap if overlap else max_chars):
                pieces.append(Segment(kind="text", text=part, bbox=seg.bbox, page=seg.page,
                                      role=seg.role))
        elif seg.kind != "text" or seg.text.strip():
            pieces.append(seg)

    bodies: list[list[Segment]] = []
    current: list[Segment] = []
    for group in _groups(pieces):
        starts_section = group[0].role in _BREAKING_ROLES
        has_body = any(s.role not in (*_BREAKING_ROLES, "overlap") for s in current)
        too_big = _size(current) + _size(group) > max_chars and has_body
        if current and has_body and (starts_section or too_big):
            bodies.append(current)
            carry = "" if starts_section else _tail(current, overlap)
            current = [Segment(kind="text", text=carry, page=page, role="overlap")] if carry else []
        current.extend(group)
    if current and any(s.role != "overlap" for s in current):
        bodies.append(current)

    chunks: list[Chunk] = []
    meta = dict(metadata or {})
    for offset, body in enumerate(bodies):
        text = segments_text(body)
        bbox = union_bbox([s.bbox for s in body if s.role != "overlap"])
        position = first_position + offset
        ref = image
        if image is not None and image.page is not None and bbox is not None:
            ref = ImageRef(source=image.source, page=image.page, clip=bbox, dpi=image.dpi,
                           blob=image.blob)
        digest_parts = [text, str(page)]
        digest_parts += [repr(s.image.to_dict()) for s in body if s.image is not None]
        chunks.append(
            Chunk(
                id=make_chunk_id(document_id, position, "|".join(digest_parts)),
                document_id=document_id,
                kind="interleaved",
                text=text,
                source=source,
                segments=tuple(body),
                page=page,
                bbox=bbox,
                image=ref,
                metadata={**meta, "position": position},
            )
        )
    return chunks
