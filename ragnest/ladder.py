"""Matryoshka ladder maths: prefix truncation, token pooling, MaxSim, PCA rotation.

Pure numpy. An embedder's ladder is declared as a list of dicts (YAML) and parsed
into :class:`~ragnest.types.Level` objects; each level becomes one store vector::

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
from ragnest.types import Level, VectorSpec

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
_LEVEL_KEYS = {"name", "dim", "vectors", "index", "quantization", "datatype"}


def l2_normalize(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """Unit-normalise along ``axis`` (float32); all-zero rows stay zero.

    >>> [round(float(v), 4) for v in l2_normalize(np.array([3.0, 4.0]))]
    [0.6, 0.8]
    """
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, _EPS)


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


def _kmeanspp_init(x: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding on unit rows (cosine distance), weighted by ``w``."""
    n = x.shape[0]
    first = int(np.argmax(w))  # deterministic start: the heaviest row
    chosen = [first]
    dist = np.maximum(1.0 - x @ x[first], 0.0)
    for _ in range(1, k):
        p = dist * w
        total = float(p.sum())
        if total <= _EPS:  # every row already coincides with a centre
            break
        idx = min(int(np.searchsorted(np.cumsum(p), rng.random() * total)), n - 1)
        chosen.append(idx)
        dist = np.minimum(dist, np.maximum(1.0 - x @ x[idx], 0.0))
    return x[chosen].copy()


def pool_tokens(
    vectors: np.ndarray,
    n: int,
    *,
    weights: np.ndarray | None = None,
    seed: int = 0,
    iterations: int = 8,
) -> np.ndarray:
    """Pool token vectors into at most ``n`` unit vectors by spherical k-means.

    Deterministic (k-means++ seeding from ``seed``); each output row is the
    ``weights``-weighted mean of its cluster, re-normalised. With ``n`` or fewer
    rows the (normalised) input comes back unchanged; identical rows collapse.

    >>> x = np.ones((5, 4), dtype=np.float32)
    >>> pool_tokens(x, 3).shape
    (1, 4)
    """
    x = l2_normalize(np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1))
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if x.shape[0] <= n:
        return x
    w = (
        np.ones(x.shape[0], dtype=np.float32)
        if weights is None
        else np.asarray(weights, dtype=np.float32).reshape(-1)
    )
    if w.shape[0] != x.shape[0]:
        raise ValueError("weights must have one entry per row")
    w = np.maximum(w, _EPS)
    rng = np.random.default_rng(seed)
    centres = _kmeanspp_init(x, w, n, rng)
    assign = np.full(x.shape[0], -1)
    for _ in range(max(1, iterations)):
        new_assign = np.argmax(x @ centres.T, axis=1)
        if np.array_equal(new_assign, assign):
            break
        assign = new_assign
        k = centres.shape[0]
        member = np.zeros((k, x.shape[0]), dtype=np.float32)
        member[assign, np.arange(x.shape[0])] = w
        used = member.any(axis=1)
        centres = l2_normalize(member[used] @ x)
        if not used.all():  # drop empty clusters, re-index
            assign = np.argmax(x @ centres.T, axis=1)
    return np.ascontiguousarray(centres, dtype=np.float32)


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
        vectors = raw.get("vectors", 1)
        if vectors != "all" and (
            isinstance(vectors, bool) or not isinstance(vectors, int) or vectors <= 0
        ):
            raise ConfigError(
                f"{where}: 'vectors' must be a positive integer or 'all', got {vectors!r}"
            )
        _check_choice(where, raw, "index", ("hnsw", "none"), "none")
        _check_choice(where, raw, "quantization", ("binary", "scalar", None), None)
        _check_choice(where, raw, "datatype", ("float32", "float16"), "float32")
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


def fit_pca(sample: np.ndarray, *, center: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Fit a PCA rotation on sample rows: returns ``(mean, components)``.

    ``components`` is ``(d, d)`` with rows ordered by explained variance, so after
    :func:`apply_pca` prefixes carry the most variance (Matryoshka-like truncation for
    models that were not trained for it). Store both with the collection.

    >>> x = np.random.default_rng(0).normal(size=(50, 8)) * np.arange(1, 9)
    >>> mean, comps = fit_pca(x)
    >>> apply_pca(x, mean, comps).shape
    (50, 8)
    """
    x = np.asarray(sample, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError("fit_pca needs a 2-d sample with at least 2 rows")
    mean = x.mean(axis=0) if center else np.zeros(x.shape[1])
    _, _, vt = np.linalg.svd(x - mean, full_matrices=True)
    return mean.astype(np.float32), vt.astype(np.float32)


def apply_pca(
    x: np.ndarray, mean: np.ndarray, components: np.ndarray, *, normalize: bool = True
) -> np.ndarray:
    """Rotate rows (1-d or 2-d) into the PCA basis; re-normalise unless ``normalize=False``.

    The mean is subtracted before rotating, as at fit time.
    """
    y = (np.asarray(x, dtype=np.float32) - mean) @ components.T
    return l2_normalize(y) if normalize else y
