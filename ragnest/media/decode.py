"""Decoding image files to RGB pixels (Pillow), the same way everywhere.

The image parser reads pixels with :func:`decode_rgb`, and the renderer loads blob
refs with :func:`decode_image` (which uses it), so an image is seen the same way when
parsed and when embedded::

    >>> from PIL import Image
    >>> decode_rgb(Image.new("RGB", (2, 1), (10, 20, 30)))[0, 0].tolist()
    [10, 20, 30]
    >>> import io
    >>> buf = io.BytesIO(); Image.new("L", (3, 2), 200).save(buf, format="PNG")
    >>> decode_image(data=buf.getvalue(), name="gray.png").shape
    (2, 3, 3)
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from ragnest.errors import MissingDependencyError, ParseError

__all__ = ["decode_rgb", "decode_image", "pillow"]

_ORIENTATION = 0x0112  # EXIF tag


def pillow() -> Any:
    """``PIL.Image``, or :class:`MissingDependencyError` naming the extra to install."""
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover - pillow ships with the lite extras
        raise MissingDependencyError(
            "decoding images needs Pillow: pip install 'ragnest[lite]'"
        ) from err
    return Image


def decode_rgb(im: Any) -> np.ndarray:
    """Decode the current frame of a Pillow image to an ``HxWx3`` uint8 RGB array.

    Palette, 1-bit, grayscale, CMYK and YCbCr are converted; 16-bit and 32-bit
    grayscale are scaled to 8 bits; alpha and transparent palette entries are
    composited on white; the EXIF orientation is applied.

    >>> from PIL import Image
    >>> im = Image.new("LA", (4, 2), (0, 0))  # black, fully transparent
    >>> decode_rgb(im)[0, 0].tolist()
    [255, 255, 255]
    >>> decode_rgb(Image.new("I;16", (3, 1), 65535)).shape
    (1, 3, 3)
    """
    Image = pillow()
    from PIL import ImageOps

    im.load()
    orientation = im.getexif().get(_ORIENTATION, 1) if hasattr(im, "getexif") else 1
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        im = ImageOps.exif_transpose(im)
    mode = im.mode
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        else:
            lo, hi = float(arr.min()), float(arr.max())
            if lo < 0 or hi > 65535:
                arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else arr * 0.0
            elif hi > 255:
                arr = arr / 257.0
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if im.has_transparency_data:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8)


def decode_image(path: str | None = None, data: bytes | None = None, *, name: str = "",
                 frame: int | None = None, max_pixels: int | None = None) -> np.ndarray:
    """An image file (``path``) or its bytes (``data``) as ``HxWx3`` uint8 RGB.

    ``frame`` picks a frame of a multi-frame TIFF (1-based). A JPEG far larger than
    ``max_pixels`` is decoded at reduced size (the caller still scales the result).
    Uses Pillow (as :func:`decode_rgb`) and falls back to PyMuPDF's decoders when
    Pillow is not installed. Raises :class:`~ragnest.errors.ParseError` naming
    ``name`` (default: ``path``) when the bytes are not a readable image.
    """
    name = name or str(path)
    try:
        from PIL import Image
    except ImportError:
        return _decode_with_pymupdf(path, data, name)
    try:
        with Image.open(io.BytesIO(data) if data is not None else str(path)) as im:
            if frame and frame > 1:
                im.seek(frame - 1)
            if (max_pixels and im.format == "JPEG"
                    and im.width * im.height > 4 * max_pixels):
                im.draft("RGB", (im.width // 2, im.height // 2))  # decode at reduced size
            return decode_rgb(im)
    except (EOFError, ValueError) as err:
        raise ParseError(name, f"image has no frame {frame}: {err}") from err
    except Exception as err:
        raise ParseError(name, f"not a readable image: {err}") from err


def _decode_with_pymupdf(path: str | None, data: bytes | None, name: str) -> np.ndarray:
    from ragnest.media.mupdf import pymupdf

    try:
        pix = pymupdf.Pixmap(data) if data is not None else pymupdf.Pixmap(str(path))
    except Exception as err:
        raise ParseError(name, f"not a readable image: {err}") from err
    if pix.alpha:
        pix = pymupdf.Pixmap(pix, 0)
    if pix.colorspace is None or pix.colorspace.n != 3:
        pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
    rows = np.frombuffer(pix.samples_mv, dtype=np.uint8)
    rows = rows.reshape(pix.height, pix.stride)[:, : pix.width * pix.n]
    return rows.reshape(pix.height, pix.width, pix.n).copy()
