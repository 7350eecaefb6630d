"""Qdrant Edge backend: Qdrant's engine in-process (the only module importing ``qdrant_edge``).

Layout under the store ``path``::

    path/.ragnest.lock                 exclusive OS lock, taken before any shard is touched
    path/<collection>/                 the EdgeShard (segments, WAL, edge_config.json)
    path/<collection>.ragnest.json     ragnest metadata: specs, identity, version

Used through :class:`ragnest.stores.QdrantStore`::

    >>> from ragnest.stores import QdrantStore
    >>> store = QdrantStore(path="/tmp/ragnest-db")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from qdrant_edge import (
    BinaryQuantizationConfig,
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FacetRequest,
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
    Point,
    Prefetch,
    Query,
    QueryBatchRequest,
    QueryRequest,
    RangeFloat,
    ScalarQuantizationConfig,
    ScalarType,
    ScrollRequest,
    SearchParams,
    SparseVector,
    UpdateOperation,
    VectorStorageDatatype,
)

from ragnest.errors import StoreError, StoreMismatchError
from ragnest.stores._backend import INDEXED_FIELDS, Failure, PointData, Row, as_list, sparse_parts
from ragnest.stores._filters import Condition
from ragnest.stores._lock import DirectoryLock
from ragnest.stores._meta import build_metadata, mismatch_reasons, read_json, write_json_atomic
from ragnest.stores._plan import FusionNode, PlanNode
from ragnest.types import VectorSpec

__all__ = ["DEFAULT_FULL_SCAN_THRESHOLD", "EdgeBackend"]

log = logging.getLogger(__name__)

#: Qdrant's default full-scan threshold (KB of vectors below which search is exact).
DEFAULT_FULL_SCAN_THRESHOLD = 10_000
_SCROLL_PAGE = 1024
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


class EdgeBackend:
    """One Edge shard plus its ragnest metadata, guarded by a directory lock."""

    kind: Literal["edge"] = "edge"

    def __init__(
        self,
        path: str,
        collection: str,
        *,
        hnsw_m: int,
        hnsw_ef_construct: int,
        hnsw_ef: int,
        full_scan_threshold: int | None,
    ) -> None:
        self.root = Path(path).expanduser().absolute()
        self.collection = collection
        self.shard_dir = self.root / collection
        self.meta_path = self.root / f"{collection}.ragnest.json"
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construct = hnsw_ef_construct
        self.hnsw_ef = hnsw_ef
        self.full_scan_threshold = (
            DEFAULT_FULL_SCAN_THRESHOLD if full_scan_threshold is None else full_scan_threshold
        )
        self._lock = DirectoryLock(self.root)
        self._shard: EdgeShard | None = None
        self._specs: dict[str, VectorSpec] = {}

    def classify(self, error: BaseException) -> Failure | None:
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

    # ------------------------------------------------------------------ lifecycle
    def open(self, specs: Sequence[VectorSpec], identity: Mapping[str, Any]) -> None:
        if self._shard is not None:  # already open: only re-check the recorded setup
            self._check(read_json(self.meta_path), specs, identity)
            self._specs = {s.name: s for s in specs}
            return
        self._lock.acquire()  # before touching the shard, always
        try:
            self._open_locked(specs, identity)
        except BaseException:
            if self._shard is not None:
                try:
                    self._shard.close()
                finally:
                    self._shard = None
            self._lock.release()
            raise
        self._specs = {s.name: s for s in specs}

    def _open_locked(self, specs: Sequence[VectorSpec], identity: Mapping[str, Any]) -> None:
        has_shard = (self.shard_dir / "edge_config.json").exists() or (
            self.shard_dir / "segments"
        ).exists()
        has_meta = self.meta_path.exists()
        if has_meta and has_shard:
            self._check(read_json(self.meta_path), specs, identity)
            self._shard = EdgeShard.load(str(self.shard_dir))
            log.info("opened Qdrant Edge collection %r at %s", self.collection, self.shard_dir)
            return
        if has_shard:  # created, but the metadata write never happened
            shard = EdgeShard.load(str(self.shard_dir))
            points = shard.info().points_count
            if points:
                shard.close()
                raise StoreError(
                    f"{self.shard_dir} holds {points} points but no ragnest metadata "
                    f"({self.meta_path} is missing), so its embedder and ladder are unknown; "
                    "delete the directory to rebuild it, or use another collection name"
                )
            self._shard = shard
        else:
            if has_meta:
                log.warning(
                    "metadata %s has no shard next to it; creating an empty collection",
                    self.meta_path,
                )
            self._shard = EdgeShard.create(str(self.shard_dir), self._config(specs))
            for field, kind in INDEXED_FIELDS.items():
                schema = (
                    PayloadSchemaType.Integer if kind == "integer" else PayloadSchemaType.Keyword
                )
                self._shard.update(UpdateOperation.create_field_index(field, schema))
            self._shard.flush()
            log.info("created Qdrant Edge collection %r at %s", self.collection, self.shard_dir)
        write_json_atomic(self.meta_path, build_metadata(specs, identity))

    def _check(
        self, stored: Mapping[str, Any], specs: Sequence[VectorSpec], identity: Mapping[str, Any]
    ) -> None:
        reasons = mismatch_reasons(stored, specs, identity)
        if reasons:
            raise StoreMismatchError(
                f"collection {self.collection!r} at {self.root} was built with a different "
                f"setup: {'; '.join(reasons)}. Use a new collection name (collection=...) or a "
                f"new path, or delete {self.shard_dir} and {self.meta_path} to rebuild it."
            )

    def _config(self, specs: Sequence[VectorSpec]) -> EdgeConfig:
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
                hnsw_config=self._hnsw(self.hnsw_m if s.index == "hnsw" else 0),
            )
        return EdgeConfig(
            vectors=dense or None,
            sparse_vectors=sparse or None,
            hnsw_config=self._hnsw(self.hnsw_m),
        )

    def _hnsw(self, m: int) -> HnswIndexConfig:
        return HnswIndexConfig(
            m=m, ef_construct=self.hnsw_ef_construct, full_scan_threshold=self.full_scan_threshold
        )

    def close(self) -> None:
        shard, self._shard = self._shard, None
        try:
            if shard is not None:
                try:
                    shard.flush()
                finally:
                    shard.close()
                log.debug("closed Qdrant Edge collection %r", self.collection)
        finally:
            self._lock.release()

    def drop(self) -> None:
        self._lock.acquire()
        try:
            if self._shard is not None:
                self._shard.close()
                self._shard = None
            shutil.rmtree(self.shard_dir, ignore_errors=True)
            self.meta_path.unlink(missing_ok=True)
        finally:
            self._lock.release()

    def fitted(self, key: str) -> dict[str, Any] | None:
        record = read_json(self.meta_path) if self.meta_path.exists() else {}
        return (record.get("fitted") or {}).get(key)

    def save_fitted(self, key: str, state: Mapping[str, Any]) -> None:
        record = read_json(self.meta_path)
        record.setdefault("fitted", {})[key] = dict(state)
        write_json_atomic(self.meta_path, record)

    def describe(self) -> dict[str, Any]:
        return {"backend": "edge", "path": str(self.root), "collection": self.collection}

    def vector_config(self) -> dict[str, dict[str, Any]]:
        """The engine's own view of each named vector (read from ``edge_config.json``)."""
        raw = json.loads((self.shard_dir / "edge_config.json").read_text(encoding="utf-8"))
        out: dict[str, dict[str, Any]] = {}
        for name, v in (raw.get("vectors") or {}).items():
            out[name] = {
                "kind": "multi" if v.get("multivector_config") else "dense",
                "dim": v.get("size"),
                "distance": str(v.get("distance", "")).lower(),
                "hnsw_m": (v.get("hnsw_config") or {}).get("m", self.hnsw_m),
                "quantization": next(iter(v.get("quantization_config") or {}), None),
                "datatype": v.get("datatype") or "float32",
            }
        for name, v in (raw.get("sparse_vectors") or {}).items():
            out[name] = {"kind": "sparse", "modifier": v.get("modifier")}
        return out

    @property
    def shard(self) -> EdgeShard:
        if self._shard is None:
            raise StoreError(f"collection {self.collection!r} at {self.root} is not open")
        return self._shard

    # ------------------------------------------------------------------ writes
    def _vector(self, name: str, value: Any) -> Any:
        spec = self._specs.get(name)
        if spec is not None and spec.kind == "sparse":
            return SparseVector(*sparse_parts(value))
        return as_list(value)

    def upsert(self, points: Sequence[PointData]) -> None:
        if not points:
            return
        self.shard.update(
            UpdateOperation.upsert_points(
                [
                    Point(p.id, {n: self._vector(n, v) for n, v in p.vectors.items()}, p.payload)
                    for p in points
                ]
            )
        )

    def set_payload(self, ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        if ids:
            self.shard.update(UpdateOperation.set_payload(list(ids), dict(payload)))

    def delete_ids(self, ids: Sequence[str]) -> None:
        if ids:
            self.shard.update(UpdateOperation.delete_points(list(ids)))

    def delete_payload(self, ids: Sequence[str], keys: Sequence[str]) -> None:
        if ids and keys:
            self.shard.update(UpdateOperation.delete_payload(list(ids), list(keys)))

    def delete_where(self, conditions: Sequence[Condition]) -> None:
        flt = _filter(conditions)
        if flt is None:
            raise StoreError("refusing to delete without a filter")
        self.shard.update(UpdateOperation.delete_points_by_filter(flt))

    def flush(self) -> None:
        self.shard.flush()

    def optimize(self) -> bool:
        return bool(self.shard.optimize())

    # ------------------------------------------------------------------ reads
    def ids_where(self, conditions: Sequence[Condition]) -> list[str]:
        return [pid for pid, _ in self._scroll(conditions, False, None)]

    def payloads_where(
        self, conditions: Sequence[Condition], keys: Sequence[str] | None, limit: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        return self._scroll(conditions, list(keys) if keys else True, limit)

    def _scroll(
        self, conditions: Sequence[Condition], with_payload: Any, limit: int | None
    ) -> list[tuple[str, dict[str, Any]]]:
        flt = _filter(conditions)
        out: list[tuple[str, dict[str, Any]]] = []
        offset: Any = None
        while True:
            page = _SCROLL_PAGE if limit is None else min(_SCROLL_PAGE, limit - len(out))
            records, offset = self.shard.scroll(
                ScrollRequest(
                    offset=offset,
                    limit=page,
                    filter=flt,
                    with_payload=with_payload,
                    with_vector=False,
                )
            )
            out.extend((str(r.id), dict(r.payload or {})) for r in records)
            if offset is None or not records or (limit is not None and len(out) >= limit):
                return out

    def count(self, conditions: Sequence[Condition] = ()) -> int:
        return int(self.shard.count(CountRequest(exact=True, filter=_filter(conditions))))

    def facet(self, key: str) -> dict[Any, int]:
        limit = max(self.count(), 1)
        response = self.shard.facet(FacetRequest(key, limit=limit, exact=True))
        # Edge 0.9 (exact=True) still lists values whose points were all deleted, with count 0
        return {hit.value: int(hit.count) for hit in response.hits if hit.count > 0}

    def retrieve(self, ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        if not ids:
            return []
        return [
            (str(r.id), dict(r.payload or {})) for r in self.shard.retrieve(list(ids), True, False)
        ]

    def vectors(self, ids: Sequence[str], names: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        wanted = set(names)
        return {
            str(r.id): {k: v for k, v in (r.vector or {}).items() if k in wanted}
            for r in self.shard.retrieve(list(ids), False, True)
        }

    # ------------------------------------------------------------------ search
    def query(self, requests: Sequence[PlanNode]) -> list[list[Row]]:
        filters: dict[int, Filter | None] = {}
        built = [self._translate(node, filters, top=True) for node in requests]
        if len(built) == 1:
            return [_rows(self.shard.query(built[0]))]
        return [_rows(points) for points in self.shard.query_batch(QueryBatchRequest(built))]

    def _translate(self, node: PlanNode, filters: dict[int, Filter | None], *, top: bool) -> Any:
        """A plan node as a ``QueryRequest`` (``top``) or a ``Prefetch``, recursively."""
        key = id(node.conditions)  # one filter object for the plan's shared conditions
        if key not in filters:
            filters[key] = _filter(node.conditions)
        prefetches = [self._translate(p, filters, top=False) for p in node.prefetch] or None
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
                SparseVector(*sparse_parts(node.query))
                if node.kind == "sparse"
                else as_list(node.query)
            )
            query = Query.Nearest(vector, using=node.vector)
            if node.hnsw_ef is not None:
                params = SearchParams(hnsw_ef=node.hnsw_ef)
        parts: dict[str, Any] = {
            "limit": node.limit,
            "query": query,
            "prefetches": prefetches,
            "params": params,
            "filter": filters[key],
        }
        if top:
            return QueryRequest(**parts, with_payload=True, with_vector=False)
        return Prefetch(**parts)


def _rows(points: Sequence[Any]) -> list[Row]:
    return [(str(p.id), float(p.score), dict(p.payload or {})) for p in points]


def _filter(conditions: Sequence[Condition]) -> Filter | None:
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
