"""Ruled tables on a PDF page, as Markdown boxes (PyMuPDF's table finder behind a cheap gate).

:func:`may_hold_table` looks at the page's drawings first: the finder is slow, and a
ruled table needs at least three horizontal and three vertical rules.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ragnest.parsers.layout import Box

if TYPE_CHECKING:
    from ragnest.media.mupdf import pymupdf

__all__ = ["find_tables", "may_hold_table"]

logger = logging.getLogger(__name__)


def find_tables(page: pymupdf.Page, strategy: str) -> list[Box]:
    """Ruled tables found by PyMuPDF's table finder, as Markdown."""
    try:
        found = page.find_tables(strategy=strategy)
    except Exception:  # the finder is heuristic; never lose a page to it
        logger.debug("page %d: table finder failed", page.number + 1, exc_info=True)
        return []
    out = []
    for table in found.tables:
        if table.row_count < 2 or table.col_count < 2:
            continue
        markdown = table.to_markdown(clean=False, fill_empty=True).strip()
        markdown = markdown.replace("<br>", " ")
        if markdown:
            out.append(Box("table", tuple(float(v) for v in table.bbox), markdown))
    return out


def may_hold_table(paths: list[dict]) -> bool:
    """Cheap gate before the (slow) table finder: a ruled table needs at least three
    horizontal and three vertical rules (a framed code box has two of each)."""
    ys: set[int] = set()
    xs: set[int] = set()
    for path in paths:
        for item in path.get("items", ()):
            if item[0] == "l":
                p, q = item[1], item[2]
                if abs(p.y - q.y) < 1 and abs(p.x - q.x) > 5:
                    ys.add(round(p.y))
                elif abs(p.x - q.x) < 1 and abs(p.y - q.y) > 5:
                    xs.add(round(p.x))
            elif item[0] == "re":
                r = item[1]
                if r.height < 3 and r.width > 5:
                    ys.add(round(r.y0))
                elif r.width < 3 and r.height > 5:
                    xs.add(round(r.x0))
                elif r.width > 5 and r.height > 5:
                    ys.update((round(r.y0), round(r.y1)))
                    xs.update((round(r.x0), round(r.x1)))
        if len(ys) >= 3 and len(xs) >= 3:
            return True
    return False
