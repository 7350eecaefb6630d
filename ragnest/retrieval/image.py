"""Image queries on pipelines that read text: the words in a screenshot, by OCR, when
the screenshot holds text.

A screenshot crop asked of a text-only pipeline is read with RapidOCR and searched
as text (image embedders, such as the visual fingerprint, still read its pixels).
A figure carries few words: a test of a few milliseconds
(:func:`ragnest.media.glyphs.text_share`) tells what the crop is first, and with
``retrieval.image_ocr: auto`` only crops that hold text (``text`` or ``mixed``) are read.
A query needs a few words to find its page, not every line: the reader recognises about
80 characters (a line) nearest the crop's middle (:meth:`ragnest.media.ocr.OcrEngine.skim`,
no text detector: ~0.15 s of CPU, against ~0.8 s to read a passage of six lines whole;
on 100 crops of passages of manuals the page still came first 93 times, against 98 with
every line read). A crop taken for text whose reading gives fewer than three words
(thin or dashed line drawings break into glyph-like marks) counts as graphics after
all. The answer is a :class:`CropQuery`, which remembers what the crop is, so the
planner can let the text routes lead for text and the visual route for graphics
(``retrieval.image_weights``)::

    from ragnest.retrieval.image import ImageQueryReader
    reader = ImageQueryReader(RetrievalConfig(image_ocr="auto"))
    query = reader.read(Query(image=ImageRef(blob="crop.png")))
    query.kind, query.text_share, query.text     # 'text', 0.99, 'Descaling ...'
    reader.close()

The OCR engine is owned by the reader: loaded on first use, released by ``close()``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

from ragnest.config import RetrievalConfig
from ragnest.types import ImageRef, Query

__all__ = ["CropKind", "CropQuery", "ImageQueryReader", "crop_kind", "image_query"]

logger = logging.getLogger(__name__)

#: Pixel cap for a query image read by OCR.
QUERY_MAX_PIXELS = 16_000_000

#: A crop taken for text whose reading gives fewer words than this counts as graphics.
MIN_WORDS = 3

_WORD = re.compile(r"[^\W\d_]{2,}")  # a word: two letters or more

#: What a screenshot crop counts as, by its text share.
CropKind = Literal["text", "mixed", "graphics"]


def crop_kind(share: float, config: RetrievalConfig) -> CropKind:
    """What a crop with text share ``share`` counts as under ``config``.

    >>> config = RetrievalConfig(image_text=0.7, image_mixed=0.5)
    >>> [crop_kind(s, config) for s in (0.98, 0.6, 0.1)]
    ['text', 'mixed', 'graphics']
    """
    if share >= config.image_text:
        return "text"
    return "mixed" if share >= config.image_mixed else "graphics"


def image_query(path: str, text: str | None = None) -> Query:
    """A query made of an image file (and optional text); the file must exist."""
    from pathlib import Path

    from ragnest.errors import RagnestError

    p = Path(path)
    if not p.is_file():
        raise RagnestError(f"{p}: no such image file")
    return Query(text=text, image=ImageRef(blob=str(p.absolute())))


@dataclass(frozen=True, kw_only=True)
class CropQuery(Query):
    """An image query as :class:`ImageQueryReader` read it: ``text`` is what OCR found
    (``None`` when OCR did not run or found nothing), ``text_share`` the part of the
    crop's ink in glyph-sized marks (0..1), ``kind`` what the crop counts as
    (``text`` from ``retrieval.image_text`` up, ``mixed`` from ``retrieval.image_mixed``
    up, else ``graphics``; also ``graphics`` when OCR read fewer than three words in
    it), ``ocr`` whether OCR ran.

    >>> q = CropQuery(image=ImageRef(blob="crop.png"), text_share=0.12, kind="graphics")
    >>> isinstance(q, Query), q.kind, q.ocr
    (True, 'graphics', False)
    """

    text_share: float = 0.0
    kind: CropKind = "graphics"
    ocr: bool = False


class ImageQueryReader:
    """Reads the text of a query's image when it is worth it (see the module docs).

    ``config``: its ``image_ocr`` (``True``: always OCR, ``"auto"``: only crops that
    count as text or mixed, ``False``: never), ``image_text`` and ``image_mixed`` (the
    text shares from which a crop counts as text, or as mixed), ``image_chars`` (about
    how many characters of a crop :meth:`read` recognises; ``None``: every line, ~1 s
    for a passage; :meth:`text` always reads every line).

    >>> ImageQueryReader(RetrievalConfig(image_chars=0))
    Traceback (most recent call last):
    ...
    ragnest.errors.ConfigError: RetrievalConfig.image_chars: must be at least 1, got 0 (an integer)
    """

    def __init__(self, config: RetrievalConfig | None = None) -> None:
        self.config = config or RetrievalConfig()
        self._engine: Any = None
        self._renderer: Any = None

    def _pixels(self, image: ImageRef) -> Any:
        from ragnest.media.render import Renderer

        if self._renderer is None:
            self._renderer = Renderer()
        return self._renderer.array(image, max_pixels=QUERY_MAX_PIXELS)

    def text(self, image: ImageRef) -> str:
        """The text in ``image`` by OCR, always (empty when there is none)."""
        return self._ocr(self._pixels(image))

    def _ocr(self, pixels: Any, chars: int | None = None) -> str:
        from ragnest.media.ocr import OcrEngine, join_lines

        if self._engine is None:
            self._engine = OcrEngine()
            self._engine.warm_up()
        if chars is None:
            text = str(self._engine.text(pixels))
        else:
            text = join_lines(self._engine.skim(pixels, chars=chars))
        logger.debug("image query read by OCR: %r", text[:200])
        return text

    def read(self, query: Query) -> Query:
        """``query`` as a :class:`CropQuery` (its image's text as its text when OCR ran);
        unchanged when it has text or no image."""
        from ragnest.media.glyphs import text_share

        if query.image is None or query.text:
            return query
        pixels = self._pixels(query.image)
        share = text_share(pixels)
        kind = crop_kind(share.share, self.config)
        mode = self.config.image_ocr
        run = mode is True or (mode == "auto" and kind != "graphics")
        text = self._ocr(pixels, self.config.image_chars) if run else ""
        if kind != "graphics" and run and len(_WORD.findall(text)) < MIN_WORDS:
            kind = "graphics"  # glyph-like marks that read as no words: a drawing
        logger.debug("image query: text share %.3f (%d glyphs) -> %s, OCR %s",
                     share.share, share.glyphs, kind, "run" if run else "skipped")
        return CropQuery(text=text or None, image=query.image, filters=query.filters,
                         text_share=share.share, kind=kind, ocr=run)

    def close(self) -> None:
        """Release the OCR engine and close the renderer's documents."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
        renderer, self._renderer = self._renderer, None
        if renderer is not None:
            renderer.close()
