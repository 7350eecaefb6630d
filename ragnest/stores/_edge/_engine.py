"""Qdrant Edge's own types for ragnest's values: the shard config, filters, the query
plan, and what an engine error means. Stateless; the backend (``_backend``) owns the shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qdrant_edge import (
    BinaryQuantizationConfig,
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    Fusion,
    HnswIndexConfig,
    MatchAny,
    MatchValue,
    Modifier,
    MultiVectorComparator,
    MultiVectorConfig,
    PayloadSchemaType,
    Prefetch,
    Query,
    QueryRequest,
    RangeFloat,
    ScalarQuantizationConfig,
    ScalarType,
    SearchParams,
    SparseVector,
    UpdateOperation,
    VectorStorageDatatype,
)

from ragnest.stores._backend import INDEXED_FIELDS, PENDING_KEY, Failure, Row, as_list, sparse_parts
from ragnest.stores._filters import Condition
from ragnest.stores._plan import FusionNode, PlanNode
from ragnest.types import VectorSpec

__all__ = [
    "DEFAULT_FULL_SCAN_THRESHOLD",
    "classify",
    "drop_pending",
    "index_fields",
    "rows",
    "shard_config",
    "to_filter",
    "translate",
]

#: Qdrant's default full-scan threshold (KB of vectors below which search is exact).
DEFAULT_FULL_SCAN_THRESHOLD = 10_000
_EDGE_DATATYPES = {
    "float16": VectorStorageDatatype.Float16,
    "turbo4": VectorStorageDatatype.Turbo4,
    "turbo8": VectorStorageDatatype.Turbo8,
    "turbo16": VectorStorageDatatype.Turbo16,
}

#: Engine messages (Qdrant's ``OperationError``) that mean "bad data", not "broken store".
_DATA_ERRORS = (
    "Vector dimension error",
    "Not existing vector name error",
    "No point with id",
    "Payload type does not match",
    "Unable to infer type",
    "Validation failed",
    "Wrong usage of",
    "Wrong input",
    "Expected ",
    "The expression",
)


def classify(error: BaseException) -> Failure | None:
    """The engine raises a plain ``Exception`` carrying Qdrant's error message: a
    refusal of the data (a vector of the wrong size, an unknown vector name) is a
    data error; anything else (I/O, out of disk or memory, a broken shard) means the
    store cannot work."""
    if type(error) is not Exception:
        return None
    message = str(error)
    if message.startswith(_DATA_ERRORS):
        return Failure("data", f"the engine refused the data: {message}")
    return Failure("unavailable", f"Qdrant Edge engine error: {message}")


def shard_config(
    specs: Sequence[VectorSpec], *, hnsw_m: int, ef_construct: int, full_scan_threshold: int
) -> EdgeConfig:
    """The shard's configuration: one named vector per spec (HNSW only where indexed)."""

    def hnsw(m: int) -> HnswIndexConfig:
        return HnswIndexConfig(m=m, ef_construct=ef_construct,
                               full_scan_threshold=full_scan_threshold)

    dense: dict[str, EdgeVectorParams] = {}
    sparse: dict[str, EdgeSparseVectorParams] = {}
    for s in specs:
        if s.kind == "sparse":
            sparse[s.name] = EdgeSparseVectorParams(
                modifier=Modifier.Idf if s.modifier == "idf" else None
            )
            continue
        quant: Any = None
        if s.quantization == "binary":
            quant = BinaryQuantizationConfig()
        elif s.quantization == "scalar":
            quant = ScalarQuantizationConfig(type=ScalarType.Int8)
        dense[s.name] = EdgeVectorParams(
            size=s.dim,
            distance=Distance.Cosine if s.distance == "cosine" else Distance.Dot,
            multivector_config=(
                MultiVectorConfig(MultiVectorComparator.MaxSim) if s.kind == "multi" else None
            ),
            datatype=_EDGE_DATATYPES.get(s.datatype),
            quantization_config=quant,
            hnsw_config=hnsw(hnsw_m if s.index == "hnsw" else 0),
        )
    return EdgeConfig(
        vectors=dense or None, sparse_vectors=sparse or None, hnsw_config=hnsw(hnsw_m)
    )


def index_fields(shard: EdgeShard) -> None:
    """Create the payload indexes ragnest filters on."""
    for field, kind in INDEXED_FIELDS.items():
        schema = PayloadSchemaType.Integer if kind == "integer" else PayloadSchemaType.Keyword
        shard.update(UpdateOperation.create_field_index(field, schema))


def drop_pending(shard: EdgeShard) -> int:
    """Delete the points of writes that were not committed (in a reader's own copy)."""
    pending = Filter(must=[FieldCondition(PENDING_KEY, match=MatchValue(1))])
    n = int(shard.count(CountRequest(exact=True, filter=pending)))
    if n:
        shard.update(UpdateOperation.delete_points_by_filter(pending))
    return n


def translate(node: PlanNode, filters: dict[int, Filter | None], *, top: bool) -> Any:
    """A plan node as a ``QueryRequest`` (``top``) or a ``Prefetch``, recursively."""
    key = id(node.conditions)  # one filter object for the plan's shared conditions
    if key not in filters:
        filters[key] = to_filter(node.conditions)
    prefetches = [translate(p, filters, top=False) for p in node.prefetch] or None
    query: Any
    params: SearchParams | None = None
    if isinstance(node, FusionNode):
        query = (
            Fusion.Rrf(k=node.k, weights=list(node.weights))
            if node.method == "rrf"
            else Fusion.Dbsf()
        )
    else:
        vector = (
            SparseVector(*sparse_parts(node.query)) if node.kind == "sparse"
            else as_list(node.query)
        )
        query = Query.Nearest(vector, using=node.vector)
        if node.exact:
            params = SearchParams(exact=True)
        elif node.hnsw_ef is not None:
            params = SearchParams(hnsw_ef=node.hnsw_ef)
    parts: dict[str, Any] = {
        "limit": node.limit,
        "query": query,
        "prefetches": prefetches,
        "params": params,
        "filter": filters[key],
    }
    if top:  # ids and scores only: the store fetches the payloads of the final hits
        return QueryRequest(**parts, with_payload=False, with_vector=False)
    return Prefetch(**parts)


def rows(points: Sequence[Any]) -> list[Row]:
    """Scored points as rows (payloads only where the query asked for them)."""
    return [(str(p.id), float(p.score), dict(p.payload or {})) for p in points]


def to_filter(conditions: Sequence[Condition]) -> Filter | None:
    if not conditions:
        return None
    must: list[Any] = []
    for c in conditions:
        if c.op == "match":
            must.append(FieldCondition(c.key, match=MatchValue(c.value)))
        elif c.op == "any":
            must.append(FieldCondition(c.key, match=MatchAny(list(c.value))))
        else:
            must.append(
                FieldCondition(c.key, range=RangeFloat(**{k: float(v) for k, v in c.value.items()}))
            )
    return Filter(must=must)
