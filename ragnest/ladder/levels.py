"""The Matryoshka ladder: level parsing, store specs, prefix truncation, MaxSim.

Pure numpy. An embedder's ladder is declared as a list of dicts (YAML) and parsed
into :class:`~ragnest.types.Level` objects; each level becomes one store vector.
:class:`~ragnest.ladder.builder.LadderBuilder` turns any embedder's rows into those
vectors (pooling from :mod:`ragnest.ladder.pooling`, PCA from :mod:`ragnest.ladder.rotation`)::

    >>> import numpy as np
    >>> from ragnest.ladder import parse_ladder, ladder_to_specs, truncate, pool_tokens
    >>> levels = parse_ladder([
    ...     {"name": "coarse", "dim": 64, "index": "hnsw"},
    ...     {"name": "fine", "dim": 128, "vectors": 32},
    ... ], model_dim=256)
    >>> [s.kind for s in ladder_to_specs(levels)]
    ['dense', 'multi']
    >>> x = np.random.default_rng(0).normal(size=(100, 256)).astype(np.float32)
    >>> truncate(x, 64).shape, pool_tokens(truncate(x, 128), 32).shape
    ((100, 64), (32, 128))
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from ragnest.errors import ConfigError
from ragnest.ladder.pooling import l2_normalize, pool_tokens
from ragnest.ladder.rotation import apply_pca, fit_pca
from ragnest.types import DATATYPES, POOL_METHODS, Level, VectorSpec

__all__ = [
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
_LEVEL_KEYS = {"name", "dim", "vectors", "index", "quantization", "datatype", "pool", "pool_factor"}
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
    ladder: Sequence[Mapping[str, Any] | Level], *, model_dim: int | None = None
) -> list[Level]:
    """Validate a ladder declared as dicts and return its levels, coarse to fine.

    Rules: at least one level; names unique and non-empty; ``dim`` positive and at most
    ``model_dim``; ``vectors`` a positive int or ``"all"``; exactly one level has
    ``index: hnsw`` and it is the first one. Errors are :class:`ConfigError` naming the level.
    """
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
        unknown = set(raw) - _LEVEL_KEYS
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_LEVEL_KEYS)}"
            )
        if name in seen:
            raise ConfigError(f"{where}: duplicate level name")
        seen.add(name)
        dim = raw.get("dim")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            raise ConfigError(f"{where}: 'dim' must be a positive integer, got {dim!r}")
        if model_dim is not None and dim > model_dim:
            raise ConfigError(f"{where}: dim {dim} exceeds the model's {model_dim} dimensions")
        factor = raw.get("pool_factor")
        vectors = raw.get("vectors", 1 if factor is None else "all")
        if vectors != "all" and (
            isinstance(vectors, bool) or not isinstance(vectors, int) or vectors <= 0
        ):
            raise ConfigError(
                f"{where}: 'vectors' must be a positive integer or 'all', got {vectors!r}"
            )
        _check_choice(where, raw, "index", ("hnsw", "none"), "none")
        _check_choice(where, raw, "quantization", ("binary", "scalar", None), None)
        _check_choice(where, raw, "datatype", DATATYPES, "float32")
        _check_choice(where, raw, "pool", POOL_METHODS, "kmeans")
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


def _check_choice(
    where: str, raw: Mapping[str, Any], key: str, allowed: tuple[Any, ...], default: Any
) -> None:
    value = raw.get(key, default)
    if value not in allowed:
        raise ConfigError(f"{where}: {key!r} must be one of {list(allowed)}, got {value!r}")


def _check_pooling(where: str, raw: Mapping[str, Any], vectors: Any, factor: Any) -> None:
    pool = raw.get("pool", "kmeans")
    if factor is not None:
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 1:
            raise ConfigError(f"{where}: 'pool_factor' must be a number >= 1, got {factor!r}")
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
