"""Media below the parsers: sniffing, decoding, rendering, encoding, OCR, ImageRef bytes.

Nothing here imports a parser, an embedder or a store; they all import from here.

* :mod:`~ragnest.media.sniff`: a document's real type from its first bytes;
* :mod:`~ragnest.media.geometry`: rectangles (``area``, ``overlap_ratio``, ``union_bbox``);
* :mod:`~ragnest.media.resolve`: the one :class:`~ragnest.media.resolve.Resolver` every
  ImageRef's bytes come through (local files and ZIP members today; object storage later);
* :mod:`~ragnest.media.decode`: image bytes to RGB arrays (Pillow);
* :mod:`~ragnest.media.render`: :class:`~ragnest.media.render.Renderer`, pixels of page and
  blob refs under a pixel cap, owned by the components that render;
* :mod:`~ragnest.media.encode`: JPEG / WebP / PNG bytes and MIME types;
* :mod:`~ragnest.media.fit`: images sized to a visual-token budget in exact multiples of
  a model's patch unit, encoded for a request (``data:`` URLs);
* :mod:`~ragnest.media.ocr`: :class:`~ragnest.media.ocr.OcrEngine` (RapidOCR);
* :mod:`~ragnest.media.mupdf`: PyMuPDF, imported in one place and kept off stdout (its
  messages to the log, :func:`~ragnest.media.mupdf.drain` after each page);
* :mod:`~ragnest.media.diagnostics`: what the libraries said about one document,
  collected for its ingest report entry.

State is owned, never hidden in modules: a renderer's open documents and an OCR
engine's model belong to the object that made them, pickle as settings only, and are
remade in each worker process. The only process-wide objects are the documented
defaults for one-off calls (:func:`~ragnest.media.render.default_renderer`,
:func:`~ragnest.media.ocr.get_engine`), created lazily in each process.
"""

from __future__ import annotations

__all__: list[str] = []
