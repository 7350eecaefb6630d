"""The Matryoshka ladder: :class:`Ladder`, level parsing, store specs, truncation, MaxSim.

Pure numpy. An embedder's ladder is declared as a list of dicts (YAML) and parsed once
into a :class:`Ladder` of :class:`~ragnest.types.Level` objects; each level becomes one
store vector. Binding it to the model's dimension checks the dims without changing the
ladder the embedder was configured with.
:class:`~ragnest.ladder.builder.LadderBuilder` turns any embedder's rows into those
vectors (pooling from :mod:`ragnest.ladder.pooling`, PCA from :mod:`ragnest.ladder.rotation`)::

    >>> import numpy as np
    >>> from ragnest.ladder import Ladder, truncate, pool_tokens
    >>> ladder = Ladder([
    ...     {"name": "coarse", "dim": 64, "index": "hnsw"},
    ...     {"name": "fine", "dim": 128, "vectors": 32},
    ... ])
    >>> bound = ladder.bind(256)
    >>> [s.kind for s in bound.specs()], bound.model_dim, ladder.model_dim
    (['dense', 'multi'], 256, None)
    >>> x = np.random.default_rng(0).normal(size=(100, 256)).astype(np.float32)
    >>> truncate(x, 64).shape, pool_tokens(truncate(x, 128), 32).shape
    ((100, 64), (32, 128))
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional, Union

import numpy as np

from ragnest._validate import AtLeast, validate_params
from ragnest.errors import ConfigError
from ragnest.ladder.pooling import l2_normalize, pool_tokens
from ragnest.ladder.rotation import apply_pca, fit_pca
from ragnest.types import Datatype, Level, PoolMethod, VectorSpec

__all__ = [
    "Ladder",
    "apply_pca",
    "fit_pca",
    "l2_normalize",
    "ladder_to_specs",
    "maxsim",
    "parse_ladder",
    "pool_tokens",
    "truncate",
]

logger = logging.getLogger(__name__)

_EPS = 1e-12


@dataclass(kw_only=True)
class _LevelKeys:
    """The keys of one ladder level in YAML (checked by :mod:`ragnest._validate`)."""

    name: str
    dim: Annotated[int, AtLeast(1)]
    vectors: Union[Annotated[int, AtLeast(1)], Literal["all"]] = 1
    index: Literal["hnsw", "none"] = "none"
    quantization: Optional[Literal["binary", "scalar"]] = None
    datatype: Datatype = "float32"
    pool: PoolMethod = "kmeans"
    pool_factor: Optional[Annotated[float, AtLeast(1)]] = None

_FACTOR_POOLS = ("kmeans", "hierarchical", "grid", "prefix")


def truncate(x: np.ndarray, dim: int) -> np.ndarray:
    """Keep the first ``dim`` dimensions (1-d or 2-d) and re-normalise.

    Valid for Matryoshka-trained models (or after :func:`apply_pca`).

    >>> [round(float(v), 4) for v in truncate(np.array([1.0, 1.0, 5.0]), 2)]
    [0.7071, 0.7071]
    """
    x = np.asarray(x)
    if dim <= 0:
        raise ValueError(f"dim must be positive, got {dim}")
    if dim > x.shape[-1]:
        raise ValueError(f"cannot truncate {x.shape[-1]}-d vectors to {dim} dims")
    return l2_normalize(x[..., :dim])


def maxsim(q_rows: np.ndarray, d_rows: np.ndarray) -> float:
    """Late-interaction score: sum over query rows of the best dot product with a doc row.

    >>> maxsim(np.eye(2), np.array([[1.0, 0.0]]))
    1.0
    """
    q = np.atleast_2d(np.asarray(q_rows, dtype=np.float32))
    d = np.atleast_2d(np.asarray(d_rows, dtype=np.float32))
    if q.shape[0] == 0 or d.shape[0] == 0:
        return 0.0
    return float((q @ d.T).max(axis=1).sum())


def parse_ladder(
    ladder: Sequence[Mapping[str, Any] | Level] | Ladder, *, model_dim: int | None = None
) -> list[Level]:
    """Validate a ladder declared as dicts and return its levels, coarse to fine.

    :class:`Ladder` does this once and keeps the result; this function is the check
    itself. Rules: at least one level; names unique and non-empty; ``dim`` positive and at most
    ``model_dim``; ``vectors`` a positive int or ``"all"``; exactly one level has
    ``index: hnsw`` and it is the first one. Errors are :class:`ConfigError` naming the level.
    """
    if isinstance(ladder, Ladder):
        if model_dim is not None:
            _check_dims(ladder.levels, model_dim, owner=None)
        return list(ladder.levels)
    if isinstance(ladder, Mapping) or not isinstance(ladder, Sequence) or not ladder:
        raise ConfigError("ladder must be a non-empty list of levels ({name, dim, ...})")
    levels: list[Level] = []
    seen: set[str] = set()
    for pos, raw in enumerate(ladder):
        where = f"ladder level #{pos + 1}"
        if isinstance(raw, Level):
            raw = raw.to_dict()
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: 'name' must be a non-empty string")
        where = f"ladder level {name!r}"
        validate_params(_LevelKeys, raw, where=where, noun="key", owner="a ladder level")
        if name in seen:
            raise ConfigError(f"{where}: duplicate level name")
        seen.add(name)
        dim = raw["dim"]
        if model_dim is not None and dim > model_dim:
            raise ConfigError(f"{where}: dim {dim} exceeds the model's {model_dim} dimensions")
        factor = raw.get("pool_factor")
        vectors = raw.get("vectors", 1 if factor is None else "all")
        _check_pooling(where, raw, vectors, factor)
        levels.append(Level.from_dict(raw))
    hnsw = [lv.name for lv in levels if lv.index == "hnsw"]
    if len(hnsw) != 1:
        raise ConfigError(
            f"ladder must have exactly one level with index: hnsw (the first), found {hnsw or 'none'}"
        )
    if levels[0].index != "hnsw":
        raise ConfigError(
            f"ladder level {hnsw[0]!r}: the hnsw level must be the first (coarsest) level"
        )
    return levels


def _check_pooling(where: str, raw: Mapping[str, Any], vectors: Any, factor: Any) -> None:
    pool = raw.get("pool", "kmeans")
    if factor is not None:
        if pool not in _FACTOR_POOLS:
            raise ConfigError(
                f"{where}: 'pool_factor' works with pool {list(_FACTOR_POOLS)}, not {pool!r}"
            )
    if vectors == 1 and factor is None and "pool" in raw:
        raise ConfigError(
            f"{where}: a one-vector level is the mean of the rows; 'pool' applies to "
            "levels with vectors > 1, 'all' or a pool_factor"
        )


def ladder_to_specs(
    levels: Sequence[Level], *, distance: Literal["cosine", "dot"] = "dot"
) -> list[VectorSpec]:
    """One :class:`VectorSpec` per level: ``dense`` for one vector, ``multi`` otherwise."""
    return [
        VectorSpec(
            name=lv.name,
            kind="multi" if lv.is_multi else "dense",
            dim=lv.dim,
            index=lv.index,
            quantization=lv.quantization,
            datatype=lv.datatype,
            distance=distance,
        )
        for lv in levels
    ]


LadderLike = Union["Ladder", Sequence[Union[Mapping[str, Any], Level]]]


class Ladder:
    """An embedder's ladder, parsed and validated once; immutable.

    Built from the YAML list (dicts or :class:`~ragnest.types.Level` objects) with every
    check of :func:`parse_ladder`. :meth:`bind` returns a copy that knows the model's
    dimension (and checks every level against it): the original is never changed, so a
    component warmed up twice, or two pipelines sharing one config, stay consistent.

    >>> ladder = Ladder([{"name": "coarse", "dim": 8, "index": "hnsw"},
    ...                  {"name": "fine", "dim": 16, "vectors": "all"}])
    >>> ladder.names, [lv.is_multi for lv in ladder]
    (('coarse', 'fine'), [False, True])
    >>> ladder.bind(12)
    Traceback (most recent call last):
    ...
    ragnest.errors.ConfigError: ladder level 'fine': dim 16 exceeds the model's 12 dimensions
    >>> [s.name for s in ladder.specs()]
    ['coarse', 'fine']
    """

    __slots__ = ("_levels", "_model_dim")

    def __init__(self, levels: LadderLike, *, model_dim: int | None = None) -> None:
        if isinstance(levels, Ladder):
            parsed = levels.levels
            if model_dim is None:
                model_dim = levels.model_dim
            elif model_dim != levels.model_dim:
                _check_dims(parsed, model_dim, owner=None)
        else:
            parsed = tuple(parse_ladder(levels, model_dim=model_dim))
        self._levels: tuple[Level, ...] = parsed
        self._model_dim = model_dim

    @classmethod
    def coerce(cls, ladder: LadderLike) -> Ladder:
        """``ladder`` itself when it is a :class:`Ladder`, else a parsed one."""
        return ladder if isinstance(ladder, Ladder) else cls(ladder)

    # -- what it holds -----------------------------------------------------------------
    @property
    def levels(self) -> tuple[Level, ...]:
        """The levels, coarse to fine."""
        return self._levels

    @property
    def names(self) -> tuple[str, ...]:
        """The level names, coarse to fine (local to the embedder; see
        :func:`ragnest.ladder.vector_name` for the store's names)."""
        return tuple(lv.name for lv in self._levels)

    @property
    def model_dim(self) -> int | None:
        """The model dimension this ladder is bound to (``None``: not bound yet)."""
        return self._model_dim

    @property
    def multi_levels(self) -> tuple[str, ...]:
        """Names of the levels that keep several vectors per item."""
        return tuple(lv.name for lv in self._levels if lv.is_multi)

    def level(self, name: str) -> Level:
        """The level called ``name`` (:class:`KeyError` when there is none)."""
        for lv in self._levels:
            if lv.name == name:
                return lv
        raise KeyError(f"ladder has no level {name!r}; levels: {list(self.names)}")

    def __iter__(self) -> Iterator[Level]:
        return iter(self._levels)

    def __len__(self) -> int:
        return len(self._levels)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ladder):
            return NotImplemented
        return self._levels == other._levels and self._model_dim == other._model_dim

    def __hash__(self) -> int:
        return hash((self._levels, self._model_dim))

    def __repr__(self) -> str:
        dim = "" if self._model_dim is None else f", model_dim={self._model_dim}"
        return f"Ladder({[lv.to_dict() for lv in self._levels]!r}{dim})"

    # -- derived ------------------------------------------------------------------------
    def bind(self, model_dim: int, *, owner: str | None = None) -> Ladder:
        """A copy bound to a model giving ``model_dim``-d vectors (this ladder unchanged).

        Raises :class:`ConfigError` naming the level (and ``owner``, the component, when
        given) whose ``dim`` exceeds the model's.
        """
        if isinstance(model_dim, bool) or not isinstance(model_dim, int) or model_dim <= 0:
            raise ValueError(f"model_dim must be a positive integer, got {model_dim!r}")
        _check_dims(self._levels, model_dim, owner=owner)
        bound = Ladder.__new__(Ladder)
        bound._levels = self._levels
        bound._model_dim = model_dim
        return bound

    def specs(self, *, distance: Literal["cosine", "dot"] = "dot") -> list[VectorSpec]:
        """One :class:`VectorSpec` per level (local names), coarse to fine."""
        return ladder_to_specs(self._levels, distance=distance)

    def to_dicts(self) -> list[dict[str, Any]]:
        """The levels as dicts, as embedder identities record them."""
        return [lv.to_dict() for lv in self._levels]


def _check_dims(levels: Sequence[Level], model_dim: int, *, owner: str | None) -> None:
    for lv in levels:
        if lv.dim > model_dim:
            where = f"{owner}: " if owner else ""
            raise ConfigError(
                f"{where}ladder level {lv.name!r}: dim {lv.dim} exceeds the model's "
                f"{model_dim} dimensions"
            )
