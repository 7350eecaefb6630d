"""Pooling methods of the ladder (ragnest.ladder.pooling): Ward token pooling, patch grids."""

from __future__ import annotations

import numpy as np
import pytest

from ragnest.ladder import maxsim
from ragnest.ladder.pooling import (
    grid_shape,
    l2_normalize,
    pool_grid,
    pool_hierarchical,
    pooled_count,
    ward_labels,
)


def _rows(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).normal(size=(n, d)))


def _brute_ward(x: np.ndarray, k: int) -> list[list[int]]:
    """Greedy Ward: merge the pair with the least increase in within-cluster SSE."""
    clusters = [[i] for i in range(len(x))]
    while len(clusters) > k:
        best = None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                ca, cb = x[clusters[a]], x[clusters[b]]
                cost = len(ca) * len(cb) / (len(ca) + len(cb))
                cost *= float(((ca.mean(0) - cb.mean(0)) ** 2).sum())
                if best is None or cost < best[0]:
                    best = (cost, a, b)
        assert best is not None
        _, a, b = best
        clusters[a] += clusters[b]
        del clusters[b]
    return sorted(sorted(c) for c in clusters)


class TestHierarchical:
    @pytest.mark.parametrize("seed", range(6))
    @pytest.mark.parametrize("k", [2, 5, 11, 16, 19])  # 16, 19: the greedy path
    def test_ward_matches_the_greedy_definition(self, seed: int, k: int) -> None:
        x = _rows(20, 6, seed).astype(np.float64)
        labels = ward_labels(x, k)
        got = sorted(sorted(np.flatnonzero(labels == u).tolist()) for u in np.unique(labels))
        assert got == _brute_ward(x, k)

    def test_pool_factor_and_cap(self) -> None:
        x = _rows(700, 32)
        assert pool_hierarchical(x, pool_factor=3).shape == (234, 32)
        assert pool_hierarchical(x, n=64, pool_factor=3).shape == (64, 32)
        assert pooled_count(10, pool_factor=1) == 10
        with pytest.raises(ValueError, match="at least 1"):
            pooled_count(10, pool_factor=0.5)

    def test_near_duplicates_merge_first_and_rows_are_unit(self) -> None:
        base = _rows(6, 16, 1)
        x = np.concatenate([base, base + 0.01 * _rows(6, 16, 2)])  # each row twice
        pooled = pool_hierarchical(x, n=6)
        assert np.allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-5)
        # every original row has a pooled row within cos 0.999
        assert (l2_normalize(base) @ pooled.T).max(axis=1).min() > 0.999
        # MaxSim against the pooled page barely moves
        q = _rows(5, 16, 3)
        assert abs(maxsim(q, pooled) - maxsim(q, x)) < 0.05

    def test_weights_pull_the_mean(self) -> None:
        x = l2_normalize(np.array([[1.0, 0.0], [0.8, 0.6]]))
        light = pool_hierarchical(x, n=1)[0]
        heavy = pool_hierarchical(x, n=1, weights=np.array([10.0, 1.0]))[0]
        assert heavy[0] > light[0]


class TestGrid:
    def test_shapes(self) -> None:
        assert grid_shape((32, 24), 64) == (9, 7)
        assert grid_shape((4, 4), 100) == (4, 4)
        assert grid_shape((32, 24), 10, "rows") == (10, 1)
        assert grid_shape((32, 24), 10, "columns") == (1, 10)
        with pytest.raises(ValueError):
            grid_shape((0, 4), 4)

    def test_rows_columns_and_blocks_average_the_right_patches(self) -> None:
        h, w, d = 4, 6, 24
        patches = np.zeros((h * w, d), dtype=np.float32)
        for i in range(h):
            for j in range(w):
                patches[i * w + j, i] = 1.0  # row code
                patches[i * w + j, 10 + j] = 1.0  # column code
        rows = pool_grid(patches, grid=(h, w), mode="rows")
        assert rows.shape == (4, d)
        assert [int(np.argmax(r[:10])) for r in rows] == [0, 1, 2, 3]
        cols = pool_grid(patches, grid=(h, w), mode="columns")
        assert [int(np.argmax(c[10:])) for c in cols] == [0, 1, 2, 3, 4, 5]
        blocks = pool_grid(patches, grid=(h, w), n=6)  # 2 x 3 blocks of 2 x 2 patches
        assert blocks.shape == (6, d)
        first = blocks[0]
        assert first[0] > 0 and first[1] > 0 and first[2] == 0  # patch rows 0-1
        assert first[10] > 0 and first[11] > 0 and first[12] == 0  # patch columns 0-1

    def test_wrong_row_count(self) -> None:
        with pytest.raises(ValueError, match="needs 12 rows"):
            pool_grid(_rows(10), grid=(3, 4))
