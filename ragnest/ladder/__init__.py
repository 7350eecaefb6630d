"""The Matryoshka ladder: :class:`Ladder` (parsed once, bound to a model's dimension,
its specs), the one function that names store vectors, the builder that turns model
rows into one vector per level, pooling and the corpus-fitted rotation.

    >>> from ragnest.ladder import Ladder, store_specs
    >>> ladder = Ladder([{"name": "coarse", "dim": 8, "index": "hnsw"}])
    >>> [(s.name, s.kind) for s in store_specs("pages", ladder.specs())]
    [('pages-coarse', 'dense')]
"""

from __future__ import annotations

from ragnest.ladder.builder import LadderBuilder, TokenRows, cast_level
from ragnest.ladder.levels import Ladder, ladder_to_specs, maxsim, parse_ladder, truncate
from ragnest.ladder.names import (
    SEPARATOR,
    split_vector_name,
    store_specs,
    store_vectors,
    vector_name,
)
from ragnest.ladder.pooling import l2_normalize, pool_tokens
from ragnest.ladder.rotation import PcaRotation, apply_pca, fit_pca

__all__ = [
    "SEPARATOR",
    "Ladder",
    "LadderBuilder",
    "PcaRotation",
    "TokenRows",
    "apply_pca",
    "cast_level",
    "fit_pca",
    "l2_normalize",
    "ladder_to_specs",
    "maxsim",
    "parse_ladder",
    "pool_tokens",
    "split_vector_name",
    "store_specs",
    "store_vectors",
    "truncate",
    "vector_name",
]
