"""Page thumbnails for notebook HTML: small JPEG ``data:`` URIs rendered through
:mod:`ragnest.media`, cached per page and file version, with regions drawn over them as
CSS boxes (percent positions, so any display size fits)::

    >>> from ragnest.display.thumbnails import thumbnail
    >>> from ragnest.types import ImageRef
    >>> thumb = thumbnail(ImageRef(source="examples/docs/nimbus3_handbook.pdf", page=5),
    ...                   (595.0, 842.0))
    >>> thumb.uri.startswith("data:image/jpeg;base64,"), max(thumb.width, thumb.height) <= 400
    (True, True)
"""

from __future__ import annotations

import base64
import html
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragnest.media.encode import encode_pixmap
from ragnest.media.render import default_renderer
from ragnest.types import Chunk, ImageRef

__all__ = [
    "THUMB_SIDE",
    "Box",
    "Thumbnail",
    "clear_thumbnails",
    "figure",
    "page_extent",
    "page_ref",
    "thumbnail",
]

logger = logging.getLogger(__name__)

#: Longest side of a thumbnail in pixels (shown smaller; sharp on high-dpi screens).
THUMB_SIDE = 400
_CACHE_SIZE = 256
#: A region to draw: ``(bbox, CSS colour, border width in px)``; bbox in the units of
#: the thumbnail's extent (PDF points for pages, pixels for images).
Box = tuple[tuple[float, float, float, float], str, float]


@dataclass(frozen=True)
class Thumbnail:
    """A rendered thumbnail: its ``data:`` URI, its size in pixels, and the size of what it
    shows in the units of region boxes (PDF points for pages, pixels for images) when known."""

    uri: str
    width: int
    height: int
    extent: tuple[float, float] | None


_cache: OrderedDict[tuple[Any, ...], Thumbnail | str] = OrderedDict()
_lock = threading.Lock()


def clear_thumbnails() -> None:
    """Forget the cached thumbnails (they are re-rendered on the next display)."""
    with _lock:
        _cache.clear()


def _stamp(location: str | None) -> tuple[Any, ...]:
    try:
        st = os.stat(location) if location else None
    except OSError:
        return ()
    return (st.st_mtime_ns, st.st_size) if st else ()


def thumbnail(ref: ImageRef, extent: tuple[float, float] | None = None) -> Thumbnail | str:
    """A JPEG thumbnail of a page (``source`` + ``page``) or an image (``blob``), at most
    :data:`THUMB_SIDE` pixels on its longest side, or the reason there is none.

    ``extent`` is the page size in PDF points (image size in pixels), when the caller
    knows it: it sets the resolution exactly. Results are cached per page and file
    version (:func:`clear_thumbnails` forgets them).
    """
    location = ref.source if ref.blob is None else ref.blob
    key = (ref.source, ref.page, ref.blob, extent, *_stamp(location))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    result = _render(ref, extent)
    with _lock:
        _cache[key] = result
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def _render(ref: ImageRef, extent: tuple[float, float] | None) -> Thumbnail | str:
    try:
        if ref.blob is None:
            dpi = 36.0 if extent is None else 72.0 * THUMB_SIDE / max(extent)
            ref = ImageRef(source=ref.source, page=ref.page, dpi=max(1, int(dpi)))
            pix = default_renderer().pixmap(ref, max_pixels=THUMB_SIDE * THUMB_SIDE * 2)
            if extent is None and pix.width * pix.height < THUMB_SIDE * THUMB_SIDE * 1.9:
                extent = (pix.width * 72.0 / ref.dpi, pix.height * 72.0 / ref.dpi)
        else:
            pix = default_renderer().pixmap(ImageRef(blob=ref.blob, page=ref.page),
                                            max_pixels=THUMB_SIDE * THUMB_SIDE)
        data = encode_pixmap(pix, "jpeg", quality=70)
    except Exception as err:  # a moved file, a broken page: a note, never an error
        logger.debug("no thumbnail for %s", ref, exc_info=True)
        return f"{type(err).__name__}: {err}"
    uri = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
    return Thumbnail(uri, pix.width, pix.height, extent)


def page_ref(chunk: Chunk) -> ImageRef | None:
    """What a chunk's thumbnail shows: its whole page (PDF and rendered documents) or its
    whole image (image files), else ``None`` (plain text)."""
    image = chunk.image or next((s.image for s in chunk.segments if s.image), None)
    if image is not None and image.source and image.page:
        return ImageRef(source=image.source, page=image.page)
    if image is not None and image.blob:
        return ImageRef(blob=image.blob, page=image.page)
    if chunk.page and chunk.source.lower().endswith(".pdf"):
        return ImageRef(source=chunk.source, page=chunk.page)
    return None


def page_extent(chunk: Chunk | None) -> tuple[float, float] | None:
    """The page size (PDF points) or image size (pixels) a chunk's metadata records."""
    meta = chunk.metadata if chunk is not None else {}
    w, h = meta.get("width"), meta.get("height")
    if isinstance(w, (int, float)) and isinstance(h, (int, float)) and w > 0 and h > 0:
        return float(w), float(h)
    return None


def _boxes_css(boxes: Sequence[Box], extent: tuple[float, float]) -> str:
    out = []
    w, h = extent
    for (x0, y0, x1, y1), colour, width in boxes:
        if x1 <= x0 or y1 <= y0 or (x1 - x0) * (y1 - y0) >= 0.95 * w * h:
            continue  # an empty box, or the whole page: nothing to point at
        left, top = max(0.0, x0 / w * 100), max(0.0, y0 / h * 100)
        right, bottom = min(100.0, x1 / w * 100), min(100.0, y1 / h * 100)
        out.append(
            f'<div style="position:absolute;left:{left:.2f}%;top:{top:.2f}%;'
            f"width:{right - left:.2f}%;height:{bottom - top:.2f}%;"
            f'border:{width}px solid {colour};background:{colour}22;box-sizing:border-box"></div>'
        )
    return "".join(out)


def figure(ref: ImageRef | None, chunk: Chunk | None, width: int,
           boxes: Sequence[Box] = (), alt: str = "") -> str:
    """``ref``'s thumbnail, ``width`` CSS pixels wide, with ``boxes`` over it (``chunk``
    gives the page size); a note when it cannot be rendered, ``""`` without a ref."""
    if ref is None:
        return ""
    thumb = thumbnail(ref, page_extent(chunk))
    if isinstance(thumb, str):
        return (f'<div style="width:{width}px;color:#888;font-size:11px">'
                f"no preview: {html.escape(thumb[:120], quote=True)}</div>")
    overlay = _boxes_css(boxes, thumb.extent) if thumb.extent else ""
    return (
        f'<div style="position:relative;width:{width}px;flex:none;line-height:0">'
        f'<img src="{thumb.uri}" alt="{html.escape(alt, quote=True)}" '
        f'style="width:100%;display:block;border:1px solid #ccc"/>{overlay}</div>'
    )
