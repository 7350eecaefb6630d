"""Rectangles in one coordinate system (PDF points of a page, or pixels of an image).

Pure Python helpers shared by the parsers (layout, chunking) and the embedders that
rank a chunk's visuals by size; they live below both so neither imports the other::

    >>> from ragnest.media.geometry import area, overlap_ratio, union_bbox
    >>> area((0, 0, 10, 5))
    50
    >>> overlap_ratio((0, 0, 10, 10), (5, 0, 20, 10))
    0.5
    >>> union_bbox([(0, 0, 10, 10), None, (5, 5, 20, 12)])
    (0, 0, 20, 12)

A rectangle is ``(x0, y0, x1, y1)`` with ``x0 <= x1`` and ``y0 <= y1`` (y grows
downwards, as in PyMuPDF and image arrays).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Rect", "area", "overlap_ratio", "union_bbox"]

#: ``(x0, y0, x1, y1)``.
Rect = tuple[float, float, float, float]


def area(r: Rect) -> float:
    """Area of a rectangle (0 when empty).

    >>> area((0, 0, 10, 5))
    50
    >>> area((5, 5, 1, 9))
    0.0
    """
    return max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])


def overlap_ratio(inner: Rect, outer: Rect) -> float:
    """The share of ``inner``'s area that lies inside ``outer``.

    A degenerate ``inner`` (zero width or height) counts as inside (1.0) when its
    points are, else outside (0.0).

    >>> overlap_ratio((0, 0, 10, 10), (5, 0, 20, 10))
    0.5
    >>> overlap_ratio((2, 3, 8, 3), (0, 0, 10, 10))
    1.0
    """
    a = area(inner)
    if a <= 0:
        return 1.0 if (outer[0] <= inner[0] and inner[2] <= outer[2]
                       and outer[1] <= inner[1] and inner[3] <= outer[3]) else 0.0
    x0, y0 = max(inner[0], outer[0]), max(inner[1], outer[1])
    x1, y1 = min(inner[2], outer[2]), min(inner[3], outer[3])
    return area((x0, y0, x1, y1)) / a


def union_bbox(boxes: Iterable[Rect | None]) -> Rect | None:
    """The smallest box holding every given box (``None`` entries and an empty input
    give ``None``).

    >>> union_bbox([(0, 0, 10, 10), None, (5, 5, 20, 12)])
    (0, 0, 20, 12)
    >>> union_bbox([None]) is None
    True
    """
    real = [b for b in boxes if b]
    if not real:
        return None
    return (
        min(b[0] for b in real),
        min(b[1] for b in real),
        max(b[2] for b in real),
        max(b[3] for b in real),
    )
