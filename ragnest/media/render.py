"""Turn an :class:`~ragnest.types.ImageRef` into pixels or encoded bytes, on demand.

Page refs render a PDF page (or its ``clip``, in PDF points) at ``ref.dpi`` from the
file at ``ref.source``; blob refs load an image file (``ref.blob``, with an optional
``clip`` in pixels). Rendering is cheap, encoding is not: call :func:`render_array`
for models in the same process and encode (:func:`render_png`, :func:`render_jpeg`)
only when bytes must leave it::

    >>> from ragnest.media.render import render_array, render_png
    >>> from ragnest.types import ImageRef
    >>> ref = ImageRef(source="examples/docs/nimbus3_handbook.pdf", page=3, dpi=72)
    >>> render_array(ref).shape  # doctest: +SKIP
    (842, 595, 3)
    >>> render_png(ref)[:4]  # doctest: +SKIP
    b'\\x89PNG'

Every function caps the pixel count (``max_pixels``, default 40 Mpx) by lowering the
resolution, so a poster-sized page cannot exhaust memory. pymupdf is imported lazily;
a few recently used documents stay open (:func:`clear_cache` closes them).
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
from ragnest.media.sniff import sniff
from ragnest.types import ImageRef

if TYPE_CHECKING:
    import pymupdf

__all__ = [
    "encode",
    "MIME_TYPES",
    "render_png",
    "render_jpeg",
    "render_webp",
    "render_array",
    "pixmap_to_array",
    "effective_dpi",
    "clear_cache",
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


def render_png(ref: ImageRef, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               password: str | None = None) -> bytes:
    """PNG bytes for ``ref`` (RGB, no alpha).

    >>> png = render_png(ImageRef(source="doc.pdf", page=1))  # doctest: +SKIP
    """
    return _pixmap(ref, max_pixels, password).tobytes("png")


def render_jpeg(ref: ImageRef, quality: int = 85, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                password: str | None = None) -> bytes:
    """JPEG bytes for ``ref`` at ``quality`` (1-100).

    >>> jpg = render_jpeg(ImageRef(source="doc.pdf", page=1), quality=80)  # doctest: +SKIP
    """
    if not 1 <= quality <= 100:
        raise ValueError("JPEG quality must be between 1 and 100")
    return _pixmap(ref, max_pixels, password).tobytes("jpeg", jpg_quality=quality)


def render_webp(ref: ImageRef, quality: int = 80, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                password: str | None = None) -> bytes:
    """WebP bytes for ``ref`` (needs Pillow, which the ``lite`` and ``hf`` extras bring).

    >>> webp = render_webp(ImageRef(source="doc.pdf", page=1))  # doctest: +SKIP
    """
    if not 1 <= quality <= 100:
        raise ValueError("WebP quality must be between 1 and 100")
    try:
        from PIL import Image
    except ImportError as err:
        from ragnest.errors import MissingDependencyError

        raise MissingDependencyError(
            "WebP encoding needs Pillow: pip install 'ragnest[lite]' (or use format='jpeg')"
        ) from err
    import io

    buf = io.BytesIO()
    Image.fromarray(render_array(ref, max_pixels=max_pixels, password=password)).save(
        buf, format="WEBP", quality=quality, method=4)
    return buf.getvalue()


#: The MIME type of each format :func:`encode` writes.
MIME_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png"}


def encode(ref: ImageRef, format: str = "jpeg", *, quality: int | None = None,
           max_pixels: int = DEFAULT_MAX_PIXELS, password: str | None = None) -> bytes:
    """Encoded bytes for ``ref``, for pixels that must leave the process (an API call,
    a UI): ``"jpeg"`` (default, smallest for page screenshots), ``"webp"`` or
    ``"png"`` (lossless, on request). Models in this process should use
    :func:`render_array` and skip encoding altogether.

    >>> data = encode(ImageRef(source="doc.pdf", page=1), "webp")  # doctest: +SKIP
    >>> sorted(MIME_TYPES)
    ['jpeg', 'png', 'webp']
    """
    fmt = format.lower().replace("jpg", "jpeg")
    if fmt == "jpeg":
        return render_jpeg(ref, quality or 85, max_pixels=max_pixels, password=password)
    if fmt == "webp":
        return render_webp(ref, quality or 80, max_pixels=max_pixels, password=password)
    if fmt == "png":
        return render_png(ref, max_pixels=max_pixels, password=password)
    raise ValueError(f"image format must be one of jpeg, webp, png; not {format!r}")


def render_array(ref: ImageRef, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                 password: str | None = None) -> np.ndarray:
    """The pixels of ``ref`` as a ``(height, width, 3)`` uint8 RGB array.

    >>> render_array(ImageRef(blob="photo.jpg")).dtype  # doctest: +SKIP
    dtype('uint8')
    """
    return pixmap_to_array(_pixmap(ref, max_pixels, password))


def pixmap_to_array(pix: pymupdf.Pixmap) -> np.ndarray:
    """A PyMuPDF pixmap's samples as an ``(height, width, n)`` uint8 array (a copy)."""
    rows = np.frombuffer(pix.samples_mv, dtype=np.uint8)
    rows = rows.reshape(pix.height, pix.stride)[:, : pix.width * pix.n]
    return rows.reshape(pix.height, pix.width, pix.n).copy()


def _pixmap(ref: ImageRef, max_pixels: int, password: str | None) -> pymupdf.Pixmap:
    if ref.blob:
        return _load_blob(ref, max_pixels)
    if ref.source is None or ref.page is None:
        raise ValueError("ImageRef needs source + page (a document page) or blob (an image file)")
    return _render_page(ref, max_pixels, password)


def _missing(path: str, what: str) -> ParseError:
    return ParseError(path, f"file not found; cannot {what} (was it moved or deleted?)")


class _DocumentCache:
    """A few recently used open documents: opening a PDF costs more than rendering a page
    (PyMuPDF loads the outline on open), and pages are rendered in bursts per document.

    Keys include the file's size and mtime, so a rewritten file is reopened. MuPDF
    documents are not thread-safe, so every use happens under one lock.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self.lock = threading.RLock()
        self._docs: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def get(self, path: str, password: str | None) -> Any:
        import pymupdf

        stat = os.stat(path)
        key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size, password)
        doc = self._docs.get(key)
        if doc is not None:
            self._docs.move_to_end(key)
            return doc
        try:
            # A PDF named .txt must still open as a PDF: trust the bytes over the name.
            doc = pymupdf.open(path, filetype="pdf" if sniff(path) == "pdf" else None)
        except Exception as err:
            raise ParseError(path, f"cannot open document to render it: {err}") from err
        if doc.needs_pass and not (password and doc.authenticate(password)):
            doc.close()
            raise ParseError(path, "PDF is encrypted; pass password= to render its pages")
        self._docs[key] = doc
        while len(self._docs) > self.size:
            self._docs.popitem(last=False)[1].close()
        return doc

    def clear(self) -> None:
        with self.lock:
            while self._docs:
                self._docs.popitem()[1].close()


_CACHE = _DocumentCache()


def clear_cache() -> None:
    """Close the documents kept open for rendering (e.g. before deleting the files).

    >>> clear_cache()
    """
    _CACHE.clear()


def _render_page(ref: ImageRef, max_pixels: int, password: str | None) -> pymupdf.Pixmap:
    import pymupdf

    path = str(ref.source)
    page_no = int(ref.page or 0)
    if not Path(path).is_file():
        raise _missing(path, f"render page {page_no}")
    with _CACHE.lock:
        doc = _CACHE.get(path, password)
        if not 1 <= page_no <= doc.page_count:
            raise ParseError(path, f"page {page_no} out of range (1..{doc.page_count})")
        page = doc.load_page(page_no - 1)
        area = page.rect
        if ref.clip is not None:
            area = pymupdf.Rect(ref.clip) & page.rect
            if area.is_empty:
                raise ParseError(path, f"clip {ref.clip} lies outside page {page_no}")
        dpi = effective_dpi(area.width, area.height, float(ref.dpi), max_pixels)
        if dpi != ref.dpi:
            logger.info("%s p.%d: rendering at %.1f dpi, not %d, to stay under %d pixels",
                        path, page_no, dpi, ref.dpi, max_pixels)
        zoom = dpi / 72.0
        # Whole-pixel rounding can push the area just past the cap: shave until it fits.
        for _ in range(50):
            box = (area * pymupdf.Matrix(zoom, zoom)).irect
            if box.width * box.height <= max_pixels:
                break
            zoom *= 0.998
        return page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), clip=area, alpha=False,
                               colorspace=pymupdf.csRGB)


def _blob_bytes(path: str) -> tuple[str, bytes | None]:
    """(name for errors, bytes of an archive member or ``None`` for a plain file)."""
    if "::" in path and not Path(path).is_file():
        # "/abs/report.docx::word/media/image1.png": a member of a ZIP container
        # (DOCX/PPTX/ODT/EPUB), read only now (ragnest.parsers.office makes these).
        archive, member = path.split("::", 1)
        if not Path(archive).is_file():
            raise _missing(archive, f"load image {member}")
        import zipfile

        try:
            with zipfile.ZipFile(archive) as zf:
                return archive, zf.read(member)
        except KeyError as err:
            raise ParseError(archive, f"image {member} is not in this file "
                                      "(was the file changed since it was parsed?)") from err
        except (zipfile.BadZipFile, OSError) as err:
            raise ParseError(archive, f"cannot read image {member}: {err}") from err
    if not Path(path).is_file():
        raise _missing(path, "load image")
    return path, None


def _decode_with_pillow(path: str, data: bytes | None, frame: int | None,
                        max_pixels: int) -> np.ndarray | None:
    """RGB pixels via Pillow (alpha on white, EXIF rotation, TIFF frames, WebP), or
    ``None`` when Pillow is not installed."""
    try:
        from PIL import Image
    except ImportError:
        return None
    import io

    from ragnest.media.decode import decode_rgb

    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as im:
            if frame and frame > 1:
                im.seek(frame - 1)
            if im.format == "JPEG" and im.width * im.height > 4 * max_pixels:
                im.draft("RGB", (im.width // 2, im.height // 2))  # decode at reduced size
            return decode_rgb(im)
    except (EOFError, ValueError) as err:
        raise ParseError(path, f"image has no frame {frame}: {err}") from err
    except Exception as err:
        raise ParseError(path, f"not a readable image: {err}") from err


def _load_blob(ref: ImageRef, max_pixels: int) -> pymupdf.Pixmap:
    import pymupdf

    path = str(ref.blob)
    name, data = _blob_bytes(path)
    arr = _decode_with_pillow(name, data, ref.page, max_pixels)
    if arr is not None:
        pix = _from_array(arr)
    else:
        try:
            pix = pymupdf.Pixmap(data) if data is not None else pymupdf.Pixmap(path)
        except Exception as err:
            raise ParseError(name, f"not a readable image: {err}") from err
        if pix.alpha:
            pix = pymupdf.Pixmap(pix, 0)
        if pix.colorspace is None or pix.colorspace.n != 3:
            pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
    if ref.clip is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in ref.clip)
        arr = pixmap_to_array(pix)[max(y0, 0): max(y1, 0), max(x0, 0): max(x1, 0)]
        if arr.size == 0:
            raise ParseError(path, f"clip {ref.clip} lies outside the image")
        pix = _from_array(arr)
    if pix.width * pix.height > max_pixels:
        scale = math.sqrt(max_pixels / (pix.width * pix.height))
        width, height = max(1, int(pix.width * scale)), max(1, int(pix.height * scale))
        logger.info("%s: scaling %dx%d image to %dx%d to stay under %d pixels",
                    path, pix.width, pix.height, width, height, max_pixels)
        pix = pymupdf.Pixmap(pix, width, height, None)
    return pix


def _from_array(arr: np.ndarray) -> Any:
    import pymupdf

    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    height, width = arr.shape[:2]
    return pymupdf.Pixmap(pymupdf.csRGB, width, height, arr.tobytes(), 0)
