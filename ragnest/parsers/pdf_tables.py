"""Ruled tables on a PDF page, as Markdown boxes (PyMuPDF's table finder behind a cheap gate).

The finder is slow (it extracts every character of the page again and joins every
vector path), so :func:`table_region` looks at the page's drawings first (the cheap
``page.get_cdrawings()`` output the layout reads anyway): a ruled table needs at
least three horizontal rules of some length and three vertical ones (a framed code box
has two of each; the short ticks of a plot do not count). The finder then runs only
inside the region those rules cover, on the paths made of straight lines and
rectangles (the curves of a plot never make a ruled table), so a page with a big plot
next to its table does not pay for the plot. A grid whose cells are mostly empty is
the frame of a plot or a diagram, not a table::

    >>> table_region([{"items": [("l", (72, y), (300, y)) for y in (100, 120, 140)]
    ...                          + [("l", (x, 100), (x, 140)) for x in (72, 180, 300)]}])
    (60.0, 88.0, 312.0, 152.0)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ragnest.media.mupdf import pymupdf
from ragnest.parsers.layout import Box, Rect

__all__ = ["find_tables", "may_hold_table", "table_region"]

logger = logging.getLogger(__name__)

_MIN_RULE = 20.0  # points: a horizontal rule at least this long (cell borders, not ticks)
_MIN_POST = 8.0  # points: a vertical rule at least this tall (one row)
_MARGIN = 12.0  # points around the rules the finder looks at


def find_tables(page: pymupdf.Page, strategy: str, clip: Rect | None = None,
                paths: Sequence[dict[str, Any]] | None = None) -> list[Box]:
    """Ruled tables found by PyMuPDF's table finder (inside ``clip`` when given), as
    Markdown. With a clip and the page's ``get_cdrawings()`` ``paths``, only the paths
    of straight lines and rectangles inside the clip are handed to the finder."""
    try:
        if clip is None or paths is None or strategy == "text":
            found = page.find_tables(strategy=strategy)
        else:
            found = page.find_tables(strategy=strategy, clip=clip,
                                     paths=_straight_paths(paths, clip))
    except Exception:  # the finder is heuristic; never lose a page to it
        logger.debug("page %d: table finder failed", page.number + 1, exc_info=True)
        return []
    out = []
    for table in found.tables:
        if table.row_count < 2 or table.col_count < 2:
            continue
        cells = [c for row in table.extract() for c in row]
        if 2 * sum(1 for c in cells if c and c.strip()) < len(cells):
            continue  # mostly empty cells: the lines of a plot or a diagram, not a table
        markdown = table.to_markdown(clean=False, fill_empty=True).strip()
        markdown = markdown.replace("<br>", " ")
        if markdown:
            out.append(Box("table", tuple(float(v) for v in table.bbox), markdown))
    return out


_new = object.__new__
_Point = pymupdf.Point  # Point(x, y) is its fast path (a tuple argument is not)
_PATH_KEYS = ("closePath", "fill", "color", "width", "lineCap", "lineJoin", "dashes",
              "stroke_opacity", "fill_opacity", "even_odd")


def _straight_paths(paths: Sequence[dict[str, Any]], clip: Rect) -> list[dict[str, Any]]:
    """The ``get_cdrawings()`` paths inside ``clip`` made only of axis-parallel lines and
    rectangles, at least 3 points long on one side (the finder's shortest edge: plot
    markers drawn as thousands of tiny strokes are left out), converted to the
    ``get_drawings()`` form the finder reads (only these few are converted). A path of
    many strokes none of which is 3 points long is a plotted curve (each sub-point
    stroke passes as axis-parallel) and is left out too: on asymptote's manual such
    curves made the finder take 100-160 ms on a page; over ~9,000 manual pages it finds
    the same tables with them left out."""
    x0, y0, x1, y1 = clip
    out = []
    for path in paths:
        a, b, c, d = path["rect"]
        if c < x0 or a > x1 or d < y0 or b > y1 or max(c - a, d - b) < _MIN_EDGE:
            continue
        items = path["items"]
        if not all(it[0] == "re" or (it[0] == "l" and (abs(it[1][0] - it[2][0]) < 1
                                                      or abs(it[1][1] - it[2][1]) < 1))
                   for it in items):
            continue
        if len(items) > _CURVE_ITEMS and not any(_long(it) for it in items):
            continue  # a curve as hundreds of sub-point strokes (each "axis-parallel")
        new = {k: path.get(k) for k in _PATH_KEYS}
        new.update(type=path.get("type"), rect=_rect(*path["rect"]),
                   items=[("re", _rect(*it[1]).normalize(), it[2]) if it[0] == "re"
                          else ("l", _Point(*it[1]), _Point(*it[2]))
                          for it in items])
        out.append(new)
    return out


#: The finder's shortest table edge, in points: shorter paths and strokes are no rules.
_MIN_EDGE = 3
#: A path of more items than this, none of them ``_MIN_EDGE`` long, is a plotted curve.
_CURVE_ITEMS = 8


def _long(item: tuple[Any, ...]) -> bool:
    """Whether a ``get_cdrawings()`` line or rectangle item is 3 points long on a side."""
    if item[0] == "re":
        r = item[1]
        return max(abs(r[2] - r[0]), abs(r[3] - r[1])) >= _MIN_EDGE
    return max(abs(item[1][0] - item[2][0]), abs(item[1][1] - item[2][1])) >= _MIN_EDGE


def _rect(x0: float, y0: float, x1: float, y1: float) -> pymupdf.Rect:
    """``pymupdf.Rect(x0, y0, x1, y1)`` without its argument parsing (a plot's table
    region can hold tens of thousands of segments; the generic constructor was the
    finder's biggest cost)."""
    rect = _new(pymupdf.Rect)
    rect.x0, rect.y0, rect.x1, rect.y1 = float(x0), float(y0), float(x1), float(y1)
    return rect


def _rules(paths: Sequence[dict[str, Any]]) -> tuple[dict[int, Rect], dict[int, Rect]]:
    """Horizontal rules by rounded y and vertical rules by rounded x, each with the
    union of the segments at that position (from ``get_cdrawings()`` paths)."""
    ys: dict[int, Rect] = {}
    xs: dict[int, Rect] = {}

    def add(into: dict[int, Rect], key: int, seg: Rect) -> None:
        old = into.get(key)
        into[key] = seg if old is None else (min(old[0], seg[0]), min(old[1], seg[1]),
                                             max(old[2], seg[2]), max(old[3], seg[3]))

    for path in paths:
        for item in path.get("items", ()):
            if item[0] == "l":
                (px, py), (qx, qy) = item[1], item[2]
                seg = (min(px, qx), min(py, qy), max(px, qx), max(py, qy))
                if abs(py - qy) < 1 and abs(px - qx) >= _MIN_RULE:
                    add(ys, round(py), seg)
                elif abs(px - qx) < 1 and abs(py - qy) >= _MIN_POST:
                    add(xs, round(px), seg)
            elif item[0] == "re":
                a, b, c, d = item[1]
                seg = (min(a, c), min(b, d), max(a, c), max(b, d))
                w, h = seg[2] - seg[0], seg[3] - seg[1]
                if h < 3 and w >= _MIN_RULE:
                    add(ys, round(seg[1]), seg)
                elif w < 3 and h >= _MIN_POST:
                    add(xs, round(seg[0]), seg)
                elif w >= _MIN_RULE and h >= _MIN_POST:
                    for y in (seg[1], seg[3]):
                        add(ys, round(y), (seg[0], y, seg[2], y))
                    for x in (seg[0], seg[2]):
                        add(xs, round(x), (x, seg[1], x, seg[3]))
    return ys, xs


def table_region(paths: Sequence[dict[str, Any]]) -> Rect | None:
    """Where a ruled table may be on a page with these ``get_cdrawings()`` paths: the
    box around its rules (plus a margin), or ``None`` when there are fewer than three
    horizontal and three vertical rules, or when they do not make a grid (no rule
    crossed by three of the other direction: framed code boxes, stacked or side by
    side, never are; on ~9,000 pages of the R, gnuplot, asymptote and octave manuals
    this leaves the finder out on 36 of 65 pages and loses none of its tables)."""
    ys, xs = _rules(paths)
    if len(ys) < 3 or len(xs) < 3 or not _grid(list(ys.values()), list(xs.values())):
        return None
    segs = [*ys.values(), *xs.values()]
    return (min(s[0] for s in segs) - _MARGIN, min(s[1] for s in segs) - _MARGIN,
            max(s[2] for s in segs) + _MARGIN, max(s[3] for s in segs) + _MARGIN)


def _grid(rows: Sequence[Rect], posts: Sequence[Rect], tol: float = 2.0) -> bool:
    """Whether some horizontal rule is crossed by three vertical ones and some vertical
    rule by three horizontal ones (two cells each way at least)."""

    def crosses(h: Rect, v: Rect) -> bool:
        return h[0] - tol <= v[0] <= h[2] + tol and v[1] - tol <= h[1] <= v[3] + tol

    return (any(sum(crosses(h, v) for v in posts) >= 3 for h in rows)
            and any(sum(crosses(h, v) for h in rows) >= 3 for v in posts))


def may_hold_table(paths: Sequence[dict[str, Any]]) -> bool:
    """Whether :func:`table_region` finds room for a ruled table on the page."""
    return table_region(paths) is not None
