"""Page layout from plain geometry: reading order, headings, captions, figure regions.

The PDF adapter (:mod:`ragnest.parsers.pdf`) extracts boxes with PyMuPDF and hands
them here as :class:`Box` objects; everything below is pure Python, so the rules can
be tested without a PDF::

    >>> boxes = [Box("text", (300, 100, 500, 300), "right column"),
    ...          Box("text", (50, 100, 250, 300), "left column"),
    ...          Box("text", (50, 40, 500, 70), "A heading across", size=16.0)]
    >>> [b.text for b in reading_order(boxes)]
    ['A heading across', 'left column', 'right column']

Rules, each kept simple and deterministic (a page is classified from its own content
only, so parsing pages in parallel gives the same chunks as parsing them in order):

* **reading order**: full-width boxes split the page into bands; inside a band, when
  a vertical gutter separates the boxes into columns, each column is read top to
  bottom before the next; boxes whose tops align are read left to right;
* **headings**: short blocks (at most 3 lines, 200 characters) set clearly larger
  than the page's body text, or set in bold at body size without a final full stop;
* **captions**: blocks starting "Figure 3", "Fig. 2:", "Table 1." ... , attached to
  the nearest figure, picture or table above or below them;
* **figures**: clusters of vector drawings (drawings closer than a few points join,
  :func:`cluster_rects`, after page rules and page-sized backgrounds are set aside,
  :func:`drawing_rects`) big enough to be an illustration that are not tables.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ragnest.media.geometry import Rect, area, overlap_ratio, union_bbox

__all__ = [
    "Box",
    "Rect",
    "reading_order",
    "body_font_size",
    "is_heading",
    "CAPTION",
    "attach_captions",
    "is_caption",
    "absorb_labels",
    "figure_regions",
    "drawing_rects",
    "cluster_rects",
    "extra_regions",
    "overlap_ratio",  # from ragnest.media.geometry, kept here for existing callers
    "area",
]

#: A caption's opening words: "Figure 2:", "Fig. 3.", "Table 1 Results", "Abbildung 4 -";
#: not "Figure 1 shows ..." (a sentence that mentions a figure).
CAPTION = re.compile(
    r"^\s*(figure|fig\.|table|tab\.|chart|diagram|plate|exhibit|illustration|listing|"
    r"abbildung|abb\.|tabelle|figura|tabla|tableau)\s*[\dIVXLivxl]+[a-z]?\b"
    r"(\s*[.:)\-\u2013\u2014]|\s+(?-i:[A-Z(\"\u201c])|\s*$)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Box:
    """One element on a page: ``kind`` is "text", "picture", "figure" or "table".

    ``size`` is the dominant font size of a text box, ``bold`` the share of its
    characters set in bold, ``lines`` its line count; ``role`` is filled in by the
    classification ("heading", "caption", ...).
    """

    kind: str
    bbox: Rect
    text: str = ""
    size: float = 0.0
    bold: float = 0.0
    lines: int = 1
    role: str | None = None
    extra: dict = field(default_factory=dict, compare=False)


# ----------------------------------------------------------------------------- order
def _rows(boxes: Sequence[Box]) -> list[Box]:
    """Top to bottom; boxes overlapping the row's first box by half their height go
    left to right (table cells, side-by-side boxes)."""
    ordered: list[Box] = []
    row: list[Box] = []
    for box in sorted(boxes, key=lambda b: (b.bbox[1], b.bbox[0])):
        if row:
            first = row[0].bbox
            overlap = min(first[3], box.bbox[3]) - box.bbox[1]
            if overlap < 0.5 * min(first[3] - first[1], box.bbox[3] - box.bbox[1]):
                ordered.extend(sorted(row, key=lambda b: b.bbox[0]))
                row = []
        row.append(box)
    ordered.extend(sorted(row, key=lambda b: b.bbox[0]))
    return ordered


def _gutter(boxes: Sequence[Box], x0: float, x1: float) -> float | None:
    """An x inside (x0, x1)'s middle half that no box crosses and that has boxes with
    real text height on both sides, else ``None``."""
    if len(boxes) < 4:
        return None
    spans = sorted((b.bbox[0], b.bbox[2]) for b in boxes)
    lo, hi = x0 + 0.25 * (x1 - x0), x0 + 0.75 * (x1 - x0)
    reach = spans[0][1]
    for start, end in spans[1:]:
        if start > reach + 6 and lo <= (reach + start) / 2 <= hi:
            gap = (reach + start) / 2
            left = [b for b in boxes if b.bbox[2] <= gap]
            right = [b for b in boxes if b.bbox[0] >= gap]
            tall = lambda bs: sum(b.bbox[3] - b.bbox[1] for b in bs)  # noqa: E731
            # Short boxes aligned across the gap are table rows, not text columns.
            aligned = sum(1 for a in left if a.bbox[3] - a.bbox[1] < 30 and any(
                abs(a.bbox[1] - b.bbox[1]) < 3 for b in right))
            if (len(left) >= 2 and len(right) >= 2 and min(tall(left), tall(right)) > 60
                    and aligned < 0.5 * len(left)):
                return gap
        reach = max(reach, end)
    return None


def reading_order(boxes: Sequence[Box]) -> list[Box]:
    """Boxes in reading order, detecting two (or more) columns per horizontal band."""
    if not boxes:
        return []
    x0 = min(b.bbox[0] for b in boxes)
    x1 = max(b.bbox[2] for b in boxes)
    width = max(x1 - x0, 1.0)
    # Full-width boxes (more than 60% of the text width) cut the page into bands.
    wide = [b for b in boxes if (b.bbox[2] - b.bbox[0]) > 0.6 * width]
    out: list[Box] = []
    wide_ids = {id(b) for b in wide}
    rest = sorted((b for b in boxes if id(b) not in wide_ids), key=lambda b: b.bbox[1])
    cuts = sorted(wide, key=lambda b: b.bbox[1])
    band: list[Box] = []

    def flush() -> None:
        if not band:
            return
        gap = _gutter(band, x0, x1)
        if gap is None:
            out.extend(_rows(band))
        else:
            left = [b for b in band if b.bbox[2] <= gap]
            right = [b for b in band if b.bbox[2] > gap]
            out.extend(_rows(left))
            out.extend(reading_order(right) if _gutter(right, gap, x1) else _rows(right))
        band.clear()

    i = 0
    for cut in cuts:
        while i < len(rest) and rest[i].bbox[1] < cut.bbox[1]:
            band.append(rest[i])
            i += 1
        flush()
        out.append(cut)
    band.extend(rest[i:])
    flush()
    return out


# --------------------------------------------------------------------------- classes
def body_font_size(boxes: Sequence[Box]) -> float:
    """The font size carrying the most characters on the page (0 when there is no text).

    >>> body_font_size([Box("text", (0, 0, 1, 1), "x" * 500, size=10.0),
    ...                 Box("text", (0, 0, 1, 1), "Title", size=20.0)])
    10.0
    """
    weights: Counter[float] = Counter()
    for b in boxes:
        if b.kind == "text" and b.size:
            weights[round(b.size * 2) / 2] += len(b.text)
    return weights.most_common(1)[0][0] if weights else 0.0


def is_heading(box: Box, body: float) -> bool:
    """Whether a text box looks like a heading on a page whose body size is ``body``.

    >>> is_heading(Box("text", (0, 0, 1, 1), "3 Cleaning", size=14.0), 10.0)
    True
    >>> is_heading(Box("text", (0, 0, 1, 1), "Plain words in a sentence.", size=10.0), 10.0)
    False
    """
    text = box.text.strip()
    if box.kind != "text" or not text or len(text) > 200 or box.lines > 3 or body <= 0:
        return False
    if not any(c.isalpha() for c in text) or CAPTION.match(text):
        return False
    if box.size >= body * 1.15:
        return True
    return box.bold >= 0.9 and box.size >= body * 0.95 and not text.endswith((".", ",", ";"))


def is_caption(box: Box) -> bool:
    """A short text box opening like a caption.

    >>> is_caption(Box("text", (0, 0, 1, 1), "Figure 2: Steam wand"))
    True
    >>> is_caption(Box("text", (0, 0, 1, 1), "Figure 2 shows the steam wand."))
    False
    """
    return box.kind == "text" and len(box.text) <= 600 and bool(CAPTION.match(box.text))


def absorb_labels(figure: Box, texts: Sequence[Box], *, gap: float = 12.0) -> tuple[Box, list[Box]]:
    """Grow a figure over the short text boxes inside it or just beside it (its labels).

    Returns the figure (bbox grown, labels as its text) and the text boxes left over.
    """
    bbox = figure.bbox
    labels: list[str] = []
    rest: list[Box] = []
    for box in sorted(texts, key=lambda b: (b.bbox[1], b.bbox[0])):
        b = box.bbox
        inside = overlap_ratio(b, bbox) > 0.8
        beside = (len(box.text) <= 80 and box.lines <= 2
                  and b[1] >= bbox[1] - gap and b[3] <= bbox[3] + gap
                  and (0 <= b[0] - bbox[2] <= gap or 0 <= bbox[0] - b[2] <= gap
                       or overlap_ratio(b, bbox) > 0))
        if (inside or beside) and not is_caption(box) and box.role != "heading":
            labels.append(box.text)
            bbox = union_bbox((bbox, b)) or bbox
        else:
            rest.append(box)
    text = " ".join(t for t in [figure.text, *labels] if t)
    return replace(figure, bbox=bbox, text=text), rest


def attach_captions(boxes: list[Box], *, max_gap: float = 48.0) -> list[Box]:
    """Mark caption boxes and move each right after the figure/picture/table it describes.

    ``boxes`` must be in reading order. A caption belongs to the closest visual box
    (vertical gap at most ``max_gap`` points, overlapping horizontally); captions with
    no such box stay where they are (still marked as captions).
    """
    visuals = [b for b in boxes if b.kind in ("figure", "picture", "table")]
    out = [replace(b, role="caption") if is_caption(b) else b for b in boxes]
    for cap in [b for b in out if b.role == "caption"]:
        best, best_gap = None, max_gap
        for vis in visuals:
            if min(cap.bbox[2], vis.bbox[2]) - max(cap.bbox[0], vis.bbox[0]) <= 0:
                continue
            gap = max(cap.bbox[1] - vis.bbox[3], vis.bbox[1] - cap.bbox[3], 0.0)
            if gap <= best_gap:
                best, best_gap = vis, gap
        if best is None:
            continue
        out = [b for b in out if b is not cap]
        at = next(i for i, b in enumerate(out) if b is best)
        out.insert(at + 1, cap)
    return out


def figure_regions(
    clusters: Sequence[Rect],
    *,
    page: Rect,
    tables: Sequence[Rect] = (),
    min_side: float = 36.0,
    min_area_share: float = 0.01,
) -> list[Rect]:
    """Which drawing clusters are illustrations: big enough in both directions, not the
    whole page (backgrounds, frames), not (mostly) a table.

    >>> figure_regions([(50, 50, 300, 250), (50, 400, 550, 401), (0, 0, 595, 842)],
    ...                page=(0, 0, 595, 842))
    [(50, 50, 300, 250)]
    """
    page_area = area(page)
    out: list[Rect] = []
    for r in clusters:
        w, h = r[2] - r[0], r[3] - r[1]
        if w < min_side or h < min_side or area(r) < min_area_share * page_area:
            continue
        if area(r) > 0.85 * page_area:
            continue
        if any(overlap_ratio(r, t) > 0.5 or overlap_ratio(t, r) > 0.8 for t in tables):
            continue
        out.append(r)
    return out


def drawing_rects(rects: Sequence[Rect], *, page: Rect, thin: float = 1.5,
                  gap: float = 8.0) -> list[Rect]:
    """The drawing rectangles that can belong to an illustration: not page-sized
    backgrounds or frames (over 85% of the page), not page rules (thin lines across
    half the page or more with no other drawing within ``gap`` points: header and
    footer rules, section separators; the long sides of a box drawn line by line stay).

    >>> drawing_rects([(0, 0, 595, 842), (72, 60, 540, 60.4), (100, 100, 200, 180)],
    ...               page=(0, 0, 595, 842))
    [(100, 100, 200, 180)]
    """
    pw, ph = page[2] - page[0], page[3] - page[1]
    big = 0.85 * pw * ph
    kept: list[int] = []
    rules: list[int] = []
    for i, r in enumerate(rects):
        w, h = r[2] - r[0], r[3] - r[1]
        if w * h > big:
            continue
        if (h <= thin and w >= 0.5 * pw) or (w <= thin and h >= 0.5 * ph):
            rules.append(i)
        else:
            kept.append(i)
    if rules and kept:
        others = np.array([rects[i] for i in kept], dtype=np.float64).reshape(-1, 4)
        for i in rules:  # a rule touching a drawing is part of it (a box drawn line by line)
            r = rects[i]
            dx = np.maximum(np.maximum(others[:, 0] - r[2], r[0] - others[:, 2]), 0)
            dy = np.maximum(np.maximum(others[:, 1] - r[3], r[1] - others[:, 3]), 0)
            if bool((np.maximum(dx, dy) <= gap).any()):
                kept.append(i)
        kept.sort()
    return [rects[i] for i in kept]


def cluster_rects(rects: Sequence[Rect], *, page: Rect, gap: float = 8.0) -> list[Rect]:
    """Join drawing rectangles closer than ``gap`` points into clusters (their
    bounding boxes, top to bottom). Parallel lines alone (a column of underlines, a
    stack of rules) are not clusters.

    Linear in the number of rectangles: they are painted, grown by ``gap / 2``, on a grid
    of ``gap / 2`` cells, whose connected parts are the clusters (a plot of 50,000 path
    segments clusters in milliseconds). The grid rounds: rectangles up to ``2 * gap``
    apart may join too, never farther ones.

    >>> cluster_rects([(100, 100, 150, 140), (155, 100, 200, 140), (100, 400, 200, 500)],
    ...               page=(0, 0, 595, 842))
    [(100.0, 100.0, 200.0, 140.0), (100.0, 400.0, 200.0, 500.0)]
    """
    if not rects:
        return []
    cell = max(gap / 2, 0.5)
    boxes = np.array(rects, dtype=np.float64).reshape(-1, 4)
    # The grid spans the drawings (within the page), not the whole page.
    lo = np.maximum(boxes[:, :2].min(axis=0), (page[0], page[1])) - gap
    hi = np.minimum(boxes[:, 2:].max(axis=0), (page[2], page[3])) + gap
    x0, y0 = float(lo[0]), float(lo[1])
    cols = max(int((hi[0] - x0) / cell) + 2, 1)
    rows = max(int((hi[1] - y0) / cell) + 2, 1)
    half = gap / 2
    c0 = np.clip(((boxes[:, 0] - half - x0) // cell).astype(int), 0, cols - 1)
    c1 = np.clip(((boxes[:, 2] + half - x0) // cell).astype(int), 0, cols - 1)
    r0 = np.clip(((boxes[:, 1] - half - y0) // cell).astype(int), 0, rows - 1)
    r1 = np.clip(((boxes[:, 3] + half - y0) // cell).astype(int), 0, rows - 1)
    grid = np.zeros((rows, cols), dtype=bool)
    for a, b, c, d in zip(r0.tolist(), r1.tolist(), c0.tolist(), c1.tolist()):
        grid[a : b + 1, c : d + 1] = True
    labels = _components(grid)
    owner = labels[r0, c0]
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    flat = (h <= 1.5) & (w >= 6)  # horizontal lines (not dots)
    upright = (w <= 1.5) & (h >= 6)
    out: list[Rect] = []
    for label in np.unique(owner):
        members = owner == label
        if members.sum() > 1 and (flat[members].all() or upright[members].all()):
            continue  # parallel lines only (underlines, a stack of rules): no shape
        m = boxes[members]
        out.append((float(m[:, 0].min()), float(m[:, 1].min()),
                    float(m[:, 2].max()), float(m[:, 3].max())))
    return sorted(out, key=lambda r: (r[1], r[0]))


def _components(grid: np.ndarray) -> np.ndarray:
    """Connected parts (4-neighbour) of a boolean grid: each cell gets the smallest
    flat index of its part (-1 outside). Each round gives every horizontal run of cells,
    then every vertical run, the smallest label in it, then lets each cell take the
    label of the cell its label names (pointer jumping): a part converges in about as
    many rounds as it has turns, each round linear in its cells."""
    rows, cols = grid.shape
    h_cells, h_starts = _runs(grid)
    t_cells, v_starts = _runs(np.ascontiguousarray(grid.T))
    v_cells = (t_cells % rows) * cols + t_cells // rows  # back to row-major indices
    h_len = np.diff(np.append(h_starts, len(h_cells)))
    v_len = np.diff(np.append(v_starts, len(v_cells)))
    labels = np.full(grid.size, -1, dtype=np.int64)
    labels[h_cells] = h_cells
    while len(h_cells):
        before = labels[h_cells]
        labels[h_cells] = np.repeat(np.minimum.reduceat(labels[h_cells], h_starts), h_len)
        labels[v_cells] = np.repeat(np.minimum.reduceat(labels[v_cells], v_starts), v_len)
        labels[h_cells] = labels[labels[h_cells]]
        if np.array_equal(labels[h_cells], before):
            break
    return labels.reshape(rows, cols)


def _runs(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flat indices of a grid's set cells (row by row) and the positions in that
    list where a horizontal run of set cells starts."""
    cells = np.flatnonzero(grid)
    start = np.ones(len(cells), dtype=bool)
    start[1:] = (np.diff(cells) != 1) | (cells[1:] % grid.shape[1] == 0)
    return cells, np.flatnonzero(start)


def extra_regions(clusters: Sequence[Rect], visuals: Sequence[Rect], *,
                  slack: float = 4.0, limit: int = 8) -> list[list[float]]:
    """The ``clusters`` no visual box already stands for, rounded to 0.1 point, at most
    ``limit`` (the largest): drawings worth a visual fingerprint of their own. A visual
    stands for a cluster when their edges are within ``slack`` points of each other; a
    figure grown by its labels, or one that joined several drawings, does not stand
    for its parts (a screenshot may show either).

    >>> extra_regions([(10, 10, 110, 90), (200, 200, 300, 300)], [(8, 8, 112, 92)])
    [[200.0, 200.0, 300.0, 300.0]]
    """
    out: list[list[float]] = []
    for c in sorted(clusters, key=area, reverse=True):
        if any(all(abs(a - b) <= slack for a, b in zip(c, v)) for v in visuals):
            continue
        box = [round(float(x), 1) for x in c]
        if box not in out:
            out.append(box)
        if len(out) == limit:
            break
    return out
