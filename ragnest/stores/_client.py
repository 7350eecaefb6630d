"""qdrant-client backend: a Qdrant server/cluster (``url=``) or local mode (``:memory:``).

This is the only module importing ``qdrant_client``. ragnest metadata (specs,
identity, version) lives in the collection's own ``metadata`` under ``"ragnest"``
(qdrant-client >= 1.16 / server >= 1.16; it round-trips in local mode too).

Weighted RRF: qdrant-client 1.20 has ``models.RrfQuery(rrf=models.Rrf(k, weights))``,
supported by the server and by local mode alike, so no client-side fusion is needed.

    >>> from ragnest.stores import QdrantStore
    >>> store = QdrantStore(url="http://localhost:6333", collection="manuals")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

from qdrant_client import QdrantClient, models
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from ragnest.errors import StoreError, StoreMismatchError
from ragnest.stores._backend import (
    INDEXED_FIELDS,
    Failure,
    PointData,
    Row,
    as_list,
    scroll_payloads,
    sparse_parts,
)
from ragnest.stores._filters import Condition
from ragnest.stores._meta import build_metadata, mismatch_reasons
from ragnest.stores._plan import FusionNode, PlanNode
from ragnest.stores._server import ServerSettings
from ragnest.types import VectorSpec

__all__ = ["META_KEY", "ClientBackend"]

log = logging.getLogger(__name__)

#: Key of ragnest's record inside the collection metadata.
META_KEY = "ragnest"


class ClientBackend:
    """A collection reached through ``qdrant_client.QdrantClient``."""

    def __init__(
        self,
        *,
        url: str | None,
        location: str | None,
        collection: str,
        api_key_env: str,
        hnsw_m: int,
        hnsw_ef_construct: int,
        hnsw_ef: int,
        full_scan_threshold: int | None,
        timeout: float = 10.0,
        server: Mapping[str, Any] | None = None,
    ) -> None:
        self.server = ServerSettings.from_mapping(server)
        self.url = url
        self.timeout = timeout
        self.location = location
        self.collection = collection
        self.api_key_env = api_key_env
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construct = hnsw_ef_construct
        self.hnsw_ef = hnsw_ef
        self.full_scan_threshold = full_scan_threshold
        self.kind: Literal["server", "memory"] = "server" if url else "memory"
        self._client: QdrantClient | None = None
        self._specs: dict[str, VectorSpec] = {}

    @property
    def where(self) -> str:
        return f"collection {self.collection!r} at {self.url or self.location}"

    def classify(self, error: BaseException) -> Failure | None:
        """qdrant-client's errors: a transport failure (refused, reset, timed out), HTTP
        5xx/408/429 or an unreadable answer may be retried; refused credentials or a
        vanished collection mean the store cannot work; other 4xx refuse the data."""
        if isinstance(error, ResourceExhaustedResponse):
            return Failure(
                "retry", f"rate limited by the server ({error})", float(error.retry_after_s)
            )
        if isinstance(error, ResponseHandlingException):
            source = error.source
            name = type(source).__name__
            if "Timeout" in name:
                return Failure("retry", f"no answer within {self.timeout:g} s ({name})")
            if type(source).__module__.startswith(("httpx", "httpcore")):
                return Failure("retry", f"cannot reach the server ({name}: {source})")
            return Failure("retry", f"unexpected answer from the server ({name}: {source})")
        if isinstance(error, UnexpectedResponse):
            code = error.status_code
            detail = _detail(error)
            if code is None or code >= 500 or code in (408, 429):
                return Failure("retry", f"HTTP {code}: {detail}")
            if code in (401, 403):
                return Failure(
                    "unavailable",
                    f"HTTP {code}: the server refused the credentials (API key from "
                    f"${self.api_key_env}): {detail}",
                )
            if code == 404:
                return Failure("unavailable", f"HTTP 404: {detail} (was the collection deleted?)")
            return Failure("data", f"the server refused the request: HTTP {code}: {detail}")
        return None

    def _connect(self) -> QdrantClient:
        if self._client is None:
            if self.url:
                # qdrant-client's own timeout (connect, read, write), in whole seconds
                self._client = QdrantClient(
                    url=self.url,
                    api_key=os.environ.get(self.api_key_env),
                    timeout=math.ceil(self.timeout),
                    **self.server.client_kwargs(),
                )
            else:
                self._client = QdrantClient(location=self.location)
        return self._client

    def open(self, specs: Sequence[VectorSpec], identity: Mapping[str, Any]) -> None:
        client = self._connect()
        try:
            if client.collection_exists(self.collection):
                info = client.get_collection(self.collection)
                stored = (info.config.metadata or {}).get(META_KEY)
                if stored is None:
                    if info.points_count:
                        raise StoreError(
                            f"{self.where} holds {info.points_count} points but no ragnest "
                            "metadata, so its embedder and ladder are unknown; use another "
                            "collection name"
                        )
                    client.update_collection(
                        self.collection, metadata={META_KEY: build_metadata(specs, identity)}
                    )
                else:
                    reasons = mismatch_reasons(stored, specs, identity)
                    if reasons:
                        raise StoreMismatchError(
                            f"{self.where} was built with a different setup: "
                            f"{'; '.join(reasons)}. Use a new collection name (collection=...), "
                            "or delete the collection to rebuild it."
                        )
                self._shard_key(client, create=False)
                log.info("opened %s", self.where)
            else:
                self._create(client, specs, identity)
                log.info("created %s", self.where)
        except BaseException:
            if not self._specs:  # first open failed: do not keep a half-open client
                self.close()
            raise
        self._specs = {s.name: s for s in specs}

    def _hnsw(self, m: int) -> models.HnswConfigDiff:
        return models.HnswConfigDiff(
            m=m, ef_construct=self.hnsw_ef_construct, full_scan_threshold=self.full_scan_threshold
        )

    def _create(
        self, client: QdrantClient, specs: Sequence[VectorSpec], identity: Mapping[str, Any]
    ) -> None:
        dense: dict[str, models.VectorParams] = {}
        sparse: dict[str, models.SparseVectorParams] = {}
        for s in specs:
            if s.kind == "sparse":
                sparse[s.name] = models.SparseVectorParams(
                    modifier=models.Modifier.IDF if s.modifier == "idf" else None
                )
                continue
            quant: Any = None
            if s.quantization == "binary":
                quant = models.BinaryQuantization(binary=models.BinaryQuantizationConfig(always_ram=self.server.quantization_always_ram))
            elif s.quantization == "scalar":
                quant = models.ScalarQuantization(
                    scalar=models.ScalarQuantizationConfig(
                        type=models.ScalarType.INT8, always_ram=self.server.quantization_always_ram)
                )
            dense[s.name] = models.VectorParams(
                size=s.dim,
                distance=models.Distance.COSINE if s.distance == "cosine" else models.Distance.DOT,
                multivector_config=(
                    models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
                    if s.kind == "multi"
                    else None
                ),
                datatype=None if s.datatype == "float32" else models.Datatype(s.datatype),
                quantization_config=quant,
                hnsw_config=self._hnsw(self.hnsw_m if s.index == "hnsw" else 0),
                on_disk=self.server.vector_on_disk(s.name),
            )
        client.create_collection(
            self.collection,
            vectors_config=dense,
            sparse_vectors_config=sparse or None,
            hnsw_config=self._hnsw(self.hnsw_m),
            metadata={META_KEY: build_metadata(specs, identity)},
            **self.server.create_kwargs(),
        )
        if self.kind == "server":  # local mode ignores payload indexes (and warns)
            tenant = models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
            client.create_payload_index(self.collection, self.server.tenant_key, field_schema=tenant, wait=True)
            self._shard_key(client, create=True)
            for field, kind in INDEXED_FIELDS.items():
                schema = (
                    models.PayloadSchemaType.INTEGER
                    if kind == "integer"
                    else models.PayloadSchemaType.KEYWORD
                )
                client.create_payload_index(self.collection, field, field_schema=schema, wait=True)

    def _shard_key(self, client: QdrantClient, *, create: bool) -> None:
        """Make this handle's custom shard key exist (a new tenant's first use)."""
        key = self.server.shard_key
        if key is not None and (create or key not in {d.key for d in client.list_shard_keys(self.collection).shard_keys or ()}):
            client.create_shard_key(self.collection, key)

    def _record(self) -> dict[str, Any]:
        info = self._connect().get_collection(self.collection)
        return dict((info.config.metadata or {}).get(META_KEY) or {})

    def fitted(self, key: str) -> dict[str, Any] | None:
        return (self._record().get("fitted") or {}).get(key)

    def save_fitted(self, key: str, state: Mapping[str, Any]) -> None:
        record = self._record()
        record.setdefault("fitted", {})[key] = dict(state)
        self._connect().update_collection(self.collection, metadata={META_KEY: record})

    def close(self) -> None:
        client, self._client = self._client, None
        self._specs = {}
        if client is not None:
            client.close()

    def drop(self) -> None:
        client = self._connect()
        if client.collection_exists(self.collection):
            client.delete_collection(self.collection)

    def describe(self) -> dict[str, Any]:
        where = {"url": self.url} if self.url else {"location": self.location}
        return {"backend": self.kind, "collection": self.collection, **where}

    def vector_config(self) -> dict[str, dict[str, Any]]:
        params = self.client.get_collection(self.collection).config.params
        out: dict[str, dict[str, Any]] = {}
        vectors = params.vectors if isinstance(params.vectors, dict) else {}
        for name, v in vectors.items():
            quant = v.quantization_config
            out[name] = {
                "kind": "multi" if v.multivector_config else "dense",
                "dim": v.size,
                "distance": str(v.distance.value).lower(),
                "hnsw_m": v.hnsw_config.m
                if v.hnsw_config and v.hnsw_config.m is not None
                else self.hnsw_m,
                "quantization": (
                    "binary"
                    if isinstance(quant, models.BinaryQuantization)
                    else "scalar"
                    if isinstance(quant, models.ScalarQuantization)
                    else None
                ),
                "datatype": str(v.datatype.value).lower() if v.datatype else "float32",
            }
        for name, sv in (params.sparse_vectors or {}).items():
            modifier = sv.modifier.value if sv.modifier else None
            out[name] = {"kind": "sparse", "modifier": modifier}
        return out

    @property
    def _w(self) -> dict[str, Any]:  # write ordering and shard key (a server only)
        return self.server.write_kwargs() if self.kind == "server" else {}

    @property
    def _r(self) -> dict[str, Any]:  # read consistency and shard key (a server only)
        return self.server.read_kwargs() if self.kind == "server" else {}

    @property
    def client(self) -> QdrantClient:
        if self._client is None:
            raise StoreError(f"{self.where} is not open")
        return self._client

    def _vector(self, name: str, value: Any) -> Any:
        spec = self._specs.get(name)
        if spec is not None and spec.kind == "sparse":
            indices, values = sparse_parts(value)
            return models.SparseVector(indices=indices, values=values)
        return as_list(value)

    def upsert(self, points: Sequence[PointData]) -> None:
        if not points:
            return
        self.client.upsert(
            self.collection,
            points=[
                models.PointStruct(
                    id=p.id,
                    vector={n: self._vector(n, v) for n, v in p.vectors.items()},
                    payload={**p.payload, **self.server.tenant_payload()},
                )
                for p in points
            ],
            wait=True,
            **self._w,
        )

    def set_payload(self, ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        if ids:
            self.client.set_payload(
                self.collection, payload=dict(payload), points=list(ids), wait=True, **self._w
            )

    def delete_ids(self, ids: Sequence[str]) -> None:
        if ids:
            self.client.delete(
                self.collection, points_selector=models.PointIdsList(points=list(ids)), wait=True, **self._w
            )

    def delete_payload(self, ids: Sequence[str], keys: Sequence[str]) -> None:
        if ids and keys:
            self.client.delete_payload(
                self.collection, keys=list(keys), points=list(ids), wait=True, **self._w
            )

    def delete_where(self, conditions: Sequence[Condition]) -> None:
        if not conditions:
            raise StoreError("refusing to delete without a filter")
        flt = _filter(self.server.scoped(conditions))
        self.client.delete(
            self.collection, points_selector=models.FilterSelector(filter=flt), wait=True, **self._w
        )

    def refresh(self) -> bool:
        """A server's readers always see its current data (nothing to move to)."""
        return False

    def atomic(self) -> AbstractContextManager[None]:
        return nullcontext()  # a server's readers see each call as it is applied

    def flush(self) -> None:
        """Writes are acknowledged with ``wait=True``; nothing to flush client-side."""

    def optimize(self) -> bool:
        """The server optimizes in the background; local mode has no index to build."""
        return False

    def ids_where(self, conditions: Sequence[Condition]) -> list[str]:
        return [pid for pid, _ in self._scroll(conditions, False, None)]

    def payloads_where(
        self, conditions: Sequence[Condition], keys: Sequence[str] | None, limit: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        return self._scroll(conditions, list(keys) if keys else True, limit)

    def _scroll(
        self, conditions: Sequence[Condition], with_payload: Any, limit: int | None
    ) -> list[tuple[str, dict[str, Any]]]:
        flt = _filter(self.server.scoped(conditions))

        def fetch(offset: Any, size: int) -> tuple[Sequence[Any], Any]:
            return self.client.scroll(self.collection, scroll_filter=flt, limit=size,
                                      offset=offset, with_payload=with_payload,
                                      with_vectors=False, **self._r)

        return scroll_payloads(fetch, limit)

    def count(self, conditions: Sequence[Condition] = (), exact: bool = True) -> int:
        return int(
            self.client.count(self.collection, count_filter=_filter(self.server.scoped(conditions)), exact=exact, **self.server.read_kwargs(consistency=False)).count
        )

    def facet(self, key: str) -> dict[Any, int]:
        limit = max(self.count(), 1)
        response = self.client.facet(self.collection, key, limit=limit, exact=True, facet_filter=_filter(self.server.scoped(())), **self._r)
        # Edge 0.9 (exact=True) still lists values whose points were all deleted, with count 0
        return {hit.value: int(hit.count) for hit in response.hits if hit.count > 0}

    def retrieve(self, ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        if not ids:
            return []
        records = self.client.retrieve(
            self.collection, list(ids), with_payload=True, with_vectors=False, **self._r
        )
        return [(str(r.id), dict(r.payload or {})) for r in records]

    def vectors(self, ids: Sequence[str], names: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids or not names:
            return {}
        records = self.client.retrieve(
            self.collection, list(ids), with_payload=False, with_vectors=list(names), **self._r
        )
        return {str(r.id): dict(r.vector or {}) for r in records}

    def query(self, requests: Sequence[PlanNode]) -> list[list[Row]]:
        filters: dict[int, models.Filter | None] = {}
        built = [self._translate(node, filters, top=True) for node in requests]
        if len(built) == 1:
            req = built[0]
            response = self.client.query_points(
                self.collection,
                prefetch=req.prefetch,
                query=req.query,
                using=req.using,
                query_filter=req.filter,
                search_params=req.params,
                limit=req.limit,
                with_payload=False,
                **self._r,
            )
            return [_rows(response.points)]
        consistency = {k: v for k, v in self._r.items() if k == "consistency"}
        responses = self.client.query_batch_points(self.collection, requests=built, **consistency)
        return [_rows(r.points) for r in responses]

    def _translate(
        self, node: PlanNode, filters: dict[int, models.Filter | None], *, top: bool
    ) -> Any:
        """A plan node as a ``QueryRequest`` (``top``) or a ``Prefetch``, recursively."""
        key = id(node.conditions)  # one filter object for the plan's shared conditions
        if key not in filters:
            filters[key] = _filter(self.server.scoped(node.conditions))
        prefetch = [self._translate(p, filters, top=False) for p in node.prefetch] or None
        query: Any
        using: str | None = None
        params: models.SearchParams | None = None
        if isinstance(node, FusionNode):
            query = (
                models.RrfQuery(rrf=models.Rrf(k=node.k, weights=list(node.weights)))
                if node.method == "rrf"
                else models.FusionQuery(fusion=models.Fusion.DBSF)
            )
        else:
            if node.kind == "sparse":
                indices, values = sparse_parts(node.query)
                query = models.SparseVector(indices=indices, values=values)
            else:
                query = as_list(node.query)
            using = node.vector
            # local mode is brute force and warns about search params
            if (node.exact or node.hnsw_ef is not None) and self.kind != "memory":
                params = (models.SearchParams(exact=True) if node.exact
                          else models.SearchParams(hnsw_ef=node.hnsw_ef))
        parts: dict[str, Any] = {
            "prefetch": prefetch,
            "query": query,
            "using": using,
            "filter": filters[key],
            "params": params,
            "limit": node.limit,
        }
        if top:  # ids and scores only: the store fetches the payloads of the final hits
            return models.QueryRequest(**parts, with_payload=False, with_vector=False,
                                       shard_key=self.server.shard_key)
        return models.Prefetch(**parts)


def _detail(error: UnexpectedResponse) -> str:
    """The server's error message, else the start of its answer."""
    try:
        return str(error.structured()["status"]["error"])
    except Exception:
        return error.content[:200].decode("utf-8", "replace") or error.reason_phrase


def _rows(points: Sequence[Any]) -> list[Row]:
    return [(str(p.id), float(p.score), dict(p.payload or {})) for p in points]


def _filter(conditions: Sequence[Condition]) -> models.Filter | None:
    if not conditions:
        return None
    must: list[Any] = []
    for c in conditions:
        if c.op == "match":
            must.append(models.FieldCondition(key=c.key, match=models.MatchValue(value=c.value)))
        elif c.op == "any":
            must.append(models.FieldCondition(key=c.key, match=models.MatchAny(any=list(c.value))))
        else:
            must.append(models.FieldCondition(key=c.key, range=models.Range(**c.value)))
    return models.Filter(must=must)
