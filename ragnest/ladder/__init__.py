"""The Matryoshka ladder: levels, the builder that turns model rows into one vector
per level, pooling and the corpus-fitted rotation.

    >>> from ragnest.ladder import parse_ladder, ladder_to_specs
    >>> [s.kind for s in ladder_to_specs(parse_ladder([{"name": "coarse", "dim": 8, "index": "hnsw"}]))]
    ['dense']
"""

from __future__ import annotations

from ragnest.ladder.builder import LadderBuilder, TokenRows, cast_level
from ragnest.ladder.levels import ladder_to_specs, maxsim, parse_ladder, truncate
from ragnest.ladder.pooling import l2_normalize, pool_tokens
from ragnest.ladder.rotation import PcaRotation, apply_pca, fit_pca

__all__ = [
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
    "truncate",
]
