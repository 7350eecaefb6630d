"""The HTML renderers :mod:`ragnest.display` registers: hits (with the score at every
stage), answers (with cited regions), chunks, vectors and ingest reports. All text is
escaped; styles are inline; there is no JavaScript.

    >>> from ragnest.display.html import stage_order
    >>> stage_order(["final", "dense", "bm25", "dense-coarse"])
    ['dense-coarse', 'dense', 'bm25', 'final']
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ragnest.display.thumbnails import Box, figure, page_ref
from ragnest.types import (
    Answer,
    Chunk,
    Citation,
    EmbeddedChunk,
    Hit,
    ImageRef,
    SparseVector,
)

__all__ = [
    "MAX_ROWS",
    "answer_html",
    "chunk_html",
    "chunks_html",
    "citation_html",
    "embedded_chunk_html",
    "embedded_html",
    "hit_html",
    "hits_html",
    "ingest_report_html",
    "stage_order",
]

#: Rows a table shows (and thumbnails it renders) before it says how many more there are.
MAX_ROWS = 20
_BOX = "#e4572e"
_KIND_COLOURS = {"text": "#2e86de", "image": "#10ac84", "table": "#8e44ad"}
_FONT = "font-family:system-ui,sans-serif;font-size:13px;line-height:1.35"
_CELL = "padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top"
_NUM = "padding:3px 8px;border-bottom:1px solid #ddd;text-align:right;vertical-align:top;" \
       "font-variant-numeric:tabular-nums"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _e(value)
    return f"{value:.4g}" if abs(value) < 1e-3 and value else f"{value:.3f}"


def _name(source: str, fallback: str = "") -> str:
    return Path(source).name if source else fallback


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def stage_order(names: Iterable[str]) -> list[str]:
    """Stage names in funnel order: each route's ladder levels, then the route's own
    score, then ``final`` (fusion) and ``rerank``.

    >>> stage_order(["final", "dense", "bm25", "dense-coarse", "dense-fine", "rerank"])
    ['dense-coarse', 'dense-fine', 'dense', 'bm25', 'final', 'rerank']
    """
    names = list(dict.fromkeys(names))
    tail = [n for n in ("final", "rerank") if n in names]
    rest = [n for n in names if n not in tail]
    routes = [n for n in rest if not any(n.startswith(r + "-") for r in rest if r != n)]
    out: list[str] = []
    for route in routes:
        out += [n for n in rest if n.startswith(route + "-") and n not in out] + [route]
    return out + [n for n in rest if n not in out] + tail


def _where(chunk: Chunk) -> str:
    name = _name(chunk.source, chunk.document_id)
    return f"{name} p. {chunk.page}" if chunk.page else name


def _table(head: Sequence[str], rows: Sequence[str], extra: int = 0) -> str:
    ths = "".join(f'<th style="{_CELL};font-weight:600">{h}</th>' for h in head)
    more = (f'<tr><td colspan="{len(head)}" style="{_CELL};color:#666">\u2026 and {extra} '
            "more</td></tr>") if extra > 0 else ""
    return (f'<table style="border-collapse:collapse;margin:4px 0">'
            f"<thead><tr>{ths}</tr></thead><tbody>{''.join(rows)}{more}</tbody></table>")


def _text_cell(text: str, limit: int = 300) -> str:
    return (f'<td style="{_CELL};max-width:460px;white-space:pre-wrap;font-size:12px">'
            f"{_e(_clip(text, limit))}</td>")


def _chunk_text(chunk: Chunk) -> str:
    return chunk.text or "\n".join(s.text for s in chunk.segments if s.text)


# ------------------------------------------------------------------ hits
def hits_html(hits: Sequence[Hit], title: str | None = None) -> str:
    """A table of hits, best first: thumbnail with the hit's region, where it comes from,
    the score at every stage, and the start of its text."""
    query, timings = getattr(hits, "query", None), getattr(hits, "timings", None) or {}
    hits = list(hits)
    stages = stage_order(n for h in hits for n in h.scores_by_stage)
    head = ["#", "preview", "source", "score", *(_e(s) for s in stages), "text"]
    rows = []
    for rank, hit in enumerate(hits[:MAX_ROWS], 1):
        chunk = hit.chunk
        fig = figure(page_ref(chunk), chunk, 90, _chunk_box(chunk), alt=_where(chunk))
        cells = "".join(
            f'<td style="{_NUM}">{_num(hit.scores_by_stage[s])}</td>'
            if s in hit.scores_by_stage else f'<td style="{_NUM};color:#aaa">-</td>'
            for s in stages
        )
        rows.append(
            f'<tr><td style="{_NUM}">{rank}</td><td style="{_CELL}">{fig}</td>'
            f'<td style="{_CELL}" title="{_e(chunk.source)}">{_e(_where(chunk))}'
            f'<br/><span style="color:#888">{_e(chunk.kind)}</span></td>'
            f'<td style="{_NUM};font-weight:600">{_num(hit.score)}</td>{cells}'
            f"{_text_cell(_chunk_text(chunk))}</tr>"
        )
    caption = title if title is not None else (
        f"{len(hits)} hits for \u201c{query.text}\u201d" if query is not None and query.text
        else f"{len(hits)} hits")
    return (f'<div style="{_FONT}"><div style="font-weight:600">{_e(caption)}</div>'
            f"{_timings(timings)}{_table(head, rows, len(hits) - MAX_ROWS)}</div>")


def _chunk_box(chunk: Chunk) -> list[Box]:
    return [(chunk.bbox, _BOX, 2)] if chunk.bbox else []


def hit_html(hit: Hit) -> str:
    """One hit as a card: thumbnail with its region, the score at every stage, its text."""
    chunk = hit.chunk
    stages = stage_order(hit.scores_by_stage)
    scores = "".join(
        f'<tr><td style="{_CELL}">{_e(s)}</td><td style="{_NUM}">'
        f"{_num(hit.scores_by_stage[s])}</td></tr>" for s in stages
    )
    fig = figure(page_ref(chunk), chunk, 200, _chunk_box(chunk), alt=_where(chunk))
    return (
        f'<div style="{_FONT};display:flex;gap:12px;align-items:flex-start">{fig}<div>'
        f'<div style="font-weight:600" title="{_e(chunk.source)}">{_e(_where(chunk))}'
        f" &middot; score {_num(hit.score)}</div>"
        f'<table style="border-collapse:collapse;margin:4px 0">{scores}</table>'
        f'<div style="white-space:pre-wrap;font-size:12px;max-width:520px">'
        f"{_e(_clip(_chunk_text(chunk), 600))}</div></div></div>"
    )


def _timings(timings: Mapping[str, float]) -> str:
    if not timings:
        return ""
    parts = " &middot; ".join(f"{_e(k)} {v * 1000:.1f} ms" for k, v in timings.items()
                              if isinstance(v, (int, float)))
    return f'<div style="color:#666;font-size:12px">{parts}</div>'


# ------------------------------------------------------------------ answers
_CITE = re.compile(r"\[(P?\d+)\]")


def citation_html(citation: Citation, chunk: Chunk | None = None) -> str:
    """A citation as a card: the page thumbnail with the cited region drawn over it, the
    label and the quote. ``chunk`` (the cited chunk) gives the page size and image."""
    ref = page_ref(chunk) if chunk is not None else None
    if ref is None and citation.page and citation.source.lower().endswith(".pdf"):
        ref = ImageRef(source=citation.source, page=citation.page)
    boxes = [(citation.bbox, _BOX, 3)] if citation.bbox else []
    fig = figure(ref, chunk, 160, boxes, alt=citation.label())
    quote = (f'<div style="font-size:12px;color:#444;white-space:pre-wrap">'
             f"\u201c{_e(_clip(citation.quote, 200))}\u201d</div>") if citation.quote else ""
    return (f'<div style="{_FONT};width:170px;display:inline-block;vertical-align:top;'
            f'margin:0 8px 8px 0">{fig}<div style="font-weight:600" '
            f'title="{_e(citation.source)}">{_e(citation.label())}</div>{quote}</div>')


def answer_html(answer: Answer) -> str:
    """The answer text (citation marks in bold), its citations with their regions drawn on
    the page thumbnails, time per step, and the hits it was built from (folded)."""
    text = _CITE.sub(r"<b>[\1]</b>", _e(answer.text))
    status = "" if answer.found else (
        '<div style="color:#a40;font-size:12px">not found in the indexed documents</div>')
    chunks = {h.chunk.id: h.chunk for h in answer.hits}
    tags = list(dict.fromkeys(_CITE.findall(answer.text)))  # in order of first use
    if len(tags) != len(answer.citations):
        tags = [str(i) for i in range(1, len(answer.citations) + 1)]
    cards = "".join(
        f'<div style="display:inline-block;vertical-align:top">'
        f'<div style="color:#666;font-size:11px">[{_e(tag)}]</div>'
        f"{citation_html(c, chunks.get(c.chunk_id))}</div>"
        for tag, c in zip(tags, answer.citations)
    )
    hits = ""
    if answer.hits:
        hits = (f'<details style="margin-top:4px"><summary>{len(answer.hits)} hits, with the '
                f"score at each stage</summary>{hits_html(answer.hits, title='')}</details>")
    usage = ", ".join(f"{_e(k)} {_e(v)}" for k, v in answer.usage.items())
    usage = f'<div style="color:#888;font-size:11px">{usage}</div>' if usage else ""
    return (f'<div style="{_FONT}"><div style="white-space:pre-wrap;font-size:14px;'
            f'margin-bottom:6px">{text}</div>{status}<div>{cards}</div>'
            f"{_timings(answer.timings)}{usage}{hits}</div>")


# ------------------------------------------------------------------ chunks and vectors
def chunk_html(chunk: Chunk) -> str:
    """One chunk as a card: its page with the chunk's region and its segments' regions
    (blue text, green images, purple tables), kind, page and text."""
    boxes = [(s.bbox, _KIND_COLOURS.get(s.kind, "#888"), 1) for s in chunk.segments
             if s.bbox and (s.page is None or s.page == chunk.page)]
    fig = figure(page_ref(chunk), chunk, 220, _chunk_box(chunk) + boxes, alt=_where(chunk))
    segments = f", {len(chunk.segments)} segments" if chunk.segments else ""
    return (
        f'<div style="{_FONT};display:flex;gap:12px;align-items:flex-start">{fig}<div>'
        f'<div style="font-weight:600" title="{_e(chunk.source)}">{_e(_where(chunk))}</div>'
        f'<div style="color:#666;font-size:12px">{_e(chunk.kind)} chunk{_e(segments)} '
        f"&middot; id {_e(chunk.id[:8])}</div>"
        f'<div style="white-space:pre-wrap;font-size:12px;max-width:520px">'
        f"{_e(_clip(_chunk_text(chunk), 800))}</div></div></div>"
    )


def chunks_html(chunks: Sequence[Chunk]) -> str:
    """A table of chunks (a parsed document): thumbnail with the region, kind, page,
    segments by kind, and the start of the text."""
    source = getattr(chunks, "source", None)
    chunks = list(chunks)
    rows = []
    for i, chunk in enumerate(chunks[:MAX_ROWS]):
        kinds: dict[str, int] = {}
        for s in chunk.segments:
            kinds[s.kind] = kinds.get(s.kind, 0) + 1
        fig = figure(page_ref(chunk), chunk, 90, _chunk_box(chunk), alt=_where(chunk))
        rows.append(
            f'<tr><td style="{_NUM}">{i}</td><td style="{_CELL}">{fig}</td>'
            f'<td style="{_CELL}">{_e(chunk.kind)}</td><td style="{_NUM}">{_e(chunk.page or "")}'
            f'</td><td style="{_CELL}">{_e(", ".join(f"{n} {k}" for k, n in kinds.items()))}'
            f"</td>{_text_cell(_chunk_text(chunk))}</tr>"
        )
    name = _name(source.display_name) if source is not None else ""
    caption = f"{len(chunks)} chunks" + (f" of {name}" if name else "")
    return (f'<div style="{_FONT}"><div style="font-weight:600">{_e(caption)}</div>'
            f"{_table(['#', 'preview', 'kind', 'page', 'segments', 'text'], rows, len(chunks) - MAX_ROWS)}"
            "</div>")


def _vector_shape(value: Any) -> tuple[str, int]:
    if isinstance(value, SparseVector):
        return f"sparse, {len(value.indices)} terms", len(value.indices) * 8
    shape = getattr(value, "shape", ())
    kind = "dense" if len(shape) == 1 else "multi"
    return f"{kind} {' x '.join(str(d) for d in shape)}", int(getattr(value, "nbytes", 0))


def embedded_html(points: Sequence[EmbeddedChunk]) -> str:
    """What embedding made: per store vector name, its shape on the first chunk and the
    bytes over all chunks (the cost of each ladder level)."""
    points = list(points)
    names: dict[str, list[Any]] = {}
    for p in points:
        for name, vec in p.vectors.items():
            names.setdefault(name, []).append(vec)
    rows = []
    for name, vecs in names.items():
        shape, _ = _vector_shape(vecs[0])
        total = sum(_vector_shape(v)[1] for v in vecs)
        rows.append(f'<tr><td style="{_CELL}">{_e(name)}</td><td style="{_CELL}">{_e(shape)}'
                    f'</td><td style="{_NUM}">{len(vecs)}</td><td style="{_NUM}">'
                    f"{total / 1024:.1f} KiB</td></tr>")
    caption = f"{len(points)} chunks embedded into {len(names)} named vectors"
    head = ["vector", "first chunk", "chunks", "memory"]
    return (f'<div style="{_FONT}"><div style="font-weight:600">{_e(caption)}</div>'
            f"{_table(head, rows)}</div>")


def embedded_chunk_html(point: EmbeddedChunk) -> str:
    """One embedded chunk: its vectors, then the chunk."""
    return embedded_html([point]) + chunk_html(point.chunk)


# ------------------------------------------------------------------ ingest reports
def ingest_report_html(report: Any) -> str:
    """An ingest report: totals, one row per document (first-page thumbnail for PDFs,
    status, pages, chunks added / unchanged / removed) and the skipped files with why."""
    d = report.to_dict()
    summary = (f"{d['files']} files, {d['pages']} pages: {d['chunks_added']} chunks added, "
               f"{d['chunks_unchanged']} unchanged, {d['chunks_removed']} removed "
               f"in {d['seconds']:.2f} s")
    error = (f'<div style="color:#b00;font-weight:600">stopped: {_e(report.error)}</div>'
             if report.error else "")
    rows = []
    for doc in report.documents[:MAX_ROWS]:
        ref = ImageRef(source=doc.path, page=1) if doc.path.lower().endswith(".pdf") else None
        rows.append(
            f'<tr><td style="{_CELL}">{figure(ref, None, 60, alt=_name(doc.path))}</td>'
            f'<td style="{_CELL}" title="{_e(doc.path)}">{_e(_name(doc.path))}</td>'
            f'<td style="{_CELL}">{_e(doc.status)}</td><td style="{_NUM}">{doc.pages}</td>'
            f'<td style="{_NUM}">{doc.added}</td><td style="{_NUM}">{doc.unchanged}</td>'
            f'<td style="{_NUM}">{doc.removed}</td></tr>'
        )
    head = ["first page", "document", "status", "pages", "added", "unchanged", "removed"]
    table = _table(head, rows, len(report.documents) - MAX_ROWS) if rows else ""
    skipped = ""
    if report.skipped:
        srows = [f'<tr><td style="{_CELL}" title="{_e(s.path)}">{_e(_name(s.path))}</td>'
                 f'<td style="{_CELL}">{_e(s.reason)}</td></tr>' for s in report.skipped[:MAX_ROWS]]
        skipped = (f'<div style="font-weight:600;margin-top:6px">{len(report.skipped)} '
                   f"skipped</div>{_table(['file', 'why'], srows, len(report.skipped) - MAX_ROWS)}")
    return (f'<div style="{_FONT}"><div style="font-weight:600">{_e(summary)}</div>'
            f"{error}{table}{skipped}</div>")
