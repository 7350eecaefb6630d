"""HTML for notebooks: hits, answers, chunks, vectors and ingest reports, with page thumbnails.

Importing ``ragnest`` registers these renderers (:func:`ragnest.types.register_html`), so
a notebook cell that ends with a hit list, an answer or an ingest report shows:

* page thumbnails as small JPEG ``data:`` images (rendered on first display, cached per
  page), with the hit's or citation's region drawn over them as a CSS box;
* the score every stage gave each hit (ladder levels, routes, fusion, rerank);
* all document text escaped; no JavaScript (notebook viewers strip it), inline styles only.

The plain ``repr`` stays what it was. Rendering happens on display, never at import::

    >>> import ragnest
    >>> from ragnest.types import Chunk, Hit
    >>> chunk = Chunk(id="c1", document_id="d1", kind="page", page=5,
    ...               source="examples/docs/nimbus3_handbook.pdf", text="Descale <every> 8 weeks",
    ...               metadata={"width": 595.0, "height": 842.0})
    >>> html = Hit(chunk=chunk, score=2.0, scores_by_stage={"bm25": 2.5, "final": 2.0})._repr_html_()
    >>> "data:image/jpeg;base64," in html, "&lt;every&gt;" in html, "<script" in html
    (True, True, False)

A thumbnail that cannot be rendered (a moved file) becomes a note, never an error.
:mod:`~ragnest.display.thumbnails` renders the page images, :mod:`~ragnest.display.html`
the markup; ``register_html(Hit, my_renderer)`` replaces a renderer.
"""

from __future__ import annotations

from ragnest.display.html import (
    MAX_ROWS,
    answer_html,
    chunk_html,
    chunks_html,
    citation_html,
    embedded_chunk_html,
    embedded_html,
    hit_html,
    hits_html,
    ingest_report_html,
    stage_order,
)
from ragnest.display.thumbnails import (
    THUMB_SIDE,
    Thumbnail,
    clear_thumbnails,
    page_ref,
    thumbnail,
)
from ragnest.types import (
    Answer,
    Chunk,
    Chunks,
    Citation,
    EmbeddedChunk,
    EmbeddedChunks,
    Hit,
    Hits,
    register_html,
)

__all__ = [
    "MAX_ROWS",
    "THUMB_SIDE",
    "Thumbnail",
    "answer_html",
    "chunk_html",
    "chunks_html",
    "citation_html",
    "clear_thumbnails",
    "embedded_chunk_html",
    "embedded_html",
    "hit_html",
    "hits_html",
    "ingest_report_html",
    "page_ref",
    "stage_order",
    "thumbnail",
]

register_html(Hit, hit_html)
register_html(Hits, hits_html)
register_html(Chunk, chunk_html)
register_html(Chunks, chunks_html)
register_html(EmbeddedChunk, embedded_chunk_html)
register_html(EmbeddedChunks, embedded_html)
register_html(Citation, citation_html)
register_html(Answer, answer_html)
register_html("ragnest.ingest.report.IngestReport", ingest_report_html)
