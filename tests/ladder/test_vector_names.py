"""Store vector names (ragnest.ladder.names): the one place that joins key and level."""

from __future__ import annotations

import numpy as np
import pytest

from ragnest.ladder import (
    SEPARATOR,
    Ladder,
    split_vector_name,
    store_specs,
    store_vectors,
    vector_name,
)


def test_vector_name_and_its_inverse() -> None:
    assert vector_name("pages", "coarse") == "pages-coarse"
    assert SEPARATOR == "-"
    assert split_vector_name("pages-coarse", ["pages", "bm25"]) == ("pages", "coarse")
    # keys and levels may hold the separator: the longest known key wins
    keys = ["my", "my-pages"]
    for key, level in [("my-pages", "fine"), ("my", "mid-2"), ("my-pages", "a-b")]:
        assert split_vector_name(vector_name(key, level), keys) == (key, level)
    with pytest.raises(ValueError, match="does not start with"):
        split_vector_name("other-coarse", keys)
    with pytest.raises(ValueError, match="does not start with"):
        split_vector_name("my-", keys)
    with pytest.raises(ValueError, match="embedder key and a level name"):
        vector_name("", "coarse")


def test_store_specs_and_vectors() -> None:
    ladder = Ladder([{"name": "coarse", "dim": 8, "index": "hnsw"},
                     {"name": "fine", "dim": 8, "vectors": "all"}])
    specs = store_specs("pages", ladder.specs())
    assert [(s.name, s.kind, s.dim) for s in specs] == [
        ("pages-coarse", "dense", 8),
        ("pages-fine", "multi", 8),
    ]
    assert [s.name for s in ladder.specs()] == ["coarse", "fine"]  # local names unchanged
    vecs = {"coarse": np.ones(8), "fine": np.ones((2, 8))}
    out = store_vectors("pages", vecs)
    assert list(out) == ["pages-coarse", "pages-fine"] and out["pages-fine"] is vecs["fine"]
