"""Images sized to a visual-token budget: exact multiples of a model's pixel unit.

A vision-language model cuts an image into a grid of ``unit`` x ``unit`` pixel cells
(patch x merge: 28 for Qwen2-VL / Qwen2.5-VL, 32 for Qwen3-VL), one visual token per
cell. :func:`fit_to_tokens` picks the largest grid within a token budget at the image's
aspect ratio; :func:`fit_image` renders an :class:`~ragnest.types.ImageRef` at exactly
that size and encodes it, so a server's own processor has nothing left to resize and
the tokens ragnest counts are the tokens the model sees::

    >>> fit_to_tokens(1700, 2200, tokens=300, unit=28)
    (420, 560)
    >>> from ragnest.types import ImageRef
    >>> ref = ImageRef(source="examples/docs/nimbus3_handbook.pdf", page=3)
    >>> img = fit_image(ref, tokens=256, unit=28)
    >>> (img.width % 28, img.height % 28, img.tokens <= 256, img.mime)
    (0, 0, True, 'image/jpeg')
    >>> img.data_url()[:23]
    'data:image/jpeg;base64,'

Shared by every component that sends page images to a model (the transformers and the
OpenAI-compatible rerankers and generators); :mod:`ragnest.generators.evidence`
re-exports :func:`fit_to_tokens`.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, replace

from ragnest.media.encode import encode_pixmap, mime_type, normalize_format
from ragnest.media.render import Renderer, default_renderer
from ragnest.types import ImageRef

__all__ = ["FittedImage", "fit_image", "fit_to_tokens"]

_PROBE_DPI = 9  # an A4 page is 74 x 105 pixels at this resolution: its size, for ~nothing


def fit_to_tokens(
    width: int, height: int, tokens: int, unit: int, *, min_side: int | None = None
) -> tuple[int, int]:
    """The largest ``(w, h)``, multiples of ``unit``, with the aspect ratio of
    ``width x height`` (as near as the grid allows), ``(w/unit) * (h/unit) <= tokens``,
    never larger than the image itself (rounded up to one unit); ``min_side`` (default
    ``unit``) is the smallest side kept.

    >>> fit_to_tokens(595, 842, tokens=64, unit=28)
    (196, 252)
    """
    if width <= 0 or height <= 0 or unit <= 0 or tokens < 1:
        raise ValueError("width, height, unit and tokens must be positive")
    low = max(1, (min_side or unit) // unit)
    max_cols = max(low, math.ceil(width / unit))
    max_rows = max(low, math.ceil(height / unit))
    aspect = height / width
    best: tuple[int, float, int, int] | None = None
    for cols in range(low, max_cols + 1):
        ideal = cols * aspect
        for rows in {math.floor(ideal), math.ceil(ideal)}:  # at most one row off the shape
            rows = min(max(rows, low), max_rows)
            if cols * rows > tokens:
                continue
            error = abs(math.log((rows / cols) / aspect))
            key = (cols * rows, -error, cols, rows)
            if best is None or key[:2] > best[:2]:
                best = key
    if best is None:  # not even low x low fits: the smallest allowed image
        return low * unit, low * unit
    return best[2] * unit, best[3] * unit


@dataclass(frozen=True)
class FittedImage:
    """Encoded pixels of one image at an exact grid size: ``tokens`` cells of ``unit``."""

    data: bytes
    mime: str
    width: int
    height: int
    tokens: int

    def data_url(self) -> str:
        """``data:<mime>;base64,...``: how an OpenAI-compatible server takes inline images."""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def fit_image(
    ref: ImageRef,
    *,
    tokens: int,
    unit: int,
    format: str = "jpeg",
    quality: int | None = None,
    max_dpi: int = 200,
    renderer: Renderer | None = None,
) -> FittedImage:
    """``ref`` rendered (or loaded) and resized to :func:`fit_to_tokens` of its size, then
    encoded as ``format`` (``"jpeg"``, ``"webp"`` or ``"png"``).

    Document pages are rendered at the resolution that gives about the pixels the
    budget allows, at most ``max_dpi`` (or the ref's own dpi when higher); image files
    are loaded at their own size and scaled down. The image is never enlarged by more than
    the rounding to one ``unit``. Raises :class:`~ragnest.errors.ParseError` naming the
    file when its pixels cannot be had.
    """
    from ragnest.media.mupdf import pymupdf

    if tokens < 1 or unit < 1:
        raise ValueError(f"tokens and unit must be positive, got {tokens} and {unit}")
    fmt = normalize_format(format)
    renderer = renderer or default_renderer()
    # a little headroom over the budget so the grid rounding never has to enlarge
    budget_px = int(tokens * unit * unit * 1.25)
    if ref.blob:
        pix = renderer.pixmap(ref)
    else:
        ref = replace(ref, dpi=_page_dpi(ref, budget_px, max(int(ref.dpi), int(max_dpi)),
                                         renderer))
        pix = renderer.pixmap(ref, max_pixels=budget_px * 2)
    width, height = fit_to_tokens(pix.width, pix.height, tokens=tokens, unit=unit)
    if (width, height) != (pix.width, pix.height):
        pix = pymupdf.Pixmap(pix, width, height, None)
    data = encode_pixmap(pix, fmt, quality=quality)
    return FittedImage(data=data, mime=mime_type(fmt), width=width, height=height,
                       tokens=(width // unit) * (height // unit))


def _page_dpi(ref: ImageRef, budget_px: int, max_dpi: int, renderer: Renderer) -> int:
    """The resolution that renders ``ref`` (a page or its clip) at about ``budget_px``
    pixels, at most ``max_dpi``: the clip's size in points, or a 9-dpi probe's."""
    if ref.clip is not None:
        x0, y0, x1, y1 = ref.clip
        w_pt, h_pt = max(1.0, x1 - x0), max(1.0, y1 - y0)
    else:
        probe = renderer.pixmap(replace(ref, dpi=_PROBE_DPI))
        w_pt, h_pt = probe.width * 72 / _PROBE_DPI, probe.height * 72 / _PROBE_DPI
    dpi = 72.0 * math.sqrt(budget_px / (w_pt * h_pt))
    return max(1, min(max_dpi, int(dpi)))
