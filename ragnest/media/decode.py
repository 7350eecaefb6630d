"""Decoding image files to RGB pixels (Pillow), the same way everywhere.

    >>> from PIL import Image
    >>> decode_rgb(Image.new("RGB", (2, 1), (10, 20, 30)))[0, 0].tolist()
    [10, 20, 30]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ragnest.errors import MissingDependencyError

__all__ = ["decode_rgb", "pillow"]

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
