"""The ladder as a layer over any embedder: model rows in, one vector per level out.

An embedder hands over each item's rows (:class:`TokenRows`: unit ``(L, d)`` token or
patch vectors, optionally the patch grid of a page image); :class:`LadderBuilder`
applies the ladder declared in YAML:

1. an optional PCA rotation (``rotation: pca``), fitted once, explicitly, on a corpus
   sample (:meth:`LadderBuilder.fit`) and stored with the collection, so prefixes are
   meaningful for models not trained with Matryoshka dimensions; nothing is ever fitted
   implicitly, and vectors asked for before a fit (or a loaded state) are an error;
2. per level, prefix truncation to ``dim`` and re-normalisation;
3. per multi-vector level, pooling to fewer rows (``pool``: kmeans, hierarchical,
   grid/rows/columns over the patch grid, or prefix for native nested vector sets);
   a one-vector level is the mean of the rows;
4. the level's storage dtype (``float16`` levels come out as float16).

Queries are never pooled: every level gets all query rows (or their mean).

    >>> import numpy as np
    >>> from ragnest.ladder import Ladder
    >>> ladder = Ladder([
    ...     {"name": "coarse", "dim": 32, "index": "hnsw"},
    ...     {"name": "mid", "dim": 64, "vectors": 6, "pool": "grid"},
    ...     {"name": "fine", "dim": 64, "pool": "hierarchical", "pool_factor": 2},
    ... ])
    >>> builder = LadderBuilder(ladder, rotation="pca")
    >>> rng = np.random.default_rng(0)
    >>> page = TokenRows(rng.normal(size=(26, 64)), grid=(4, 6), grid_rows=np.arange(2, 26))
    >>> _ = builder.fit([page.rows, rng.normal(size=(200, 64))])
    >>> {k: v.shape for k, v in builder.document(page).items()}
    {'coarse': (32,), 'mid': (6, 64), 'fine': (13, 64)}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ragnest.errors import ConfigError, EmbeddingError
from ragnest.ladder.levels import Ladder, LadderLike
from ragnest.ladder.pooling import (
    l2_normalize,
    pool_grid,
    pool_hierarchical,
    pool_tokens,
    pooled_count,
)
from ragnest.ladder.rotation import PcaRotation
from ragnest.types import Level

__all__ = ["LadderBuilder", "TokenRows", "cast_level"]

logger = logging.getLogger(__name__)

Rotation = Literal["none", "pca"]
_GRID_POOLS = ("grid", "rows", "columns")


@dataclass(frozen=True)
class TokenRows:
    """One item's model output before the ladder.

    ``rows``: ``(L, d)`` vectors (unit-normalised by the builder). ``grid``: ``(h, w)``
    of the page's patch grid, with ``grid_rows`` the ``h * w`` row indices of those
    patches in row-major order (the other rows, e.g. prompt tokens, are kept apart).
    ``weights``: optional per-row weights for pooled means.
    """

    rows: np.ndarray
    grid: tuple[int, int] | None = None
    grid_rows: np.ndarray | None = None
    weights: np.ndarray | None = None


def _as_rows(item: TokenRows | np.ndarray) -> TokenRows:
    if isinstance(item, TokenRows):
        return item
    return TokenRows(np.atleast_2d(np.asarray(item, dtype=np.float32)))


def cast_level(x: np.ndarray, lv: Level) -> np.ndarray:
    """``x`` as the level's array dtype (float16 levels float16, the rest float32)."""
    dtype = np.float16 if lv.datatype == "float16" else np.float32
    return np.ascontiguousarray(x, dtype=dtype)


def _check_rotation_dim(owner: str, rotation: PcaRotation | None, model_dim: int | None) -> None:
    if rotation is not None and model_dim is not None and rotation.dim != model_dim:
        raise EmbeddingError(
            f"{owner}: the fitted rotation is {rotation.dim}-d but the model gives "
            f"{model_dim}-d vectors"
        )


class LadderBuilder:
    """Turns model rows into ``{level name: vector}`` for one embedder's ladder.

    ``ladder``: a :class:`~ragnest.ladder.Ladder` (or the levels / dicts to parse into
    one). ``rotation="pca"`` needs :meth:`fit` (or :meth:`load_state` with a stored fit)
    before any vectors are made; ``owner`` names the embedder in errors.
    """

    def __init__(
        self, ladder: LadderLike, *, rotation: Rotation = "none", owner: str = "embedder"
    ) -> None:
        if rotation not in ("none", "pca"):
            raise ConfigError(f"rotation must be 'none' or 'pca', got {rotation!r}")
        self.ladder = Ladder.coerce(ladder)
        self.rotation_kind: Rotation = rotation
        self.owner = owner
        self._rotation: PcaRotation | None = None
        self._fallback_logged = False

    @property
    def levels(self) -> list[Level]:
        """The ladder's levels, coarse to fine."""
        return list(self.ladder.levels)

    # -- the fitted rotation ---------------------------------------------------------
    @property
    def needs_fit(self) -> bool:
        """True while a PCA rotation is asked for and not fitted or loaded yet."""
        return self.rotation_kind == "pca" and self._rotation is None

    @property
    def rotation(self) -> PcaRotation | None:
        return self._rotation

    def fit(
        self, samples: Sequence[TokenRows | np.ndarray | None], *, max_rows: int = 50_000
    ) -> PcaRotation:
        """Fit the PCA rotation on sample rows (model outputs; ``None`` entries skipped).

        At most ``max_rows`` rows are used (an even stride over the sample).
        """
        rows = [_as_rows(s).rows for s in samples if s is not None]
        parts = [np.atleast_2d(np.asarray(r, dtype=np.float32)) for r in rows if np.size(r)]
        if not parts:
            raise EmbeddingError(f"{self.owner}: no rows to fit the PCA rotation on")
        x = l2_normalize(np.concatenate(parts))
        if x.shape[0] < x.shape[1]:
            raise EmbeddingError(
                f"{self.owner}: rotation 'pca' needs at least {x.shape[1]} sample rows to fit "
                f"a {x.shape[1]}-d rotation, got {x.shape[0]} (one vector per chunk gives one "
                "row): fit on a larger sample of the corpus (Pipeline.fit(sample) or "
                "`ragnest fit`), or raise the ingest batch_size"
            )
        if x.shape[0] > max_rows:
            x = x[np.linspace(0, x.shape[0] - 1, max_rows).astype(int)]
        self._rotation = PcaRotation.fit(x)
        logger.info(
            "%s: fitted a PCA rotation on %d rows; the first quarter of the dims holds "
            "%.0f%% of the variance",
            self.owner,
            x.shape[0],
            100 * float(self._rotation.explained[: max(1, x.shape[1] // 4)].sum()),
        )
        return self._rotation

    def state(self) -> dict[str, Any] | None:
        """The fitted state to store with the collection (``None`` when nothing is fitted)."""
        return None if self._rotation is None else self._rotation.to_state()

    def load_state(self, state: Mapping[str, Any] | None, *, model_dim: int | None = None) -> None:
        """Restore :meth:`state` output read back from the collection (``None``: nothing
        stored, nothing changes). With ``model_dim``, a rotation of another dimension is
        refused (and the held state kept)."""
        if state is None:
            return
        if self.rotation_kind != "pca":
            raise EmbeddingError(
                f"{self.owner}: the collection holds a fitted rotation but the ladder has "
                "rotation 'none'"
            )
        try:
            rotation = PcaRotation.from_state(state)
        except ValueError as err:
            raise EmbeddingError(f"{self.owner}: {err}") from err
        _check_rotation_dim(self.owner, rotation, model_dim)
        self._rotation = rotation

    def require_fitted(self) -> None:
        """Raise :class:`EmbeddingError` while :attr:`needs_fit` (before any model runs)."""
        if self.needs_fit:
            raise EmbeddingError(
                f"{self.owner} needs fitting: its ladder's PCA rotation (rotation: pca) is "
                "not fitted yet and none was loaded. Fit it on a sample of the corpus first "
                "(Pipeline.fit(sample) or `ragnest fit`), ingest into a new collection (the "
                "ingest fits it on its first batch and stores it), or open a collection that "
                "holds it"
            )

    def check_dim(self, model_dim: int) -> None:
        """Raise :class:`EmbeddingError` when a fitted or loaded rotation is not
        ``model_dim``-d (a state stored for another model)."""
        _check_rotation_dim(self.owner, self._rotation, model_dim)

    def _rotate(self, rows: np.ndarray) -> np.ndarray:
        if self.rotation_kind == "none":
            return rows
        self.require_fitted()
        assert self._rotation is not None
        return self._rotation.apply(rows)

    # -- vectors ---------------------------------------------------------------------
    def _checked(self, item: TokenRows | np.ndarray) -> TokenRows:
        item = _as_rows(item)
        rows = np.asarray(item.rows, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[0] == 0 or not np.isfinite(rows).all():
            raise EmbeddingError(f"{self.owner}: model returned no finite rows")
        rows = l2_normalize(self._rotate(l2_normalize(rows)))
        return TokenRows(rows, item.grid, item.grid_rows, item.weights)

    def document(self, item: TokenRows | np.ndarray) -> dict[str, np.ndarray]:
        """``{level: vector}`` for one stored item: 1-d for one-vector levels, else rows."""
        item = self._checked(item)
        return {lv.name: cast_level(self._level(lv, item), lv) for lv in self.ladder}

    def query(self, item: TokenRows | np.ndarray) -> dict[str, np.ndarray]:
        """``{level: vector}`` for a query: every row truncated (no pooling), or the mean,
        in the level's dtype."""
        item = self._checked(item)
        out: dict[str, np.ndarray] = {}
        for lv in self.ladder:
            if lv.is_multi:
                vec = l2_normalize(item.rows[:, : lv.dim])
            else:
                vec = l2_normalize(item.rows.mean(axis=0)[: lv.dim])
            out[lv.name] = cast_level(vec, lv)
        return out

    def _level(self, lv: Level, item: TokenRows) -> np.ndarray:
        rows = item.rows
        if not lv.is_multi:
            w = item.weights
            mean = rows.mean(axis=0) if w is None else (np.asarray(w)[:, None] * rows).sum(0)
            return l2_normalize(mean[: lv.dim])
        return self.pool_rows(lv, item)

    def pool_rows(self, lv: Level, item: TokenRows | np.ndarray) -> np.ndarray:
        """One multi-vector level's rows for a document: truncated to ``lv.dim``, then
        pooled as the level says (no rotation here: rows are taken as they are)."""
        item = _as_rows(item)
        r = l2_normalize(np.asarray(item.rows, dtype=np.float32)[:, : lv.dim])
        if lv.pool in _GRID_POOLS:
            if item.grid is not None and item.grid_rows is not None:
                return self._grid(lv, r, item)
            if not self._fallback_logged:
                logger.info(
                    "%s: level %r pools a patch grid but an item has none (text); "
                    "using hierarchical pooling for such items",
                    self.owner,
                    lv.name,
                )
                self._fallback_logged = True
        n = pooled_count(r.shape[0], n=lv.vectors, pool_factor=lv.pool_factor)
        if n >= r.shape[0]:
            return r
        if lv.pool == "prefix":
            return r[:n]
        if lv.pool == "kmeans":
            return pool_tokens(r, n, weights=item.weights, seed=0)
        return pool_hierarchical(r, n=n, weights=item.weights)  # also grids without a grid

    def _grid(self, lv: Level, r: np.ndarray, item: TokenRows) -> np.ndarray:
        assert item.grid is not None and item.grid_rows is not None
        idx = np.asarray(item.grid_rows, dtype=np.int64)
        rest = np.setdiff1d(np.arange(r.shape[0]), idx)
        h, w = item.grid
        cells = h * w if lv.pool_factor is None else pooled_count(h * w, pool_factor=lv.pool_factor)
        if lv.vectors is not None:
            cells = min(cells, lv.vectors - (1 if rest.size else 0))
        weights = None if item.weights is None else np.asarray(item.weights)[idx]
        pooled = pool_grid(
            r[idx],
            grid=(h, w),
            n=max(1, cells),
            mode=lv.pool,
            weights=weights,  # type: ignore[arg-type]
        )
        if rest.size and (lv.vectors is None or lv.vectors > 1):
            pooled = np.concatenate([pooled, l2_normalize(r[rest].mean(axis=0))[None, :]])
        return pooled
