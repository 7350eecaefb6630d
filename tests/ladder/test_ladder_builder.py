"""LadderBuilder (ragnest.ladder.builder): model rows in, one vector per level out;
the pool keys of a level."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ragnest.errors import ConfigError, EmbeddingError
from ragnest.ladder import parse_ladder
from ragnest.ladder.builder import LadderBuilder, TokenRows
from ragnest.ladder.pooling import l2_normalize, pool_tokens


def _rows(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).normal(size=(n, d)))


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
        with pytest.raises(EmbeddingError, match=r"embedder/x needs fitting.*`ragnest fit`"):
            builder.document(_page())  # never fitted implicitly
        assert builder.needs_fit
        with pytest.raises(EmbeddingError, match="needs at least 16 sample rows"):
            builder.fit([_rows(10, 16)])
        builder.fit([_rows(300, 16, s) for s in range(3)])
        assert not builder.needs_fit
        doc = builder.document(_page())
        again = LadderBuilder(levels, rotation="pca")
        again.load_state(json.loads(json.dumps(builder.state())))
        assert all(np.array_equal(doc[k], again.document(_page())[k]) for k in doc)
        plain = LadderBuilder(levels)
        with pytest.raises(EmbeddingError, match="rotation 'none'"):
            plain.load_state(builder.state())
        # a state fitted for another model dimension is refused, and nothing is kept
        other = LadderBuilder(levels, rotation="pca", owner="embedder/y")
        with pytest.raises(EmbeddingError, match="embedder/y: the fitted rotation is 16-d but the model gives 32-d"):
            other.load_state(builder.state(), model_dim=32)
        assert other.needs_fit
        other.load_state(None)
        assert other.needs_fit
        other.load_state(builder.state(), model_dim=16)
        other.check_dim(16)
        with pytest.raises(EmbeddingError, match="16-d"):
            other.check_dim(8)


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
            ({"pool": "spiral", "vectors": 4}, "pool: 'spiral' is not one of 'kmeans'"),
            ({"pool": "rows", "pool_factor": 2}, "pool_factor' works with"),
            ({"pool_factor": 0.5}, "pool_factor: must be at least 1.0, got 0.5"),
            ({"pool": "grid"}, "one-vector level is the mean"),
            ({"datatype": "int4"}, "datatype: 'int4' is not one of 'float32'"),
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
