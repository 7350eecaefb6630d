"""The vector side of the data model: sparse vectors, ladder levels, the store's named
vectors, and the search requests that run over them (re-exported by :mod:`ragnest.types`).

    >>> from ragnest.vectors import Level, VectorSpec
    >>> Level.from_dict({"name": "fine", "dim": 128, "vectors": "all"}).is_multi
    True
    >>> VectorSpec(name="dense-coarse", kind="dense", dim=256, index="hnsw").to_dict()["index"]
    'hnsw'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args

import numpy as np

__all__ = [
    "DATATYPES",
    "FUSIONS",
    "POOL_METHODS",
    "Datatype",
    "Fusion",
    "Level",
    "PoolMethod",
    "Route",
    "SearchRequest",
    "SparseVector",
    "Stage",
    "Vector",
    "VectorSpec",
]


@dataclass(frozen=True)
class SparseVector:
    """A sparse vector (BM25 and friends): parallel index and value tuples."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.values):
            raise ValueError("SparseVector indices and values differ in length")


#: A vector as embedders return it: 1-d dense, 2-d multi-vector (rows), or sparse.
Vector = Union[np.ndarray, SparseVector]


#: How a named vector's originals are stored: float32, float16, or TurboQuant codes
#: (``turbo4``/``turbo8``/``turbo16``: the engine keeps only 4/8/16-bit rotated codes,
#: never the floats; ``turbo4`` is about 1/8 of float32).
Datatype = Literal["float32", "float16", "turbo4", "turbo8", "turbo16"]
DATATYPES: tuple[str, ...] = ("float32", "float16", "turbo4", "turbo8", "turbo16")


#: How a multi-vector level gets fewer rows than the model emits (see :mod:`ragnest.ladder.pooling`).
PoolMethod = Literal["kmeans", "hierarchical", "grid", "rows", "columns", "prefix"]
POOL_METHODS: tuple[str, ...] = ("kmeans", "hierarchical", "grid", "rows", "columns", "prefix")


@dataclass(frozen=True, kw_only=True)
class Level:
    """One rung of a Matryoshka ladder, as declared in YAML.

    ``vectors`` is 1 for a single dense vector (the mean of the rows), N to pool to at
    most N vectors, or ``None`` ("all") for every token/patch vector. ``dim`` is the
    prefix dimension kept. ``pool`` says how rows are reduced: ``kmeans`` (default),
    ``hierarchical`` (Ward token pooling; with ``pool_factor`` F it keeps ``ceil(L/F)``
    rows), ``grid`` / ``rows`` / ``columns`` (spatial pooling of a page's patch grid),
    ``prefix`` (the first N rows, for models that emit nested vector sets).
    """

    name: str
    dim: int
    vectors: int | None = 1
    index: Literal["hnsw", "none"] = "none"
    quantization: Literal["binary", "scalar"] | None = None
    datatype: Datatype = "float32"
    pool: PoolMethod = "kmeans"
    pool_factor: float | None = None

    @property
    def is_multi(self) -> bool:
        return self.vectors != 1 or self.pool_factor is not None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Level:
        vectors = d.get("vectors", 1 if d.get("pool_factor") is None else "all")
        if vectors == "all":
            vectors = None
        factor = d.get("pool_factor")
        return cls(
            name=str(d["name"]),
            dim=int(d["dim"]),
            vectors=None if vectors is None else int(vectors),
            index=d.get("index", "none"),
            quantization=d.get("quantization"),
            datatype=d.get("datatype", "float32"),
            pool=d.get("pool", "kmeans"),
            pool_factor=None if factor is None else float(factor),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "dim": self.dim,
            "vectors": "all" if self.vectors is None else self.vectors,
            "index": self.index,
            "quantization": self.quantization,
            "datatype": self.datatype,
        }
        if self.pool != "kmeans":  # defaults left out: identities of older stores still match
            out["pool"] = self.pool
        if self.pool_factor is not None:
            out["pool_factor"] = self.pool_factor
        return out


@dataclass(frozen=True, kw_only=True)
class VectorSpec:
    """One named vector in the store, derived from an embedder's ladder level.

    ``kind`` is ``dense`` (one vector), ``multi`` (MaxSim over rows) or ``sparse``.
    Only specs with ``index="hnsw"`` get an HNSW graph; the rest are rescoring-only.
    """

    name: str
    kind: Literal["dense", "multi", "sparse"]
    dim: int = 0
    index: Literal["hnsw", "none"] = "none"
    quantization: Literal["binary", "scalar"] | None = None
    datatype: Datatype = "float32"
    distance: Literal["cosine", "dot"] = "dot"
    modifier: Literal["idf"] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "dim": self.dim,
            "index": self.index,
            "quantization": self.quantization,
            "datatype": self.datatype,
            "distance": self.distance,
            "modifier": self.modifier,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VectorSpec:
        return cls(**{k: d[k] for k in d if k in cls.__dataclass_fields__})


@dataclass(frozen=True, kw_only=True)
class Stage:
    """One stage of a funnel: score ``vector`` with ``query``, keep ``limit`` candidates."""

    vector: str
    query: Vector = field(repr=False)
    limit: int


@dataclass(frozen=True, kw_only=True)
class Route:
    """One retriever's funnel, coarse to fine (the last stage ranks its output).

    ``shared``: other routes whose candidates the last stage scores too, besides those
    of this route's own earlier stages (say, the fine late-interaction stage of a dense
    funnel also rescoring BM25's top pages: a cheap lexical net catches what a coarse
    dense stage missed, so that stage may keep fewer). Their funnels run as extra
    prefetches of the last stage; their own ranking and weight play no part here (list
    them in the request's routes as well for that). No effect on a one-stage route.
    """

    name: str
    stages: tuple[Stage, ...]
    weight: float = 1.0
    shared: tuple[Route, ...] = ()


#: How the routes of a search are fused: ``rrf`` (weighted reciprocal rank), ``dbsf``
#: (distribution-based score fusion) or ``relative`` (per-route score normalisation,
#: weighted sum). Declared once; :data:`FUSIONS` lists the same choices.
Fusion = Literal["rrf", "dbsf", "relative"]
FUSIONS: tuple[str, ...] = get_args(Fusion)


@dataclass(frozen=True, kw_only=True)
class SearchRequest:
    """What the pipeline asks the store: routes to run and fuse, filters, a limit.

    ``fusion``: ``rrf`` (weighted reciprocal rank), ``dbsf`` (distribution-based score
    fusion), or ``relative`` (per-route score normalisation, weighted sum).
    ``stage_scores``: also give every hit its score at each dense or multi-vector stage
    (``Hit.scores_by_stage``), recomputed from the stored vectors of the final hits (an
    explanation, off by default: it costs a fetch of those vectors and the scoring).
    """

    routes: tuple[Route, ...]
    limit: int = 10
    filters: Mapping[str, Any] | None = None
    fusion: Fusion = "rrf"
    fusion_k: int = 60
    stage_scores: bool = False
