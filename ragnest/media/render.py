"""Turn an :class:`~ragnest.types.ImageRef` into pixels, on demand.

Page refs render a PDF page (or its ``clip``, in PDF points) at ``ref.dpi`` from the
document at ``ref.source``; blob refs load an image file (``ref.blob``, with an
optional ``clip`` in pixels). The bytes always come through a
:class:`~ragnest.media.resolve.Resolver` (local files by default).

A :class:`Renderer` owns what rendering keeps between calls: its resolver and a few
open documents (opening a PDF costs more than rendering a page, and pages are
rendered in bursts per document). Components that render hold one, made in
``warm_up`` and closed in ``close``::

    >>> from ragnest.media.render import Renderer
    >>> from ragnest.types import ImageRef
    >>> ref = ImageRef(source="examples/docs/nimbus3_handbook.pdf", page=3, dpi=72)
    >>> with Renderer() as renderer:
    ...     renderer.array(ref).shape
    (842, 595, 3)

Rendering is cheap and encoding is not: models in this process take arrays; encode
(:mod:`ragnest.media.encode`) only when bytes must leave it. Every call caps the pixel
count (``max_pixels``, default 40 Mpx) by lowering the resolution, so a poster-sized
page cannot exhaust memory. pymupdf is imported on first use.

For one-off use, :func:`render_array` renders through :func:`default_renderer`: one
renderer per process, created on first use in that process (a spawned worker makes
its own) and never shared between processes; :func:`clear_cache` closes its documents.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragnest.errors import ParseError
from ragnest.media.decode import decode_image
from ragnest.media.resolve import LocalResolver, Resolved, Resolver
from ragnest.media.sniff import SNIFF_BYTES, sniff_bytes
from ragnest.types import ImageRef

if TYPE_CHECKING:
    from ragnest.media.mupdf import pymupdf

__all__ = [
    "Renderer",
    "render_array",
    "default_renderer",
    "forget_default",
    "clear_cache",
    "page_pixmap",
    "pixmap_to_array",
    "array_to_pixmap",
    "effective_dpi",
    "DEFAULT_MAX_PIXELS",
]

logger = logging.getLogger(__name__)

#: Default pixel cap for one rendered image (40 megapixels, ~120 MB as RGB).
DEFAULT_MAX_PIXELS = 40_000_000


def effective_dpi(width_pt: float, height_pt: float, dpi: float, max_pixels: int) -> float:
    """The dpi to render a ``width_pt`` x ``height_pt`` region at so it fits ``max_pixels``.

    >>> effective_dpi(612, 792, 72, 10_000_000)
    72
    >>> round(effective_dpi(612, 792, 720, 1_000_000), 1)
    103.4
    """
    if max_pixels <= 0:
        raise ValueError("max_pixels must be positive")
    pixels = (width_pt * dpi / 72.0) * (height_pt * dpi / 72.0)
    if pixels <= max_pixels:
        return dpi
    return dpi * math.sqrt(max_pixels / pixels)


def page_pixmap(page: pymupdf.Page, *, dpi: float, max_pixels: int = DEFAULT_MAX_PIXELS,
                clip: Any = None) -> tuple[pymupdf.Pixmap, float]:
    """Render an open PyMuPDF ``page`` (or its ``clip`` rectangle, in points) as RGB
    without alpha at ``dpi``, lowered so the result stays under ``max_pixels``.

    Returns the pixmap and the dpi it was rendered at. Used by :class:`Renderer` and
    by parsers that render a page they already hold open (OCR).
    """
    from ragnest.media.mupdf import pymupdf

    area = page.rect if clip is None else pymupdf.Rect(clip)
    zoom = effective_dpi(area.width, area.height, float(dpi), max_pixels) / 72.0
    # Whole-pixel rounding can push the area just past the cap: shave until it fits.
    for _ in range(50):
        box = (area * pymupdf.Matrix(zoom, zoom)).irect
        if box.width * box.height <= max_pixels:
            break
        zoom *= 0.998
    pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), clip=clip, alpha=False,
                          colorspace=pymupdf.csRGB)
    return pix, zoom * 72.0


def pixmap_to_array(pix: pymupdf.Pixmap) -> np.ndarray:
    """A PyMuPDF pixmap's samples as an ``(height, width, n)`` uint8 array (a copy)."""
    rows = np.frombuffer(pix.samples_mv, dtype=np.uint8)
    rows = rows.reshape(pix.height, pix.stride)[:, : pix.width * pix.n]
    return rows.reshape(pix.height, pix.width, pix.n).copy()


def array_to_pixmap(arr: np.ndarray) -> pymupdf.Pixmap:
    """An ``HxWx3`` uint8 RGB array as a PyMuPDF pixmap (for MuPDF's encoders)."""
    from ragnest.media.mupdf import pymupdf

    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    height, width = arr.shape[:2]
    return pymupdf.Pixmap(pymupdf.csRGB, width, height, arr.tobytes(), 0)


class Renderer:
    """Pixels of ImageRefs through one resolver, keeping ``cache_size`` documents open.

    ``resolver`` defaults to :class:`~ragnest.media.resolve.LocalResolver`. Open
    documents are keyed on the resolver's version of the bytes (a rewritten file is
    reopened) and the password. MuPDF documents are not thread-safe, so every use of
    them happens under this renderer's lock. :meth:`close` closes the documents; the
    renderer stays usable (it reopens them on demand).

    A renderer pickles as its resolver and settings only (no open documents, no
    lock), so a component holding one can be sent to a worker process, which opens
    its own documents; in a forked child it forgets the parent's documents too.

    >>> renderer = Renderer(cache_size=2)
    >>> renderer
    Renderer(resolver=LocalResolver(), cache_size=2)
    >>> renderer.close()
    """

    def __init__(self, resolver: Resolver | None = None, *, cache_size: int = 4) -> None:
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self.resolver: Resolver = resolver if resolver is not None else LocalResolver()
        self.cache_size = cache_size
        self._lock = threading.RLock()
        self._docs: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"Renderer(resolver={self.resolver!r}, cache_size={self.cache_size})"

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"resolver": self.resolver, "cache_size": self.cache_size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["resolver"], cache_size=state["cache_size"])  # type: ignore[misc]

    @property
    def open_documents(self) -> int:
        """How many documents this renderer keeps open now (at most ``cache_size``)."""
        return len(self._docs) if self._pid == os.getpid() else 0

    def close(self) -> None:
        """Close the documents kept open (e.g. before deleting their files)."""
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's, not ours to close
                self._docs, self._pid = OrderedDict(), os.getpid()
            while self._docs:
                self._docs.popitem()[1].close()

    # ------------------------------------------------------------------- public
    def array(self, ref: ImageRef, *, max_pixels: int = DEFAULT_MAX_PIXELS,
              password: str | None = None) -> np.ndarray:
        """The pixels of ``ref`` as a ``(height, width, 3)`` uint8 RGB array.

        Raises :class:`~ragnest.errors.ParseError` naming the file when its bytes
        cannot be had or read, :class:`ValueError` for a ref with neither
        ``source`` + ``page`` nor ``blob``.
        """
        if ref.blob:
            return self._blob(ref, max_pixels)
        return pixmap_to_array(self._page(ref, max_pixels, password))

    def pixmap(self, ref: ImageRef, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               password: str | None = None) -> pymupdf.Pixmap:
        """The pixels of ``ref`` as an RGB PyMuPDF pixmap (what MuPDF's encoders take)."""
        if ref.blob:
            return array_to_pixmap(self._blob(ref, max_pixels))
        return self._page(ref, max_pixels, password)

    # ------------------------------------------------------------------- pages
    def _page(self, ref: ImageRef, max_pixels: int, password: str | None) -> pymupdf.Pixmap:
        from ragnest.media.mupdf import drain, pymupdf

        if ref.source is None or ref.page is None:
            raise ValueError("ImageRef needs source + page (a document page) or blob (an image file)")
        page_no = int(ref.page)
        found = self.resolver.resolve(str(ref.source))
        with self._lock:
            doc = self._document(found, password)
            if not 1 <= page_no <= doc.page_count:
                raise ParseError(found.name, f"page {page_no} out of range (1..{doc.page_count})")
            page = doc.load_page(page_no - 1)
            clip = None
            if ref.clip is not None:
                clip = pymupdf.Rect(ref.clip) & page.rect
                if clip.is_empty:
                    raise ParseError(found.name, f"clip {ref.clip} lies outside page {page_no}")
            pix, dpi = page_pixmap(page, dpi=ref.dpi, max_pixels=max_pixels, clip=clip)
            drain(found.name)  # what MuPDF said about this page: to the log
        if round(dpi, 6) != ref.dpi:
            logger.info("%s p.%d: rendering at %.1f dpi, not %d, to stay under %d pixels",
                        found.name, page_no, dpi, ref.dpi, max_pixels)
        return pix

    def _document(self, found: Resolved, password: str | None) -> Any:
        """The open document for ``found`` (call under the lock)."""
        from ragnest.media.mupdf import open_path, pymupdf

        if self._pid != os.getpid():
            # A forked child: documents opened by the parent share its file offsets;
            # forget them and open its own.
            self._docs, self._pid = OrderedDict(), os.getpid()
        key = (found.location, found.version, password)
        doc = self._docs.get(key)
        if doc is not None:
            self._docs.move_to_end(key)
            return doc
        try:
            # A PDF named .txt must still open as a PDF: trust the bytes over the name.
            if found.path is not None:
                with open(found.path, "rb") as fh:
                    head = fh.read(SNIFF_BYTES)
                kind = "pdf" if sniff_bytes(head) == "pdf" else None
                doc = open_path(found.path, filetype=kind)
            else:
                data = found.data or b""
                kind = ("pdf" if sniff_bytes(data[:SNIFF_BYTES]) == "pdf"
                        else Path(found.name).suffix.lstrip(".") or None)
                doc = pymupdf.open(stream=data, filetype=kind)
        except Exception as err:
            raise ParseError(found.name, f"cannot open document to render it: {err}") from err
        if doc.needs_pass and not (password and doc.authenticate(password)):
            doc.close()
            raise ParseError(found.name, "PDF is encrypted; pass password= to render its pages")
        self._docs[key] = doc
        while len(self._docs) > self.cache_size:
            self._docs.popitem(last=False)[1].close()
        return doc

    # ------------------------------------------------------------------- blobs
    def _blob(self, ref: ImageRef, max_pixels: int) -> np.ndarray:
        found = self.resolver.resolve(str(ref.blob))
        arr = decode_image(found.path, found.data, name=found.name, frame=ref.page,
                           max_pixels=max_pixels)
        if ref.clip is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in ref.clip)
            arr = arr[max(y0, 0): max(y1, 0), max(x0, 0): max(x1, 0)]
            if arr.size == 0:
                raise ParseError(str(ref.blob), f"clip {ref.clip} lies outside the image")
        height, width = arr.shape[:2]
        if width * height > max_pixels:
            from ragnest.media.mupdf import pymupdf

            scale = math.sqrt(max_pixels / (width * height))
            new_w, new_h = max(1, int(width * scale)), max(1, int(height * scale))
            logger.info("%s: scaling %dx%d image to %dx%d to stay under %d pixels",
                        ref.blob, width, height, new_w, new_h, max_pixels)
            arr = pixmap_to_array(pymupdf.Pixmap(array_to_pixmap(arr), new_w, new_h, None))
        return np.ascontiguousarray(arr)


_default: Renderer | None = None
_inherited: list[Renderer] = []  # defaults a forked child forgot
_default_lock = threading.Lock()


def forget_default() -> None:
    """Forget this process's default :class:`Renderer`: a forked child calls this (see
    :func:`ragnest.ingest.start.reset_after_fork`), since the object and the lock guarding
    it are the parent's. The object is kept, unused, rather than closed: its open documents
    share file offsets with the parent's."""
    global _default, _default_lock
    if _default is not None:
        _inherited.append(_default)
    _default, _default_lock = None, threading.Lock()


def default_renderer() -> Renderer:
    """This process's default :class:`Renderer` (local files), for one-off use.

    Created on the first call in each process (a worker process makes its own; nothing
    is inherited or shared). Components hold their own renderer instead.

    >>> default_renderer() is default_renderer()
    True
    """
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Renderer()
    return _default


def render_array(ref: ImageRef, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                 password: str | None = None) -> np.ndarray:
    """The pixels of ``ref`` as ``(height, width, 3)`` uint8 RGB, rendered by
    :func:`default_renderer` (see :meth:`Renderer.array`).

    >>> render_array(ImageRef(blob="photo.jpg")).dtype  # doctest: +SKIP
    dtype('uint8')
    """
    return default_renderer().array(ref, max_pixels=max_pixels, password=password)


def clear_cache() -> None:
    """Close the documents the default renderer keeps open (e.g. before deleting them).

    >>> clear_cache()
    """
    if _default is not None:
        _default.close()
