"""Visual-token compression at generation time: plugins declared in YAML, each reporting
the visual tokens before and after it.

Every image the generator shows its model is a :class:`PageImage`. Before any plugin it is
sized as the model's processor would size it by default (the "no plugin" baseline); each
plugin then changes the images in order:

* ``resolution`` -- the visual-token budget of the request (:class:`Resolution`): shared
  across the pages by rerank relevance with a legibility floor per page
  (:func:`~ragnest.generators.evidence.split_budget`), each page resized to exact
  multiples of the model's cell (:func:`~ragnest.generators.evidence.fit_to_tokens`), so
  the processor does not resize again. The baseline every paper compares with.
* ``dedupe`` -- drops blank and exactly duplicated block rows and columns of document pages
  (:class:`Dedupe`): a model's image must stay a rectangle of cells (Qwen's M-RoPE and
  Idefics3's tiles both need the grid), so whole rows and columns of cells go -- white
  margins, gaps between paragraphs, a running header repeated on every page. Where a
  page shrank, the kept rows and columns are recorded so grounding boxes map back.
* ``fastv`` -- FastV-style pruning inside the model (:class:`FastV`): after layer ``layer``,
  the ``drop_ratio`` share of image tokens that receive the least attention from the last
  prompt token is dropped; the kept tokens keep their original (M-RoPE) positions. Qwen2-VL
  family only; off unless declared; it changes no image here (``ragnest._hf.prune``).

Declared as a list of ``{type: ..., <parameters>}``, checked without loading anything::

    >>> plugins = build_plugins([{"type": "resolution", "budget": 1024, "floor": 128},
    ...                          {"type": "dedupe"}], owner="generator/vlm")
    >>> [p.name for p in plugins]
    ['resolution', 'dedupe']
    >>> build_plugins([{"type": "resolution", "budgte": 5}], owner="generator/vlm")
    Traceback (most recent call last):
    ...
    ragnest.errors.ConfigError: generator/vlm.compression[0]: unknown parameter 'budgte' for Resolution; did you mean 'budget'? (known: budget, cap, floor)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Protocol

import numpy as np

from ragnest._validate import AtLeast, did_you_mean, validate_params
from ragnest.errors import ConfigError
from ragnest.generators.evidence import fit_to_tokens, split_budget

__all__ = [
    "PLUGINS",
    "Dedupe",
    "FastV",
    "PageImage",
    "Plugin",
    "Resolution",
    "build_plugins",
]

BBox = tuple[float, float, float, float]


class Layout(Protocol):
    """What a plugin needs to know of the model: :class:`ragnest._hf.vlm.VisionLayout`."""

    unit: int

    def tokens(self, width: int, height: int) -> int: ...

    def units(self, tokens: int) -> int: ...

    def default_size(self, width: int, height: int) -> tuple[int, int]: ...


@dataclass
class PageImage:
    """One image of the prompt: which evidence it belongs to, the rendered original, the
    image as the model will see it, and how the latter maps back to the former.

    ``rows`` / ``cols`` are the cell indices of the pre-dedupe image that were kept
    (``None``: all); ``base`` is that pre-dedupe image's size. ``budget`` is the visual
    tokens the ``resolution`` plugin allotted to the image's page (``None``: no budget).
    """

    index: int
    source: Any = field(repr=False)
    weight: float = 1.0
    region: BBox | None = None
    image: Any = field(default=None, repr=False)
    base: tuple[int, int] = (0, 0)
    rows: list[int] | None = None
    cols: list[int] | None = None
    budget: int | None = None

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.image.size)  # type: ignore[return-value]

    def resize(self, size: tuple[int, int]) -> None:
        """Show the original at ``size`` (whole cells), forgetting earlier dedupe maps."""
        self.image = self.source if tuple(self.source.size) == size else self.source.resize(size, 3)
        self.base, self.rows, self.cols = size, None, None

    def to_base(self, x: float, y: float, unit: int) -> tuple[float, float]:
        """A point in pixels of :attr:`image` -> pixels of the pre-dedupe image."""
        return _unmap(x, self.cols, unit), _unmap(y, self.rows, unit)


def _unmap(v: float, kept: list[int] | None, unit: int) -> float:
    if kept is None:
        return v
    cell = min(max(int(v // unit), 0), len(kept) - 1)
    return kept[cell] * unit + (v - cell * unit)


class Plugin(Protocol):
    """A compression step: changes the images (or, in-model, nothing here)."""

    name: ClassVar[str]

    def apply(self, images: list[PageImage], layout: Layout) -> list[PageImage]: ...


@dataclass(kw_only=True)
class Resolution:
    """The request's visual-token budget (see the module docs): ``budget`` tokens shared by
    relevance, at least ``floor`` per page (a page that cannot get it is left out, lowest
    ranked first), at most ``cap``. A lower-ranked page is never allotted more than a
    higher-ranked one; a page uses at most its allotment, less when its image is smaller
    (an image is never enlarged past its rendered size)."""

    name: ClassVar[str] = "resolution"
    budget: Annotated[int, AtLeast(1)] = 3072
    floor: Annotated[int, AtLeast(1)] = 256
    cap: int | None = 1280

    def apply(self, images: list[PageImage], layout: Layout) -> list[PageImage]:
        by_page: dict[int, list[PageImage]] = {}
        for im in images:
            by_page.setdefault(im.index, []).append(im)
        order = sorted(by_page)
        weights = [max(im.weight for im in by_page[i]) for i in order]
        shares = split_budget(weights, self.budget, floor=self.floor, cap=self.cap)
        kept: list[PageImage] = []
        for i, share in zip(order, shares):
            group = by_page[i]
            for im in group:  # a chunk's images share its tokens evenly
                units = layout.units(share // len(group))
                if units < 1:
                    continue
                w, h = im.source.size
                im.resize(fit_to_tokens(w, h, tokens=units, unit=layout.unit))
                im.budget = share
                kept.append(im)
        return kept


@dataclass(kw_only=True)
class Dedupe:
    """Drops blank and exactly repeated rows and columns of cells (see the module docs).

    A band of cells is blank when every channel's values in it span at most ``tolerance``
    (a white margin); a row band is a duplicate when its pixels equal a band already kept
    in this request (a running header). At least one row and one column stay."""

    name: ClassVar[str] = "dedupe"
    tolerance: Annotated[int, AtLeast(0)] = 8
    blank: bool = True
    duplicates: bool = True

    def apply(self, images: list[PageImage], layout: Layout) -> list[PageImage]:
        seen: set[tuple[int, bytes]] = set()
        u = layout.unit
        for im in images:
            w, h = im.size
            if w % u or h % u:  # not in whole cells (no plugin sized it): the default size
                im.resize(layout.default_size(*im.source.size))
                w, h = im.size
            pixels = np.asarray(im.image.convert("RGB"))
            rows = [r for r in range(h // u) if self._keep_row(pixels[r * u:(r + 1) * u], seen)]
            cols = [c for c in range(w // u)
                    if not (self.blank and self._is_blank(pixels[:, c * u:(c + 1) * u]))]
            rows, cols = rows or [0], cols or [0]
            if len(rows) == h // u and len(cols) == w // u:
                continue
            kept = np.concatenate([pixels[r * u:(r + 1) * u] for r in rows], axis=0)
            kept = np.concatenate([kept[:, c * u:(c + 1) * u] for c in cols], axis=1)
            base_rows, base_cols = im.rows, im.cols
            im.image = _from_array(np.ascontiguousarray(kept))
            im.rows = [base_rows[r] for r in rows] if base_rows else rows
            im.cols = [base_cols[c] for c in cols] if base_cols else cols
        return images

    def _is_blank(self, band: np.ndarray) -> bool:
        flat = band.reshape(-1, band.shape[-1])
        return bool((flat.max(axis=0).astype(int) - flat.min(axis=0)).max() <= self.tolerance)

    def _keep_row(self, band: np.ndarray, seen: set[tuple[int, bytes]]) -> bool:
        if self.blank and self._is_blank(band):
            return False
        if self.duplicates:
            key = (band.shape[1], hashlib.blake2b(band.tobytes(), digest_size=16).digest())
            if key in seen:
                return False
            seen.add(key)
        return True


def _from_array(arr: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(arr)


@dataclass(kw_only=True)
class FastV:
    """FastV-style in-model pruning (Qwen2-VL family): after decoder layer ``layer``, drop
    the ``drop_ratio`` share of image tokens that get the least attention from the last
    prompt token. ``drop_ratio: 0`` runs the pruning path and drops nothing."""

    name: ClassVar[str] = "fastv"
    layer: Annotated[int, AtLeast(0)] = 2
    drop_ratio: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.drop_ratio < 1.0:
            raise ConfigError(f"fastv: drop_ratio must be within [0, 1), got {self.drop_ratio}")

    def apply(self, images: list[PageImage], layout: Layout) -> list[PageImage]:
        return images  # in-model: see ragnest._hf.prune

    def dropped(self, image_tokens: int) -> int:
        """Image tokens this plugin drops from ``image_tokens``."""
        return int(math.floor(image_tokens * self.drop_ratio))


PLUGINS: dict[str, type] = {"resolution": Resolution, "dedupe": Dedupe, "fastv": FastV}


def build_plugins(specs: Sequence[Mapping[str, Any]], *, owner: str) -> list[Any]:
    """The plugins declared by ``specs`` (``{type: name, **params}`` each), in order;
    :class:`ConfigError` naming the entry for an unknown type or parameter."""
    out: list[Any] = []
    names: set[str] = set()
    for i, spec in enumerate(specs):
        where = f"{owner}.compression[{i}]"
        if not isinstance(spec, Mapping) or "type" not in spec:
            raise ConfigError(f"{where}: each plugin is a mapping with a 'type' "
                              f"({', '.join(PLUGINS)})")
        kind = str(spec["type"])
        if kind not in PLUGINS:
            raise ConfigError(f"{where}: unknown plugin {kind!r}" + did_you_mean(kind, PLUGINS)
                              + f" (known: {', '.join(PLUGINS)})")
        if kind in names:
            raise ConfigError(f"{where}: plugin {kind!r} is declared twice")
        names.add(kind)
        params = {k: v for k, v in spec.items() if k != "type"}
        validate_params(PLUGINS[kind], params, where=where)
        try:
            out.append(PLUGINS[kind](**params))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}: {err}") from err
    return out
