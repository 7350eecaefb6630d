"""Tests for ragnest.ladder.levels: the Ladder, parsing, truncation, pooling, MaxSim, PCA."""

from __future__ import annotations

import numpy as np
import pytest

from ragnest.errors import ConfigError
from ragnest.ladder import (
    Ladder,
    apply_pca,
    fit_pca,
    l2_normalize,
    ladder_to_specs,
    maxsim,
    parse_ladder,
    pool_tokens,
    truncate,
)

RNG = np.random.default_rng(0)


def test_truncate_1d_and_2d_renormalises() -> None:
    x = RNG.normal(size=(5, 16))
    t = truncate(x, 4)
    assert t.shape == (5, 4) and t.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(t, l2_normalize(x[:, :4]), rtol=1e-5)
    assert truncate(x[0], 8).shape == (8,)
    with pytest.raises(ValueError):
        truncate(x, 17)


def test_l2_normalize_keeps_zero_rows_zero() -> None:
    out = l2_normalize(np.zeros((2, 3)))
    assert np.all(out == 0) and np.all(np.isfinite(out))


def test_pool_identical_rows_collapse_to_one() -> None:
    x = np.tile(RNG.normal(size=(1, 8)), (10, 1))
    out = pool_tokens(x, 4)
    assert out.shape == (1, 8)
    np.testing.assert_allclose(out[0], l2_normalize(x[0]), rtol=1e-5)


def test_pool_few_rows_returned_normalised() -> None:
    x = RNG.normal(size=(3, 8))
    np.testing.assert_allclose(pool_tokens(x, 5), l2_normalize(x), rtol=1e-6)


def test_pool_is_deterministic_bounded_and_unit() -> None:
    x = RNG.normal(size=(200, 16))
    w = RNG.uniform(0.5, 2.0, size=200)
    a = pool_tokens(x, 12, weights=w, seed=3)
    b = pool_tokens(x, 12, weights=w, seed=3)
    assert a.shape[0] <= 12 and a.shape[1] == 16
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)


def test_pool_recovers_clusters() -> None:
    centres = l2_normalize(RNG.normal(size=(4, 32)))
    x = np.repeat(centres, 25, axis=0) + 0.01 * RNG.normal(size=(100, 32))
    out = pool_tokens(x, 4)
    assert out.shape == (4, 32)
    assert (out @ centres.T).max(axis=0).min() > 0.99


def test_maxsim_equals_brute_force() -> None:
    q = RNG.normal(size=(5, 8))
    d = RNG.normal(size=(7, 8))
    brute = sum(max(float(qi @ dj) for dj in d) for qi in q)
    assert maxsim(q, d) == pytest.approx(brute, rel=1e-5)
    assert maxsim(np.zeros((0, 8)), d) == 0.0


def test_parse_ladder_and_specs() -> None:
    levels = parse_ladder(
        [
            {"name": "coarse", "dim": 64, "index": "hnsw"},
            {"name": "mid", "dim": 256, "vectors": 1},
            {"name": "fine", "dim": 128, "vectors": "all", "datatype": "float16"},
        ],
        model_dim=256,
    )
    assert [lv.vectors for lv in levels] == [1, 1, None]
    specs = ladder_to_specs(levels)
    assert [(s.name, s.kind, s.dim, s.index) for s in specs] == [
        ("coarse", "dense", 64, "hnsw"),
        ("mid", "dense", 256, "none"),
        ("fine", "multi", 128, "none"),
    ]
    assert all(s.distance == "dot" for s in specs) and specs[2].datatype == "float16"


@pytest.mark.parametrize(
    ("ladder", "message"),
    [
        ([], "non-empty"),
        ([{"name": "a", "dim": 8, "index": "hnsw"}, {"name": "a", "dim": 4}], "'a': duplicate"),
        ([{"name": "a", "dim": 512, "index": "hnsw"}], "'a': dim 512 exceeds"),
        ([{"name": "a", "dim": 0, "index": "hnsw"}], "'a'.dim: must be at least 1, got 0"),
        ([{"name": "a", "dim": 8, "vectors": 0, "index": "hnsw"}], "'a'.vectors: must be at least 1"),
        ([{"name": "a", "dim": 8}], "exactly one level with index: hnsw"),
        (
            [{"name": "a", "dim": 8, "index": "hnsw"}, {"name": "b", "dim": 8, "index": "hnsw"}],
            "exactly one",
        ),
        ([{"name": "a", "dim": 8}, {"name": "b", "dim": 4, "index": "hnsw"}], "'b': the hnsw"),
        ([{"name": "a", "dim": 8, "index": "hnsw", "dims": 3}], "'a': unknown key 'dims' for a ladder level; did you mean 'dim'"),
        ([{"name": "a", "dim": 8, "index": "hnsw", "datatype": "int8"}], "'a'.datatype: 'int8' is not one of 'float32'"),
        ([{"dim": 8, "index": "hnsw"}], "level #1"),
    ],
)
def test_parse_ladder_errors_name_the_level(ladder: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_ladder(ladder, model_dim=256)
    with pytest.raises(ConfigError, match=message):  # the Ladder checks the same, once
        Ladder(ladder).bind(256) if "exceeds" in message else Ladder(ladder)


THREE = [
    {"name": "coarse", "dim": 64, "index": "hnsw"},
    {"name": "mid", "dim": 128, "vectors": 16, "datatype": "float16"},
    {"name": "fine", "dim": 32, "vectors": "all", "pool": "hierarchical"},
]


def test_ladder_parses_once_and_describes_itself() -> None:
    raw = [dict(d) for d in THREE]
    ladder = Ladder(raw)
    assert raw == THREE  # the YAML list is not touched
    assert ladder.names == ("coarse", "mid", "fine") and len(ladder) == 3
    assert ladder.levels == tuple(parse_ladder(THREE))
    assert [lv.name for lv in ladder] == list(ladder.names)
    assert ladder.multi_levels == ("mid", "fine") and ladder.level("mid").vectors == 16
    with pytest.raises(KeyError, match="no level 'x'"):
        ladder.level("x")
    assert ladder.specs() == ladder_to_specs(parse_ladder(THREE))
    assert {s.distance for s in ladder.specs(distance="cosine")} == {"cosine"}
    assert ladder.to_dicts() == [lv.to_dict() for lv in parse_ladder(THREE)]
    # from Level objects, from another Ladder, from its own dicts: the same ladder
    assert Ladder(list(ladder.levels)) == ladder == Ladder(ladder.to_dicts())
    assert Ladder.coerce(ladder) is ladder and Ladder.coerce(THREE) == ladder
    assert hash(Ladder(THREE)) == hash(ladder) and "coarse" in repr(ladder)


def test_bind_returns_a_bound_copy_and_never_mutates() -> None:
    ladder = Ladder(THREE)
    bound = ladder.bind(256)
    assert bound.model_dim == 256 and ladder.model_dim is None
    assert bound.levels == ladder.levels and bound != ladder
    assert ladder.bind(128) == ladder.bind(128)  # binding twice is safe
    assert bound.bind(128).model_dim == 128 and bound.model_dim == 256
    with pytest.raises(ConfigError, match="embedder/x: ladder level 'mid': dim 128 exceeds the model's 64"):
        ladder.bind(64, owner="embedder/x")
    assert ladder.model_dim is None and bound.model_dim == 256  # a failed bind changes nothing
    with pytest.raises(ValueError, match="positive"):
        ladder.bind(0)
    assert Ladder(THREE, model_dim=128) == ladder.bind(128)
    assert parse_ladder(bound) == list(ladder.levels)
    with pytest.raises(ConfigError, match="exceeds"):
        parse_ladder(ladder, model_dim=100)


def test_pca_orders_variance_and_round_trips() -> None:
    x = RNG.normal(size=(300, 6)) * np.array([0.1, 5.0, 0.5, 3.0, 0.2, 1.0])
    mean, comps = fit_pca(x)
    y = apply_pca(x, mean, comps, normalize=False)
    var = y.var(axis=0)
    assert np.all(np.diff(var) <= 1e-6)  # prefixes carry the most variance
    np.testing.assert_allclose(y @ comps + mean, x, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(apply_pca(x, mean, comps), axis=1), 1.0, rtol=1e-5)
