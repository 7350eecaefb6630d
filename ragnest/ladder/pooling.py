"""Token pooling: fewer vectors for a ladder level (pure numpy).

Four ways to turn an item's ``(L, d)`` token rows into fewer rows:

* :func:`pool_tokens`: spherical k-means to at most ``n`` rows (any token set);
* :func:`pool_hierarchical`: Ward agglomerative clustering, to ``n`` clusters or to
  ``ceil(L / pool_factor)`` (the token-pooling recipe of late-interaction retrievers);
* :func:`pool_grid`: spatial pooling of a page's patch grid into blocks, rows or columns;
* prefix (no function needed): models that emit nested vector sets keep the first ``n``.

Every pooled row is the (weighted) mean of its members, re-normalised::

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(12, 8)).astype(np.float32)
    >>> pool_hierarchical(x, n=4).shape, pool_hierarchical(x, pool_factor=3).shape
    ((4, 8), (4, 8))
    >>> pool_grid(x, grid=(3, 4), mode="rows").shape
    (3, 8)
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

__all__ = [
    "grid_shape",
    "l2_normalize",
    "pool_grid",
    "pool_hierarchical",
    "pool_tokens",
    "pooled_count",
]

_EPS = 1e-12
GridMode = Literal["grid", "rows", "columns"]


def l2_normalize(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """Unit-normalise along ``axis`` (float32); all-zero rows stay zero.

    >>> [round(float(v), 4) for v in l2_normalize(np.array([3.0, 4.0]))]
    [0.6, 0.8]
    """
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, _EPS)


def _rows_and_weights(
    vectors: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    x = l2_normalize(np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1))
    if weights is None:
        return x, np.ones(x.shape[0], dtype=np.float32)
    w = np.asarray(weights, dtype=np.float32).reshape(-1)
    if w.shape[0] != x.shape[0]:
        raise ValueError("weights must have one entry per row")
    return x, np.maximum(w, _EPS)


def _means(x: np.ndarray, w: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Weighted mean of each label's rows, re-normalised, ordered by first member."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first)  # clusters in the order their first row appears
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    member = np.zeros((order.size, x.shape[0]), dtype=np.float32)
    member[rank[inverse], np.arange(x.shape[0])] = w
    return np.ascontiguousarray(l2_normalize(member @ x), dtype=np.float32)


def pooled_count(rows: int, *, n: int | None = None, pool_factor: float | None = None) -> int:
    """How many rows a pool keeps: ``min(n, ceil(rows / pool_factor))``, at least 1.

    >>> pooled_count(700, pool_factor=3), pooled_count(700, n=64, pool_factor=3)
    (234, 64)
    """
    k = rows
    if pool_factor is not None:
        if pool_factor < 1:
            raise ValueError(f"pool_factor must be at least 1, got {pool_factor}")
        k = math.ceil(rows / pool_factor)
    if n is not None:
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        k = min(k, n)
    return max(1, min(k, rows))


# ------------------------------------------------------------------------ k-means
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
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    x, w = _rows_and_weights(vectors, weights)
    if x.shape[0] <= n:
        return x
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


# ------------------------------------------------------------------------ hierarchical
def ward_labels(x: np.ndarray, k: int) -> np.ndarray:
    """Cluster labels of Ward agglomerative clustering cut at ``k`` clusters.

    Builds the whole dendrogram with the nearest-neighbour-chain algorithm (Lance-Williams
    update on squared Euclidean distances, O(L^2) time and memory), then replays its
    ``L - k`` lowest merges, as cutting a dendrogram at ``k`` clusters does (the chain
    finds merges out of height order). Deterministic; ties go to the lower index.
    """
    n = x.shape[0]
    if k >= n:
        return np.arange(n)
    x64 = x.astype(np.float64)
    sq = (x64 * x64).sum(axis=1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x64 @ x64.T), 0.0)
    np.fill_diagonal(dist, np.inf)
    size = np.ones(n)
    if 4 * (n - k) <= n:  # few merges: the direct greedy is cheaper than a whole dendrogram
        return _ward_greedy(dist, size, k)
    active = np.ones(n, dtype=bool)
    merges: list[tuple[float, int, int]] = []
    chain: list[int] = []
    for _ in range(n - 1):
        if not chain:
            chain.append(int(np.flatnonzero(active)[0]))
        while True:
            a = chain[-1]
            b = int(np.argmin(dist[a]))
            if len(chain) > 1 and dist[a, chain[-2]] <= dist[a, b]:
                b = chain[-2]
            if len(chain) > 1 and b == chain[-2]:
                break
            chain.append(b)
        a, b = chain.pop(), chain.pop()
        i, j = min(a, b), max(a, b)
        merges.append((float(dist[i, j]), i, j))
        _merge(dist, size, i, j)
        active[j] = False
    parent = np.arange(n)

    def find(p: int) -> int:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = int(parent[p])
        return p

    for _, i, j in sorted(merges)[: n - k]:
        ri, rj = find(i), find(j)
        parent[max(ri, rj)] = min(ri, rj)
    return np.array([find(p) for p in range(n)])


def _merge(dist: np.ndarray, size: np.ndarray, i: int, j: int) -> None:
    """Lance-Williams Ward update: cluster ``j`` joins ``i`` (``i < j``), in place."""
    si, sj, dij = size[i], size[j], dist[i, j]
    new = ((si + size) * dist[i] + (sj + size) * dist[j] - size * dij) / (si + sj + size)
    dist[i, :] = new
    dist[:, i] = new
    dist[j, :] = np.inf
    dist[:, j] = np.inf
    dist[i, i] = np.inf
    size[i] += sj


def _ward_greedy(dist: np.ndarray, size: np.ndarray, k: int) -> np.ndarray:
    """Ward by definition: merge the globally closest pair until ``k`` clusters remain."""
    n = dist.shape[0]
    labels = np.arange(n)
    for _ in range(n - k):
        a, b = divmod(int(np.argmin(dist)), n)
        i, j = min(a, b), max(a, b)
        _merge(dist, size, i, j)
        labels[labels == j] = i
    return labels


def pool_hierarchical(
    vectors: np.ndarray,
    *,
    n: int | None = None,
    pool_factor: float | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Ward-cluster token rows and mean-pool each cluster (token pooling).

    Keeps :func:`pooled_count` rows: ``n`` clusters, or ``ceil(L / pool_factor)``
    (pool factor 3 keeps a third), or the smaller of both. Rows come out in the order of
    each cluster's first token, re-normalised.

    >>> x = np.eye(4, dtype=np.float32)[[0, 0, 1, 1, 2, 3]]
    >>> pool_hierarchical(x, n=4).shape
    (4, 4)
    """
    if n is None and pool_factor is None:
        raise ValueError("pool_hierarchical needs n or pool_factor")
    x, w = _rows_and_weights(vectors, weights)
    k = pooled_count(x.shape[0], n=n, pool_factor=pool_factor)
    if k >= x.shape[0]:
        return x
    return _means(x, w, ward_labels(x, k))


# ------------------------------------------------------------------------ grids
def grid_shape(grid: tuple[int, int], n: int, mode: GridMode = "grid") -> tuple[int, int]:
    """Output cells ``(rows, cols)`` for pooling an ``(h, w)`` patch grid to ``<= n`` cells.

    ``rows``: one vector per patch row (adjacent rows merged beyond ``n``); ``columns``:
    one per patch column; ``grid``: blocks keeping the page's aspect ratio.

    >>> grid_shape((32, 24), 64), grid_shape((32, 24), 64, "rows")
    ((9, 7), (32, 1))
    """
    h, w = grid
    if h <= 0 or w <= 0 or n <= 0:
        raise ValueError(f"grid {grid} and n={n} must be positive")
    if mode == "rows":
        return min(h, n), 1
    if mode == "columns":
        return 1, min(w, n)
    if mode != "grid":
        raise ValueError(f"mode must be grid, rows or columns, got {mode!r}")
    if h * w <= n:
        return h, w
    gh = max(1, min(h, math.floor(math.sqrt(n * h / w))))
    gw = max(1, min(w, n // gh))
    return gh, gw


def pool_grid(
    vectors: np.ndarray,
    *,
    grid: tuple[int, int],
    n: int | None = None,
    mode: GridMode = "grid",
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Average a page's patch rows (row-major ``grid = (h, w)``) over spatial cells.

    ``n`` caps the cells (default: one per patch row / column, or the full grid).
    Cells are contiguous rectangles of patches; the output is row-major and
    re-normalised. ``vectors`` must hold exactly ``h * w`` rows.

    >>> x = np.ones((6, 3), dtype=np.float32)
    >>> pool_grid(x, grid=(2, 3), mode="columns").shape
    (3, 3)
    """
    h, w = grid
    x, wts = _rows_and_weights(vectors, weights)
    if x.shape[0] != h * w:
        raise ValueError(f"grid {h}x{w} needs {h * w} rows, got {x.shape[0]}")
    gh, gw = grid_shape(grid, n if n is not None else h * w, mode)
    rows = np.minimum((np.arange(h) * gh) // h, gh - 1)
    cols = np.minimum((np.arange(w) * gw) // w, gw - 1)
    cell = (rows[:, None] * gw + cols[None, :]).reshape(-1)
    member = np.zeros((gh * gw, h * w), dtype=np.float32)
    member[cell, np.arange(h * w)] = wts
    return np.ascontiguousarray(l2_normalize(member @ x), dtype=np.float32)
