"""Optical character recognition with RapidOCR (the only ragnest module importing it).

RapidOCR runs PaddleOCR's detection and recognition models on onnxruntime; the ONNX
models ship inside the ``rapidocr`` wheel, so OCR works offline. Importing this
module is cheap: RapidOCR is imported and its models loaded on :meth:`OcrEngine.warm_up`
(or the first :meth:`OcrEngine.read`)::

    >>> from ragnest.media.ocr import OcrEngine, get_engine
    >>> engine = OcrEngine(min_confidence=0.6, max_side=2000)  # cheap: nothing loaded
    >>> import numpy as np
    >>> engine.read(np.full((64, 64, 3), 255, dtype=np.uint8))  # doctest: +SKIP
    []
    >>> get_engine().text(page_pixels)  # doctest: +SKIP
    'Descaling\\nRun the cleaning cycle every 8 weeks.'

Each :class:`OcrEngine` owns its model: loaded by :meth:`~OcrEngine.warm_up` (or the
first :meth:`~OcrEngine.read`), released by :meth:`~OcrEngine.close`; calls into one
engine are serialised (onnxruntime already uses every core for one image). Components
that read text hold their own engine (a second model costs about 0.15 s and 40 MB once
the first is loaded). An engine pickles as its settings only, and reloads its model in
a worker process (spawned or forked) on first use. :func:`get_engine` is one default
engine per process, for one-off use.

Only detection and recognition run: the 180-degree text-direction classifier is
skipped (on an upright A4 page it turned a fifth of the lines upside down into
garbage, and it did not rescue an upside-down page). Detection runs at the image's own
resolution (PaddleOCR 3's default) rather than RapidOCR's upscaling of the shortest
side to 736 px, which made a 420x110 label ten times slower for the same text; images
whose longest side is under 800 px are upscaled up to 2x instead, which keeps small
text (7-9 px) readable for little time.
:meth:`OcrEngine.skim` reads only about so many characters, fast: the text lines
nearest the image's middle, found from glyph marks without the detector
(:mod:`ragnest.media.glyphs`, which also gives :func:`text_share`, re-exported here),
squeezed to 3/4 of their width and recognised in one batch; screenshot queries use it,
as a few words find a page (recognition costs in proportion to the width read).
RapidOCR's own logger (``RapidOCR``, which comes with its own stderr handler and does
not propagate) is routed into the logging tree instead (its handler removed, WARNING and
up), and onnxruntime's own C++ log, which cannot be routed, is kept to errors; nothing
is printed on stdout, and the root logger is never touched.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ragnest.errors import ConfigError, MissingDependencyError
from ragnest.media.glyphs import (
    GlyphLine,
    TextShare,
    as_rgb,
    glyph_lines,
    resize,
    text_share,
)

__all__ = [
    "OcrLine",
    "OcrEngine",
    "TextShare",
    "forget_default",
    "get_engine",
    "join_lines",
    "pick_lines",
    "reading_order",
    "text_share",
]

logger = logging.getLogger(__name__)

_INSTALL_HINT = "pip install 'ragnest[lite]'"
# RapidOCR's own downscale limit: ours (max_side) runs first, so keep RapidOCR's off.
_RAPIDOCR_MAX_SIDE = 100_000
_RAPIDOCR_PARAMS: dict[str, Any] = {
    "Global.log_level": "error",
    "Global.use_cls": False,
    "Global.text_score": 0.0,  # OcrEngine filters by its own min_confidence
    "Global.max_side_len": _RAPIDOCR_MAX_SIDE,
    "Det.limit_type": "min",
    "Det.limit_side_len": 64,  # detect at native resolution (only tiny images grow)
}
# Images whose longest side is under this are upscaled (at most 2x) before OCR.
_SMALL_SIDE = 800
_MAX_UPSCALE = 2.0
# pick_lines: widest piece of a line recognised at once (pixels at the 48 px height).
_STRIP = 1280
# skim: lines are squeezed to this share of their width before recognition (27% less
# CPU; on 61 crops of manuals the same words were read, where 0.65 lost 6% of them).
_SQUEEZE = 0.75
# The recogniser's input height (PP-OCR).
_REC_HEIGHT = 48


_default_lock = threading.Lock()
_default: OcrEngine | None = None
_inherited: list[OcrEngine] = []  # defaults a forked child forgot


@dataclass(frozen=True)
class OcrLine:
    """One recognised line: its text, its box and the recogniser's confidence.

    ``bbox`` is ``(x0, y0, x1, y1)`` in pixels of the image given to
    :meth:`OcrEngine.read` (axis-aligned, around the detected quadrilateral).
    """

    text: str
    bbox: tuple[float, float, float, float]
    confidence: float


def _create_model() -> Any:
    try:
        import onnxruntime  # RapidOCR imports it only when loading a model
        from rapidocr import RapidOCR
    except ImportError as err:
        raise MissingDependencyError(
            f"OCR needs the 'rapidocr' and 'onnxruntime' packages: {_INSTALL_HINT}"
        ) from err
    _route_library_logs(onnxruntime)
    try:
        model = RapidOCR(params=dict(_RAPIDOCR_PARAMS))
        # RapidOCR loads each model on its first use; load them now (warm-up).
        for loader in ("_load_det_model", "_load_rec_model"):
            load = getattr(model, loader, None)
            if load is not None:
                load()
    except Exception as err:  # a broken install: models missing from the wheel, ...
        raise MissingDependencyError(
            f"RapidOCR could not load its bundled ONNX models ({err}); "
            f"reinstall it: {_INSTALL_HINT}"
        ) from err
    logger.debug("RapidOCR loaded (detection + recognition, no angle classifier)")
    return model


def _route_library_logs(onnxruntime: Any) -> None:
    """RapidOCR's records into the logging tree (not its own stderr handler); onnxruntime
    to errors only (its C++ logger writes to stderr itself)."""
    rapid = logging.getLogger("RapidOCR")
    for handler in list(rapid.handlers):
        rapid.removeHandler(handler)
    rapid.propagate = True
    rapid.setLevel(logging.WARNING)
    set_severity = getattr(onnxruntime, "set_default_logger_severity", None)
    if set_severity is not None:
        set_severity(3)  # 0 verbose .. 3 error, 4 fatal


def _same_row(first: OcrLine, line: OcrLine) -> bool:
    """Whether ``line`` overlaps ``first`` vertically by half the smaller height."""
    overlap = min(first.bbox[3], line.bbox[3]) - max(first.bbox[1], line.bbox[1])
    smaller = min(first.bbox[3] - first.bbox[1], line.bbox[3] - line.bbox[1])
    return overlap >= 0.5 * max(smaller, 1e-6)


def _rows(lines: Sequence[OcrLine]) -> list[list[OcrLine]]:
    rows: list[list[OcrLine]] = []
    for line in lines:
        if rows and _same_row(rows[-1][0], line):
            rows[-1].append(line)
        else:
            rows.append([line])
    return rows


def reading_order(lines: Sequence[OcrLine]) -> list[OcrLine]:
    """Lines top to bottom; lines sharing a visual row left to right.

    A line belongs to the row of the line above it when they overlap vertically by at
    least half the smaller height (a row's first line anchors it).

    >>> a = OcrLine("right", (300.0, 10.0, 400.0, 30.0), 0.9)
    >>> b = OcrLine("left", (10.0, 12.0, 100.0, 31.0), 0.9)
    >>> c = OcrLine("below", (10.0, 50.0, 100.0, 70.0), 0.9)
    >>> [line.text for line in reading_order([c, a, b])]
    ['left', 'right', 'below']
    """
    ordered = sorted(lines, key=lambda ln: (ln.bbox[1], ln.bbox[0]))
    return [ln for row in _rows(ordered) for ln in sorted(row, key=lambda ln: ln.bbox[0])]


def join_lines(lines: Sequence[OcrLine]) -> str:
    """Text of lines in reading order: same visual row -> space, new row -> newline.

    >>> join_lines([OcrLine("Total:", (0, 0, 50, 10), 1.0),
    ...             OcrLine("42", (80, 1, 100, 11), 1.0),
    ...             OcrLine("Thanks", (0, 20, 60, 30), 1.0)])
    'Total: 42\\nThanks'
    """
    return "\n".join(" ".join(ln.text for ln in row) for row in _rows(list(lines)))


def _cut(line: GlyphLine, start: int, end: int, limit: float) -> list[tuple[int, int]]:
    """``[start, end)`` of ``line`` in spans at most ``limit`` pixels wide, each cut at
    the widest word gap in the last two thirds of its window (a long word is not cut)."""
    gaps = [(a[1], b[0]) for a, b in zip(line.words, line.words[1:]) if start < b[0] < end]
    spans: list[tuple[int, int]] = []
    while end - start > limit:
        window = [g for g in gaps if start + limit / 3 <= g[0] and g[1] <= start + limit]
        if not window:
            window = [g for g in gaps if g[0] > start][:1]
            if not window:
                break
        g0, g1 = max(window, key=lambda g: g[1] - g[0])
        spans.append((start, g0))
        start = g1
    spans.append((start, end))
    return spans


def pick_lines(lines: Sequence[GlyphLine], height: int,
               chars: int) -> list[tuple[int, int, int, int]]:
    """Boxes to recognise for about ``chars`` characters of ``lines`` (found in an image
    ``height`` pixels tall): whole lines nearest the middle first, lines cut by the
    image's top or bottom edge last, the last one cut at a word gap to fit; lines wider
    than 1,280 px once scaled to the recogniser's 48 px height are cut in pieces at word
    gaps, so that one batch of even widths reads them. A character is taken as 0.9
    glyph heights wide, spaces included.

    >>> from ragnest.media.glyphs import GlyphLine
    >>> mid = GlyphLine((0, 40, 200, 60), ((0, 90), (100, 200)), 10.0)
    >>> top = GlyphLine((0, 0, 200, 16), ((0, 200),), 10.0)
    >>> pick_lines([top, mid], 100, 12)   # the middle line's first word
    [(0, 40, 90, 60)]
    """
    centre = height / 2

    def order(line: GlyphLine) -> tuple[bool, float]:
        y0, y1 = line.bbox[1], line.bbox[3]
        return (y0 <= 0 or y1 >= height, abs((y0 + y1) / 2 - centre))

    boxes: list[tuple[int, int, int, int]] = []
    left = float(chars)
    for line in sorted(lines, key=order):
        char_w = 0.9 * max(line.height, 1.0)
        start, end = line.words[0][0], line.words[0][1]
        for _, x1 in line.words[1:]:
            if (x1 - start) / char_w > left:
                break
            end = x1
        if left <= 0 or (boxes and (end - start) / char_w > left):
            break  # not even one more word fits
        left -= (end - start) / char_w + 1
        x0, y0, x1, y1 = line.bbox
        pad = start - x0
        limit = _STRIP * (y1 - y0) / _REC_HEIGHT - 2 * pad
        for a, b in _cut(line, start, end, limit):
            boxes.append((max(x0, a - pad), y0, min(x1, b + pad), y1))
    return boxes


def _strips(rgb: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]
            ) -> list[tuple[np.ndarray, tuple[float, float, float, float]]]:
    """The boxes' crops scaled to the recogniser's 48 px height (and squeezed), set side
    by side half a height apart in strips up to 1,280 px wide: short pieces (table
    cells) share a strip instead of each being padded to the batch's widest; each strip
    with the box around its pieces."""
    out: list[tuple[np.ndarray, tuple[float, float, float, float]]] = []
    gap = np.full((_REC_HEIGHT, _REC_HEIGHT // 2, 3), 255, np.uint8)
    row: list[np.ndarray] = []
    held: list[tuple[int, int, int, int]] = []

    def flush() -> None:
        out.append((np.concatenate(row, axis=1),
                    (float(min(b[0] for b in held)), float(min(b[1] for b in held)),
                     float(max(b[2] for b in held)), float(max(b[3] for b in held)))))

    used = 0
    for x0, y0, x1, y1 in boxes:
        w = max(1, round((x1 - x0) * _REC_HEIGHT / max(y1 - y0, 1) * _SQUEEZE))
        piece = resize(rgb[y0:y1, x0:x1], (w, _REC_HEIGHT))
        if row and used + gap.shape[1] + w > _STRIP:
            flush()
            row, held, used = [], [], 0
        row += [gap, piece] if row else [piece]
        held.append((x0, y0, x1, y1))
        used += w + (gap.shape[1] if len(row) > 1 else 0)
    if row:
        flush()
    return out


class OcrEngine:
    """Reads text lines from RGB images.

    ``min_confidence`` drops lines the recogniser is less sure of (0..1).
    ``max_side`` downscales larger images (longest side, in pixels) before OCR; images
    under 800 px are upscaled up to 2x. Boxes are always mapped back to the input's
    pixel coordinates. Construction is cheap; :meth:`warm_up` loads this engine's
    model (a second or so for the first engine of a process).

    >>> engine = OcrEngine(min_confidence=0.6)
    >>> engine
    OcrEngine(min_confidence=0.6, max_side=2500)
    >>> import pickle; pickle.loads(pickle.dumps(engine))  # settings only, no model
    OcrEngine(min_confidence=0.6, max_side=2500)
    """

    def __init__(self, *, min_confidence: float = 0.5, max_side: int = 2500) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ConfigError(f"OcrEngine: min_confidence must be between 0 and 1, "
                              f"not {min_confidence}")
        if max_side < 32:
            raise ConfigError(f"OcrEngine: max_side must be at least 32 pixels, not {max_side}")
        self.min_confidence = float(min_confidence)
        self.max_side = int(max_side)
        self._lock = threading.Lock()  # guards loading and serialises inference
        self._model: Any = None
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"OcrEngine(min_confidence={self.min_confidence}, max_side={self.max_side})"

    def __getstate__(self) -> dict[str, Any]:
        return {"min_confidence": self.min_confidence, "max_side": self.max_side}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    @property
    def loaded(self) -> bool:
        """Whether this engine holds a loaded model (in this process)."""
        return self._model is not None and self._pid == os.getpid()

    def warm_up(self) -> None:
        """Import RapidOCR and load this engine's models (idempotent).

        Raises :class:`~ragnest.errors.MissingDependencyError` if rapidocr or
        onnxruntime is not installed.
        """
        if self.loaded:
            return
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's model is not ours to use
                self._model, self._pid = None, os.getpid()
            if self._model is None:
                self._model = _create_model()

    def close(self) -> None:
        """Release the model (a later :meth:`read` or :meth:`warm_up` loads it again)."""
        with self._lock:
            self._model = None

    def read(self, image: np.ndarray) -> list[OcrLine]:
        """OCR an ``HxWx3`` uint8 RGB image (``HxW`` gray and ``HxWx4`` RGBA accepted).

        Returns lines in reading order (see :func:`reading_order`) with boxes in the
        input's pixel coordinates; an image without text gives ``[]``.
        """
        rgb = as_rgb(image)
        height, width = rgb.shape[:2]
        if height == 0 or width == 0:
            return []
        self.warm_up()
        model = self._model
        longest = max(height, width)
        scale = 1.0
        if longest > self.max_side:
            scale = self.max_side / longest
        elif longest < min(_SMALL_SIDE, self.max_side):
            scale = min(_MAX_UPSCALE, min(_SMALL_SIDE, self.max_side) / longest)
        if scale != 1.0:
            rgb = resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))))
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])  # RapidOCR takes arrays as BGR
        with self._lock:
            result = model(bgr)
        boxes = getattr(result, "boxes", None)
        txts = getattr(result, "txts", None)
        scores = getattr(result, "scores", None)
        if boxes is None or txts is None or scores is None:
            return []
        sx = width / rgb.shape[1]
        sy = height / rgb.shape[0]
        lines: list[OcrLine] = []
        for box, txt, score in zip(boxes, txts, scores):
            text = " ".join(str(txt).split())
            if not text or float(score) < self.min_confidence:
                continue
            quad = np.asarray(box, dtype=np.float64).reshape(-1, 2)
            x0 = min(max(float(quad[:, 0].min()) * sx, 0.0), float(width))
            x1 = min(max(float(quad[:, 0].max()) * sx, 0.0), float(width))
            y0 = min(max(float(quad[:, 1].min()) * sy, 0.0), float(height))
            y1 = min(max(float(quad[:, 1].max()) * sy, 0.0), float(height))
            lines.append(OcrLine(text=text, bbox=(x0, y0, x1, y1), confidence=float(score)))
        if scale != 1.0:
            logger.debug("OCR on %dx%d image rescaled by %.3f", width, height, scale)
        return reading_order(lines)

    def text(self, image: np.ndarray) -> str:
        """The image's text: lines on one visual row joined by spaces, rows by newlines."""
        return join_lines(self.read(image))

    def skim(self, image: np.ndarray, *, chars: int = 80) -> list[OcrLine]:
        """Read about ``chars`` characters of the image's text, fast: the text lines
        nearest its middle (see :func:`pick_lines`), found from glyph marks
        (:func:`ragnest.media.glyphs.glyph_lines`, no detector), squeezed to 3/4 width,
        set side by side in strips and recognised in one batch.

        Made for screenshot queries, which need a few words to find their page rather
        than every line: recognition costs in proportion to the width read (on crops of
        manuals at 110 dpi, ~0.8 s of CPU to :meth:`read` a passage of six lines,
        ~0.12 s to skim 80 characters). Returns one :class:`OcrLine` per strip (a line,
        or several short pieces such as table cells), in reading order, with boxes in
        the input's pixels around what it holds (``[]`` when no text line is found).
        """
        if chars < 1:
            raise ConfigError(f"OcrEngine.skim: chars must be at least 1, not {chars}")
        rgb = as_rgb(image)
        boxes = pick_lines(glyph_lines(rgb), rgb.shape[0], chars)
        if not boxes:
            return []
        self.warm_up()
        try:  # recognition alone is not public RapidOCR API (3.x): read everything without it
            from rapidocr.ch_ppocr_rec import TextRecInput

            recognizer = self._model._load_rec_model()
        except (ImportError, AttributeError, TypeError):
            logger.warning("this RapidOCR has no recognition-only call; reading every line")
            return self.read(image)
        strips = _strips(rgb, boxes)
        with self._lock:
            result = recognizer(
                TextRecInput(img=[np.ascontiguousarray(strip[:, :, ::-1]) for strip, _ in strips]))
        lines = [OcrLine(text=" ".join(str(txt).split()), bbox=box, confidence=float(score))
                 for (_, box), txt, score in zip(strips, result.txts or (), result.scores or ())]
        return reading_order([ln for ln in lines
                              if ln.text and ln.confidence >= self.min_confidence])


def forget_default() -> None:
    """Forget this process's default :class:`OcrEngine`: a forked child calls this (see
    :func:`ragnest.ingest.start.reset_after_fork`), since the object and the lock guarding
    it are the parent's. The object is kept, unused, rather than freed: destroying an ONNX
    Runtime session inherited across a fork can crash the child."""
    global _default, _default_lock
    if _default is not None:
        _inherited.append(_default)
    _default, _default_lock = None, threading.Lock()


def get_engine() -> OcrEngine:
    """This process's default :class:`OcrEngine` (default settings), for one-off use.

    Created on the first call in each process (thread-safe) without loading anything;
    its model loads on its first :meth:`~OcrEngine.read` or :meth:`~OcrEngine.warm_up`.
    Components own their engines instead of sharing this one.

    >>> get_engine() is get_engine()
    True
    """
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = OcrEngine()
    return _default
