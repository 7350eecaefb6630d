"""Visual fingerprints of figures, tables and pictures: offline image-query matching.

A user screenshots a figure or table and asks where it comes from. A text-only
pipeline can read the screenshot with OCR, but plots, diagrams and photos carry little
or no text. This embedder gives every visual segment of a chunk (figure, picture,
table, standalone image), and every region its metadata lists under
``"visual_regions"`` (drawings the PDF layout found but does not call figures), a
small appearance vector: the region rendered in grey,
trimmed to its ink (white margins removed, so a screenshot with more or less margin
matches), box-averaged to ``grid x grid`` and standardised. The dot product of two
fingerprints is their pixel correlation; a chunk's score is the best match among its
visuals (MaxSim). No model, no download, a few milliseconds per figure::

    >>> import numpy as np
    >>> from ragnest.embedders.thumbnail import fingerprint
    >>> img = np.full((120, 200, 3), 255, np.uint8); img[30:90, 40:160] = 0
    >>> img[50:70, 60:100] = 200
    >>> wide = np.pad(img, ((20, 35), (10, 45), (0, 0)), constant_values=255)  # more margin
    >>> round(float(fingerprint(img) @ fingerprint(wide)), 3)
    1.0

It finds near-copies (the same figure, rendered at another zoom or cropped with other
margins); it is not a semantic image model ("a plot like this one"): use a CLIP/SigLIP
or ColPali embedder (``ragnest[hf]``) for that. Chunks without visuals get no vector
and text queries give ``None``, so the route only runs for image queries.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from ragnest.errors import ConfigError, ParseError
from ragnest.media.geometry import area
from ragnest.media.render import Renderer
from ragnest.types import Chunk, ImageRef, Query, Vector, VectorSpec

__all__ = ["REGIONS_KEY", "ThumbnailEmbedder", "fingerprint"]

logger = logging.getLogger(__name__)

_LEVEL = "crops"
_INK = 235  # grey levels above this count as paper


def _grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image.astype(np.float32)
    rgb = image[..., :3].astype(np.float32)
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _box_resize(grey: np.ndarray, grid: int) -> np.ndarray:
    """Area-average ``grey`` down (or repeat it up, then average) to ``grid x grid``."""
    h, w = grey.shape
    if h < grid or w < grid:
        grey = np.repeat(np.repeat(grey, -(-grid // h), axis=0), -(-grid // w), axis=1)
        h, w = grey.shape
    rows = np.linspace(0, h, grid + 1).astype(int)
    cols = np.linspace(0, w, grid + 1).astype(int)
    sums = np.add.reduceat(np.add.reduceat(grey, rows[:-1], axis=0), cols[:-1], axis=1)
    counts = np.outer(np.diff(rows), np.diff(cols))
    return sums / counts


def fingerprint(image: np.ndarray, grid: int = 32) -> np.ndarray | None:
    """The unit-length appearance vector of ``image`` (``H x W [x 3]`` uint8), or
    ``None`` for a blank image."""
    grey = _grey(image)
    ink = grey < _INK
    if not ink.any():
        return None
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    grey = grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    small = _box_resize(grey, grid).ravel()
    small -= small.mean()
    norm = float(np.linalg.norm(small))
    if norm < 1e-6:  # one flat colour: a filled box, no structure to match
        return None
    return (small / norm).astype(np.float32)


#: Chunk metadata listing more regions of its page worth a fingerprint (drawings the
#: layout does not classify as figures), ``[[x0, y0, x1, y1], ...]`` in PDF points.
REGIONS_KEY = "visual_regions"


def _visual_refs(chunk: Chunk) -> list[tuple[ImageRef, float]]:
    """The chunk's visuals with their areas: image and table segments, the regions its
    metadata lists (on its page), or a standalone image chunk's own image."""
    refs = [(s.image, area(s.bbox) if s.bbox else 0.0) for s in chunk.segments
            if s.kind in ("image", "table") and s.image]
    page = chunk.image
    for region in chunk.metadata.get(REGIONS_KEY) or ():
        if page is not None and chunk.page is not None and len(region) == 4:
            clip = tuple(float(v) for v in region)
            refs.append((ImageRef(source=page.source, page=chunk.page, clip=clip,  # type: ignore[arg-type]
                                  dpi=page.dpi), area(clip)))  # type: ignore[arg-type]
    if chunk.kind == "image" and chunk.image is not None and not refs:
        refs.append((chunk.image, 0.0))
    return refs


@dataclass(kw_only=True)
class ThumbnailEmbedder:
    """Appearance fingerprints of a chunk's visuals, one multi-vector level ``visual``.

    ``grid`` sets the fingerprint size (``grid**2`` dimensions); ``render_side`` the
    pixel size a visual is rendered at before fingerprinting (its longer side);
    ``max_visuals`` caps how many visuals of one chunk are kept (largest first).
    """

    #: Parser workers may each hold a copy and embed what they parse (a small CPU model).
    embeds_in_workers: ClassVar[bool] = True

    grid: int = 32
    render_side: int = 192
    max_visuals: int = 16

    def __post_init__(self) -> None:
        if not 8 <= self.grid <= 64:
            raise ConfigError("embedder/thumbnail: grid must be between 8 and 64")
        if self.render_side < self.grid or self.max_visuals < 1:
            raise ConfigError("embedder/thumbnail: need render_side >= grid, max_visuals >= 1")
        self._renderer: Renderer | None = None

    def warm_up(self) -> None:
        """Make this embedder's renderer (it opens documents as visuals need them)."""
        if self._renderer is None:
            self._renderer = Renderer()

    def close(self) -> None:
        """Close the documents the renderer keeps open."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def vector_specs(self) -> list[VectorSpec]:
        """One multi-vector level, exact MaxSim (no index: few points carry it)."""
        return [VectorSpec(name=_LEVEL, kind="multi", dim=self.grid * self.grid,
                           datatype="float16")]

    def identity(self) -> dict[str, Any]:
        """What stored fingerprints depend on."""
        return {"model": "ragnest/thumbnail", "grid": self.grid,
                "render_side": self.render_side, "version": 1}

    def _render(self, ref: ImageRef) -> np.ndarray:
        if self._renderer is None:  # used without warm_up: make it now
            self._renderer = Renderer()
        if ref.clip is not None and ref.page is not None and not ref.blob:
            x0, y0, x1, y1 = ref.clip
            side = max(x1 - x0, y1 - y0, 1.0)
            ref = replace(ref, dpi=max(8, min(300, round(72 * self.render_side / side))))
        return self._renderer.array(ref, max_pixels=4 * self.render_side * self.render_side)

    def _vectors(self, refs: Sequence[ImageRef], where: str) -> np.ndarray | None:
        rows = []
        for ref in refs:
            try:
                vec = fingerprint(self._render(ref), self.grid)
            except ParseError as err:  # a moved file: the chunk keeps its other vectors
                logger.warning("%s: no visual fingerprint: %s", where, err)
                continue
            if vec is not None:
                rows.append(vec)
        return np.stack(rows) if rows else None

    def embed_documents(self, chunks: Sequence[Chunk]) -> list[dict[str, Vector]]:
        """``{"crops": rows}`` for chunks with visuals, ``{}`` for the others."""
        out: list[dict[str, Vector]] = []
        for chunk in chunks:
            visuals = _visual_refs(chunk)
            if len(visuals) > self.max_visuals:  # the largest ones
                visuals = sorted(visuals, key=lambda v: -v[1])[: self.max_visuals]
            refs = [ref for ref, _ in visuals]
            vecs = self._vectors(refs, f"{chunk.source} p.{chunk.page}") if refs else None
            out.append({_LEVEL: vecs} if vecs is not None else {})
        return out

    def embed_queries(self, queries: Sequence[Query]) -> list[dict[str, Vector] | None]:
        """:meth:`embed_query` for each query."""
        return [self.embed_query(q) for q in queries]

    def embed_query(self, query: Query) -> dict[str, Vector] | None:
        """The query image's fingerprint, or ``None`` for text-only or blank images."""
        if query.image is None:
            return None
        vecs = self._vectors([query.image], "query image")
        return {_LEVEL: vecs} if vecs is not None else None

