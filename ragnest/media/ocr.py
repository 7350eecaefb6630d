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
:func:`text_share` tells, in a few milliseconds and without a model, how much of an
image is text (the share of its ink in glyph-sized marks, by OpenCV's connected
components): screenshot queries run OCR only on crops that are mostly text.
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

__all__ = [
    "OcrLine",
    "OcrEngine",
    "TextShare",
    "get_engine",
    "join_lines",
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

# text_share: grey levels below this are ink; glyph-sized marks are this tall (pixels);
# images past this many pixels are shrunk first (the test stays a few milliseconds).
_INK = 170
_GLYPH_HEIGHT = (3, 64)
_SHARE_MAX_PIXELS = 2_000_000

_default_lock = threading.Lock()
_default: OcrEngine | None = None


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


def _as_rgb(image: np.ndarray) -> np.ndarray:
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
        rgb = _as_rgb(image)
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
            import cv2

            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
            rgb = cv2.resize(rgb, size, interpolation=interpolation)
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

    Ink (grey below 170) is split into connected marks; a mark 3-64 px tall and at most
    about three times as wide as tall is glyph-sized (a letter, a digit, a few joined
    letters); specks under 3 px (dots, leaders) do not count. Rules, curves, frames,
    filled areas and photos make large marks, so their ink lowers the share. Images
    over 2 Mpx are shrunk first.

    >>> import numpy as np
    >>> blank = np.full((60, 200, 3), 255, np.uint8)
    >>> text_share(blank)
    TextShare(share=0.0, glyphs=0)
    >>> boxed = blank.copy(); boxed[10:50, 20:180] = 0   # one big filled mark
    >>> text_share(boxed).share
    0.0
    """
    try:
        import cv2  # OpenCV comes with rapidocr
    except ImportError as err:
        raise MissingDependencyError(
            f"the text-share test needs OpenCV, which comes with rapidocr: {_INSTALL_HINT}"
        ) from err

    rgb = _as_rgb(image)
    height, width = rgb.shape[:2]
    if height * width > _SHARE_MAX_PIXELS:
        scale = (_SHARE_MAX_PIXELS / (height * width)) ** 0.5
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    ink = (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) < _INK).astype(np.uint8)
    total = int(ink.sum())
    if total == 0:
        return TextShare(share=0.0, glyphs=0)
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    w, h, n = stats[1:, 2], stats[1:, 3], stats[1:, 4]
    lo, hi = _GLYPH_HEIGHT
    speck = (h < lo) & (w < lo)  # dots, leaders, noise: neither text nor graphics
    glyph = (h >= lo) & (h <= hi) & (w <= 3 * h + 2)
    counted = float(n[~speck].sum())
    share = float(n[glyph].sum()) / counted if counted else 0.0
    return TextShare(share=round(share, 4), glyphs=int(glyph.sum()))


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
