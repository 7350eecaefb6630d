"""Encoded image bytes (JPEG, WebP, PNG) for pixels that must leave the process.

Rendering is fast (hundreds of pages a second); encoding is the slow part (tens of
pages a second for PNG), so encode only for an API call, a UI or a file, never for a
model in this process (give it :meth:`~ragnest.media.render.Renderer.array`)::

    >>> import numpy as np
    >>> from ragnest.media.encode import encode_array, mime_type
    >>> data = encode_array(np.full((8, 8, 3), 200, np.uint8), "png")
    >>> data[:4], mime_type("jpg")
    (b'\\x89PNG', 'image/jpeg')
    >>> from ragnest.types import ImageRef
    >>> jpg = encode(ImageRef(source="doc.pdf", page=1), "jpeg", quality=80)  # doctest: +SKIP

Refs are rendered by the ``renderer`` given (a component's own
:class:`~ragnest.media.render.Renderer`), else by the process's
:func:`~ragnest.media.render.default_renderer`. JPEG and PNG use MuPDF's encoders,
WebP needs Pillow (which the ``lite`` and ``hf`` extras bring).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from ragnest.errors import MissingDependencyError
from ragnest.media.render import (
    DEFAULT_MAX_PIXELS,
    Renderer,
    array_to_pixmap,
    default_renderer,
    pixmap_to_array,
)
from ragnest.types import ImageRef

if TYPE_CHECKING:
    from ragnest.media.mupdf import pymupdf

__all__ = [
    "encode",
    "encode_array",
    "encode_pixmap",
    "mime_type",
    "normalize_format",
    "render_png",
    "render_jpeg",
    "render_webp",
    "MIME_TYPES",
    "DEFAULT_QUALITY",
]

#: The MIME type of each format :func:`encode` writes.
MIME_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png"}
#: The quality each lossy format uses when none is given.
DEFAULT_QUALITY = {"jpeg": 85, "webp": 80}


def normalize_format(format: str) -> str:
    """``"jpeg"``, ``"webp"`` or ``"png"`` for a format name in any case (``"JPG"`` too).

    >>> normalize_format("JPG")
    'jpeg'
    """
    fmt = format.lower().replace("jpg", "jpeg")
    if fmt not in MIME_TYPES:
        raise ValueError(f"image format must be one of jpeg, webp, png; not {format!r}")
    return fmt


def mime_type(format: str) -> str:
    """The MIME type for a format name (see :func:`normalize_format`).

    >>> mime_type("webp")
    'image/webp'
    """
    return MIME_TYPES[normalize_format(format)]


def _quality(fmt: str, quality: int | None) -> int:
    value = DEFAULT_QUALITY.get(fmt, 0) if quality is None else quality
    if fmt != "png" and not 1 <= value <= 100:
        raise ValueError(f"{'JPEG' if fmt == 'jpeg' else 'WebP'} quality must be between "
                         "1 and 100")
    return value


def _webp(pixels: np.ndarray, quality: int) -> bytes:
    try:
        from PIL import Image
    except ImportError as err:
        raise MissingDependencyError(
            "WebP encoding needs Pillow: pip install 'ragnest[lite]' (or use format='jpeg')"
        ) from err
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="WEBP", quality=quality, method=4)
    return buf.getvalue()


def encode_pixmap(pix: pymupdf.Pixmap, format: str = "jpeg", *,
                  quality: int | None = None) -> bytes:
    """An RGB PyMuPDF pixmap as ``format`` bytes."""
    fmt = normalize_format(format)
    value = _quality(fmt, quality)
    if fmt == "png":
        return pix.tobytes("png")
    if fmt == "jpeg":
        return pix.tobytes("jpeg", jpg_quality=value)
    return _webp(pixmap_to_array(pix), value)


def encode_array(pixels: np.ndarray, format: str = "jpeg", *,
                 quality: int | None = None) -> bytes:
    """``HxWx3`` uint8 RGB pixels as ``format`` bytes (``"jpeg"``, ``"webp"``, ``"png"``)."""
    fmt = normalize_format(format)
    if fmt == "webp":
        return _webp(np.ascontiguousarray(pixels, dtype=np.uint8), _quality(fmt, quality))
    return encode_pixmap(array_to_pixmap(pixels), fmt, quality=quality)


def encode(ref: ImageRef, format: str = "jpeg", *, quality: int | None = None,
           max_pixels: int = DEFAULT_MAX_PIXELS, password: str | None = None,
           renderer: Renderer | None = None) -> bytes:
    """Encoded bytes for ``ref``: ``"jpeg"`` (default, smallest for page screenshots),
    ``"webp"`` or ``"png"`` (lossless, on request).

    >>> data = encode(ImageRef(source="doc.pdf", page=1), "webp")  # doctest: +SKIP
    >>> sorted(MIME_TYPES)
    ['jpeg', 'png', 'webp']
    """
    fmt = normalize_format(format)
    _quality(fmt, quality)  # a bad quality fails before anything is rendered
    pix = (renderer or default_renderer()).pixmap(ref, max_pixels=max_pixels,
                                                   password=password)
    return encode_pixmap(pix, fmt, quality=quality)


def render_png(ref: ImageRef, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               password: str | None = None, renderer: Renderer | None = None) -> bytes:
    """PNG bytes for ``ref`` (RGB, no alpha): ``encode(ref, "png", ...)``.

    >>> png = render_png(ImageRef(source="doc.pdf", page=1))  # doctest: +SKIP
    """
    return encode(ref, "png", max_pixels=max_pixels, password=password, renderer=renderer)


def render_jpeg(ref: ImageRef, quality: int = 85, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                password: str | None = None, renderer: Renderer | None = None) -> bytes:
    """JPEG bytes for ``ref`` at ``quality`` (1-100).

    >>> jpg = render_jpeg(ImageRef(source="doc.pdf", page=1), quality=80)  # doctest: +SKIP
    """
    return encode(ref, "jpeg", quality=quality, max_pixels=max_pixels, password=password,
                  renderer=renderer)


def render_webp(ref: ImageRef, quality: int = 80, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                password: str | None = None, renderer: Renderer | None = None) -> bytes:
    """WebP bytes for ``ref`` (needs Pillow).

    >>> webp = render_webp(ImageRef(source="doc.pdf", page=1))  # doctest: +SKIP
    """
    return encode(ref, "webp", quality=quality, max_pixels=max_pixels, password=password,
                  renderer=renderer)
