"""Text in an image told from its ink marks alone, without a model (OpenCV).

Ink (grey below 170) is split into connected marks; a mark 3-64 px tall and at most
about three times as wide as tall is glyph-sized (a letter, a digit, a few joined
letters). Two questions are answered from those marks in a few milliseconds:

- :func:`text_share`: how much of the image is text (the share of its ink in
  glyph-sized marks), so that screenshot queries run OCR only on crops that hold text;
- :func:`glyph_lines`: where its text lines are (glyph marks grouped in rows, split at
  wide gaps, with the word gaps inside each line), so that a query can recognise a few
  lines without running the text detector (:meth:`ragnest.media.ocr.OcrEngine.skim`).

::

    >>> import numpy as np
    >>> from ragnest.media.glyphs import glyph_lines, text_share
    >>> blank = np.full((60, 200, 3), 255, np.uint8)
    >>> text_share(blank), glyph_lines(blank)
    (TextShare(share=0.0, glyphs=0), [])

This is ragnest's one OpenCV module (:func:`resize` serves the OCR adapter too); OpenCV
comes with rapidocr (``pip install 'ragnest[lite]'``) and is imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ragnest.errors import MissingDependencyError

__all__ = ["GlyphLine", "TextShare", "as_rgb", "glyph_lines", "resize", "text_share"]

_INSTALL_HINT = "pip install 'ragnest[lite]'"
# Grey levels below this are ink; glyph-sized marks are this tall (pixels); images past
# this many pixels are shrunk first (the tests stay a few milliseconds).
_INK = 170
_GLYPH_HEIGHT = (3, 64)
_SHARE_MAX_PIXELS = 2_000_000
# glyph_lines: a new row starts where sorted mark centres jump by this share of the
# median glyph height; a line splits at gaps wider than _LINE_GAP row heights; words at
# gaps of _WORD_GAP row heights (at least 2 px).
_ROW_JUMP = 0.5
_LINE_GAP = 2.5
_WORD_GAP = 0.3
# Line boxes reach this share of the marks' extent above and below them.
_PAD = 0.25


def as_rgb(image: np.ndarray) -> np.ndarray:
    """``image`` as ``HxWx3`` uint8 RGB (``HxW`` gray and ``HxWx4`` RGBA, composited on
    white, accepted); anything else is a clear error.

    >>> as_rgb(np.zeros((2, 3), np.uint8)).shape
    (2, 3, 3)
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    if image.shape[2] == 4:  # composite RGBA on white
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        rgb = image[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    return image


def _cv2() -> Any:
    try:
        import cv2  # OpenCV comes with rapidocr
    except ImportError as err:
        raise MissingDependencyError(
            f"this needs OpenCV, which comes with rapidocr: {_INSTALL_HINT}"
        ) from err
    return cv2


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``size`` (width, height): area averaging where it shrinks,
    cubic where it grows.

    >>> resize(np.zeros((10, 40, 3), np.uint8), (30, 10)).shape
    (10, 30, 3)
    """
    cv2 = _cv2()
    height, width = image.shape[:2]
    shrink = size[0] * size[1] < width * height
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def _marks(image: np.ndarray) -> tuple[float, np.ndarray]:
    """``(scale, stats)``: the image's ink marks as rows of x, y, w, h, pixels (in the
    image shrunk by ``scale`` when it is over 2 Mpx)."""
    cv2 = _cv2()
    rgb = as_rgb(image)
    height, width = rgb.shape[:2]
    scale = 1.0
    if height * width > _SHARE_MAX_PIXELS:
        scale = (_SHARE_MAX_PIXELS / (height * width)) ** 0.5
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    ink = (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) < _INK).astype(np.uint8)
    if not ink.any():
        return scale, np.zeros((0, 5), np.int64)
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    return scale, stats[1:].astype(np.int64)


def _glyph_mask(stats: np.ndarray) -> np.ndarray:
    w, h = stats[:, 2], stats[:, 3]
    lo, hi = _GLYPH_HEIGHT
    return (h >= lo) & (h <= hi) & (w <= 3 * h + 2)


@dataclass(frozen=True)
class TextShare:
    """How much of an image looks like text, from its ink marks alone (no model).

    ``share``: the part of the ink (dark pixels) in glyph-sized marks, 0..1 (on crops of
    real manuals at 110 dpi: text passages 0.8-1.0, median 0.99; ruled tables 0.75-0.95;
    plots and diagrams with labels 0-0.6; photos and filled drawings ~0);
    ``glyphs``: how many glyph-sized marks there are.
    """

    share: float
    glyphs: int


def text_share(image: np.ndarray) -> TextShare:
    """How much of ``image`` (``HxWx3`` uint8 RGB, gray or RGBA accepted) is text: a
    test of a few milliseconds that tells whether OCR is worth running.

    Specks under 3 px (dots, leaders) count as neither text nor graphics. Rules, curves,
    frames, filled areas and photos make large marks, so their ink lowers the share.
    Images over 2 Mpx are shrunk first.

    >>> blank = np.full((60, 200, 3), 255, np.uint8)
    >>> boxed = blank.copy(); boxed[10:50, 20:180] = 0   # one big filled mark
    >>> text_share(boxed).share
    0.0
    """
    _, stats = _marks(image)
    if not len(stats):
        return TextShare(share=0.0, glyphs=0)
    w, h, n = stats[:, 2], stats[:, 3], stats[:, 4]
    lo = _GLYPH_HEIGHT[0]
    speck = (h < lo) & (w < lo)  # dots, leaders, noise: neither text nor graphics
    glyph = _glyph_mask(stats)
    counted = float(n[~speck].sum())
    share = float(n[glyph].sum()) / counted if counted else 0.0
    return TextShare(share=round(share, 4), glyphs=int(glyph.sum()))


@dataclass(frozen=True)
class GlyphLine:
    """A run of glyph marks on one row: a text line (or a table cell's line).

    ``bbox`` is ``(x0, y0, x1, y1)`` in the image's pixels, padded around the marks the
    way a text detector's box is; ``words`` the ``(x0, x1)`` spans of its words (split at
    gaps wider than ~0.3 of the line's glyph height), left to right; ``height`` the
    marks' median height (pixels).
    """

    bbox: tuple[int, int, int, int]
    words: tuple[tuple[int, int], ...]
    height: float


def _split(xs: np.ndarray, x1s: np.ndarray, gap: float) -> list[tuple[int, int]]:
    """Spans of marks (sorted by x) separated by gaps wider than ``gap``."""
    spans: list[tuple[int, int]] = []
    start, end = int(xs[0]), int(x1s[0])
    for x0, x1 in zip(xs[1:].tolist(), x1s[1:].tolist()):
        if x0 - end > gap:
            spans.append((start, end))
            start = x0
        end = max(end, x1)
    spans.append((start, end))
    return spans


def glyph_lines(image: np.ndarray, *, min_marks: int = 3) -> list[GlyphLine]:
    """The text lines of ``image`` found from its glyph marks, top to bottom, left to
    right (a few milliseconds, no model).

    Marks whose centres lie within half a glyph height of each other form a row; a row
    splits into lines at gaps wider than 1.5 glyph heights (columns, table cells); lines
    with fewer than ``min_marks`` marks are left out. Rules, frames and curves are not
    glyph-sized and never form lines; dashes and dotted curves can.

    >>> import pymupdf
    >>> page = pymupdf.open().new_page(width=300, height=60)
    >>> _ = page.insert_text((10, 25), "Descaling every eight weeks", fontsize=14)
    >>> pix = page.get_pixmap(dpi=110)
    >>> img = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, 3)
    >>> [len(line.words) for line in glyph_lines(img)]
    [4]
    """
    scale, stats = _marks(image)
    if not len(stats):
        return []
    stats = stats[_glyph_mask(stats)]
    if len(stats) < min_marks:
        return []
    x, y, w, h = (stats[:, i].astype(np.float64) for i in range(4))
    cy = y + h / 2
    order = np.argsort(cy, kind="stable")
    jump = _ROW_JUMP * float(np.median(h))
    breaks = np.flatnonzero(np.diff(cy[order]) > jump) + 1
    height, width = as_rgb(image).shape[:2]
    lines: list[GlyphLine] = []
    for row in np.split(order, breaks):
        row = row[np.argsort(x[row], kind="stable")]
        row_h = float(np.median(h[row]))
        x1 = x[row] + w[row]
        for s0, s1 in _split(x[row], x1, _LINE_GAP * row_h):
            part = row[(x[row] >= s0) & (x1 <= s1)]
            if len(part) < min_marks:
                continue
            part_h = float(np.median(h[part]))
            top, bottom = float(y[part].min()), float((y[part] + h[part]).max())
            pad_y, pad_x = _PAD * (bottom - top), 0.3 * part_h
            words = _split(x[part], x[part] + w[part], max(2.0, _WORD_GAP * part_h))
            lines.append(GlyphLine(
                bbox=(max(0, int((s0 - pad_x) / scale)), max(0, int((top - pad_y) / scale)),
                      min(width, int(np.ceil((s1 + pad_x) / scale))),
                      min(height, int(np.ceil((bottom + pad_y) / scale)))),
                words=tuple((int(a / scale), int(np.ceil(b / scale))) for a, b in words),
                height=part_h / scale))
    lines.sort(key=lambda ln: (ln.bbox[1], ln.bbox[0]))
    return lines
