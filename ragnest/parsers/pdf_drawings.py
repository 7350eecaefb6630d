"""A PDF page's vector drawings: ruled tables, figure regions and screenshot regions.

The page's paths are read once, in PyMuPDF's cheap C form (``page.get_cdrawings()``:
tuples, no Python Rect/Point objects); the table finder runs only where
:func:`~ragnest.parsers.pdf_tables.table_region` sees rules; drawings a few points
apart are clustered (:func:`~ragnest.parsers.layout.cluster_rects`), and the clusters
big enough to be illustrations become figure boxes. Every cluster a user could
screenshot (at least ``min_side`` points each way), and the parts of a joined cluster
set apart at a finer gap, are also returned, so the visual fingerprints cover drawings
the layout does not call figures, or calls one figure. Pages without drawings
pay nothing::

    >>> from ragnest.parsers.pdf_drawings import page_drawings  # used by the PDF parser
"""

from __future__ import annotations

from typing import Any

from ragnest.media.mupdf import pymupdf
from ragnest.parsers import layout
from ragnest.parsers.layout import Box, Rect
from ragnest.parsers.pdf_tables import find_tables, table_region

__all__ = ["FIGURE_GAP", "FINE_GAP", "page_drawings", "path_boxes"]

#: Drawings closer than this (points) belong to one figure: the arrows of a vector
#: field, the bars and labels of a chart are separate paths a few points apart.
FIGURE_GAP = 8.0
#: The finer gap that sets apart the drawings of a joined cluster (for screenshots).
FINE_GAP = 3.0


def path_boxes(paths: list[dict[str, Any]]) -> list[Rect]:
    """The normalised bounding boxes of ``get_cdrawings()`` paths."""
    out = []
    for path in paths:
        a, b, c, d = path["rect"]
        out.append((min(a, c), min(b, d), max(a, c), max(b, d)))
    return out


def page_drawings(page: pymupdf.Page, page_rect: Rect, *, tables: bool = True,
                  figures: bool = True, table_strategy: str = "lines",
                  min_side: float = 24.0) -> tuple[list[Box], list[Box], list[Rect]]:
    """``(tables, figures, clusters)`` of one page: table boxes (Markdown), figure boxes
    (before their labels are absorbed) and every drawing cluster at least ``min_side``
    points each way (the regions a screenshot may show)."""
    if not (tables or figures):
        return [], [], []
    paths = page.get_cdrawings()
    if not paths:
        return [], [], []
    table_boxes: list[Box] = []
    if tables:
        region = table_region(paths)
        if region is not None:
            table_boxes = find_tables(page, table_strategy, clip=region, paths=paths)
    if not figures:
        return table_boxes, [], []
    drawn = layout.drawing_rects(path_boxes(paths), page=page_rect, gap=FIGURE_GAP)
    clusters = layout.cluster_rects(drawn, page=page_rect, gap=FIGURE_GAP)
    regions = layout.figure_regions(clusters, page=page_rect,
                                    tables=[t.bbox for t in table_boxes])
    # What a screenshot may show: each cluster, and inside the clusters that joined
    # several drawings, the drawings set apart at the finer gap (stacked sub-figures).
    shots = list(clusters)
    for c in clusters:
        if c[2] - c[0] >= 2 * min_side or c[3] - c[1] >= 2 * min_side:
            inner = [d for d in drawn if c[0] <= d[0] and d[2] <= c[2]
                     and c[1] <= d[1] and d[3] <= c[3]]
            parts = layout.cluster_rects(inner, page=c, gap=FINE_GAP)
            if len(parts) > 1:
                shots += parts
    shots = [c for c in shots if c[2] - c[0] >= min_side and c[3] - c[1] >= min_side
             and layout.area(c) < 0.85 * layout.area(page_rect)]
    return table_boxes, [Box("figure", r) for r in regions], shots
