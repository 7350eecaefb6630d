"""Image queries on pipelines that read text: the words in a screenshot, by OCR.

A screenshot crop asked of a text-only pipeline is read with RapidOCR and searched
as text (image embedders, such as the visual fingerprint, still read its pixels)::

    from ragnest.retrieval.image import ImageQueryReader
    reader = ImageQueryReader()
    query = reader.read(Query(image=ImageRef(blob="crop.png")))   # query.text holds the OCR
    reader.close()

The OCR engine is owned by the reader: loaded on first use, released by ``close()``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from ragnest.types import ImageRef, Query

__all__ = ["ImageQueryReader", "image_query"]

logger = logging.getLogger(__name__)

#: Pixel cap for a query image read by OCR.
QUERY_MAX_PIXELS = 16_000_000


def image_query(path: str, text: str | None = None) -> Query:
    """A query made of an image file (and optional text); the file must exist."""
    from pathlib import Path

    from ragnest.errors import RagnestError

    p = Path(path)
    if not p.is_file():
        raise RagnestError(f"{p}: no such image file")
    return Query(text=text, image=ImageRef(blob=str(p.absolute())))


class ImageQueryReader:
    """Adds the text OCR finds in a query's image to a query that has no text."""

    def __init__(self) -> None:
        self._engine: Any = None
        self._renderer: Any = None

    def text(self, image: ImageRef) -> str:
        """The text in ``image`` (empty when there is none)."""
        from ragnest.media.ocr import OcrEngine
        from ragnest.media.render import Renderer

        if self._engine is None:
            self._engine = OcrEngine()
            self._engine.warm_up()
            self._renderer = Renderer()
        text = self._engine.text(self._renderer.array(image, max_pixels=QUERY_MAX_PIXELS))
        logger.debug("image query read by OCR: %r", text[:200])
        return str(text)

    def read(self, query: Query) -> Query:
        """``query`` with its image's text as its text (unchanged when it has text)."""
        if query.image is None or query.text:
            return query
        text = self.text(query.image)
        return replace(query, text=text) if text else query

    def close(self) -> None:
        """Release the OCR engine and close the renderer's documents."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
        renderer, self._renderer = self._renderer, None
        if renderer is not None:
            renderer.close()
