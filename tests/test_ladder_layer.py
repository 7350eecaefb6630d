"""The ladder as a layer: pooling methods, the PCA rotation and LadderBuilder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ragnest.errors import ConfigError, EmbeddingError
from ragnest.ladder import maxsim, parse_ladder
from ragnest.ladder.builder import LadderBuilder, TokenRows
from ragnest.ladder.pooling import (
    grid_shape,
    l2_normalize,
    pool_grid,
    pool_hierarchical,
    pool_tokens,
    pooled_count,
    ward_labels,
)
from ragnest.ladder.rotation import PcaRotation


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


class TestRotation:
    def test_orthonormal_and_ordered(self) -> None:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(2000, 12)) * np.linspace(3, 0.1, 12)
        rot = PcaRotation.fit(x)
        c = rot.components
        assert np.allclose(c @ c.T, np.eye(12), atol=1e-5)
        assert np.all(np.diff(rot.explained) <= 1e-7) and rot.explained.sum() == pytest.approx(1)
        a, b = x[:3].astype(np.float32), x[3:6].astype(np.float32)
        # dot products are unchanged at full dimension
        assert np.allclose(rot.apply(a) @ rot.apply(b).T, a @ b.T, atol=1e-3)

    def test_state_round_trips_through_json(self) -> None:
        rot = PcaRotation.fit(np.random.default_rng(1).normal(size=(100, 8)))
        state = json.loads(json.dumps(rot.to_state()))
        back = PcaRotation.from_state(state)
        assert np.array_equal(back.components, rot.components) and back.sample_rows == 100
        with pytest.raises(ValueError, match="invalid stored rotation"):
            PcaRotation.from_state({**state, "components": state["components"][:-8]})

    def test_prefixes_keep_more_of_maxsim_after_pca(self) -> None:
        """A model not trained for Matryoshka: variance sits in arbitrary coordinates."""
        rng = np.random.default_rng(2)
        d, k = 64, 8
        basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
        latent = rng.normal(size=(4000, d)) * np.r_[np.full(k, 3.0), np.full(d - k, 0.2)]
        x = l2_normalize(latent @ basis.T)  # signal spread over all coordinates
        rot = PcaRotation.fit(x[:2000])
        docs, queries = x[2000:2600].reshape(200, 3, d), x[2600:2640].reshape(20, 2, d)

        def ranks(transform: object, dim: int) -> np.ndarray:
            f = transform if callable(transform) else (lambda v: v)
            dd = l2_normalize(f(docs)[..., :dim])
            qq = l2_normalize(f(queries)[..., :dim])
            return np.array([[maxsim(q, doc) for doc in dd] for q in qq]).argmax(axis=1)

        exact = ranks(None, d)
        plain = (ranks(None, k) == exact).mean()
        rotated = (ranks(rot.apply, k) == exact).mean()
        assert rotated > plain and rotated >= 0.8


LADDER = [
    {"name": "coarse", "dim": 8, "index": "hnsw", "quantization": "binary"},
    {"name": "grid", "dim": 16, "vectors": 7, "pool": "grid", "datatype": "float16"},
    {"name": "lines", "dim": 16, "vectors": "all", "pool": "rows"},
    {"name": "ward", "dim": 16, "pool": "hierarchical", "pool_factor": 3},
    {"name": "nested", "dim": 16, "vectors": 4, "pool": "prefix"},
    {"name": "fine", "dim": 16, "vectors": "all", "datatype": "turbo4"},
]


def _page(seed: int = 0) -> TokenRows:
    rows = _rows(2 + 24, 16, seed)  # 2 prompt tokens, then a 4 x 6 patch grid
    return TokenRows(rows, grid=(4, 6), grid_rows=np.arange(2, 26))


class TestLadderBuilder:
    def test_levels_shapes_and_dtypes(self) -> None:
        builder = LadderBuilder(parse_ladder(LADDER))
        out = builder.document(_page())
        assert out["coarse"].shape == (8,) and out["coarse"].dtype == np.float32
        assert out["grid"].shape == (7, 16) and out["grid"].dtype == np.float16  # 6 + prompt
        assert out["lines"].shape == (5, 16)  # 4 patch rows + the prompt row
        assert out["ward"].shape == (9, 16)  # ceil(26 / 3)
        assert np.array_equal(out["nested"], l2_normalize(_page().rows[:4]))
        assert out["fine"].shape == (26, 16)
        for v in out.values():
            assert np.allclose(
                np.linalg.norm(np.atleast_2d(v.astype(np.float32)), axis=1), 1, atol=1e-3
            )

    def test_queries_are_never_pooled(self) -> None:
        builder = LadderBuilder(parse_ladder(LADDER))
        q = builder.query(_rows(5, 16))
        assert q["coarse"].shape == (8,)
        assert all(q[name].shape == (5, 16) for name in ("grid", "lines", "ward", "fine"))

    def test_grid_pools_fall_back_for_items_without_a_grid(self) -> None:
        builder = LadderBuilder(parse_ladder(LADDER))
        out = builder.document(_rows(30, 16))  # e.g. a text chunk
        assert out["grid"].shape == (7, 16) and out["lines"].shape == (30, 16)

    def test_bad_rows(self) -> None:
        builder = LadderBuilder(parse_ladder(LADDER), owner="embedder/x")
        with pytest.raises(EmbeddingError, match="embedder/x.*finite"):
            builder.document(np.full((3, 16), np.nan))

    def test_pca_must_be_fitted_then_round_trips(self) -> None:
        levels = parse_ladder(LADDER)
        builder = LadderBuilder(levels, rotation="pca", owner="embedder/x")
        assert builder.needs_fit and builder.state() is None
        with pytest.raises(EmbeddingError, match="not fitted"):
            builder.query(_rows(2, 16))
        builder.fit([_rows(300, 16, s) for s in range(3)])
        assert not builder.needs_fit
        doc = builder.document(_page())
        again = LadderBuilder(levels, rotation="pca")
        again.load_state(json.loads(json.dumps(builder.state())))
        assert all(np.array_equal(doc[k], again.document(_page())[k]) for k in doc)
        plain = LadderBuilder(levels)
        with pytest.raises(EmbeddingError, match="rotation 'none'"):
            plain.load_state(builder.state())


class TestParse:
    def test_pool_keys(self) -> None:
        levels = parse_ladder(LADDER)
        ward = levels[3]
        assert ward.pool == "hierarchical" and ward.pool_factor == 3 and ward.vectors is None
        assert ward.is_multi
        assert levels[0].to_dict().keys() == {
            "name",
            "dim",
            "vectors",
            "index",
            "quantization",
            "datatype",
        }  # defaults stay out of identities, so older stores still match
        assert levels[5].datatype == "turbo4"

    @pytest.mark.parametrize(
        ("level", "message"),
        [
            ({"pool": "spiral", "vectors": 4}, "'pool' must be one of"),
            ({"pool": "rows", "pool_factor": 2}, "pool_factor' works with"),
            ({"pool_factor": 0.5}, "number >= 1"),
            ({"pool": "grid"}, "one-vector level is the mean"),
            ({"datatype": "int4"}, "'datatype' must be one of"),
        ],
    )
    def test_errors_name_the_level(self, level: dict, message: str) -> None:
        ladder = [{"name": "coarse", "dim": 8, "index": "hnsw"}, {"name": "x", "dim": 8, **level}]
        with pytest.raises(ConfigError, match=f"level 'x'.*{message}"):
            parse_ladder(ladder)

    def test_kmeans_still_default(self) -> None:
        x = _rows(50, 8)
        builder = LadderBuilder(
            parse_ladder(
                [{"name": "c", "dim": 8, "index": "hnsw"}, {"name": "m", "dim": 8, "vectors": 5}]
            )
        )
        assert np.allclose(builder.document(x)["m"], pool_tokens(x, 5, seed=0))
