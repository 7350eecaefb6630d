"""The server path at the request level, where no Qdrant server runs: respx captures
qdrant-client's REST requests for a ladder with sharding, replication, on-disk vectors,
quantization per level, a tenant and a custom shard key; each body is validated against
qdrant-client's own request models (``extra="forbid"``), then checked for the settings."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest

from ragnest.errors import StoreUnavailableError
from ragnest.stores import QdrantStore
from ragnest.types import (
    Chunk,
    EmbeddedChunk,
    Route,
    SearchRequest,
    SparseVector,
    Stage,
    VectorSpec,
    make_chunk_id,
)

respx = pytest.importorskip("respx", reason="request-level tests need respx (the dev extra)")
httpx = pytest.importorskip("httpx")
from qdrant_client.http import models  # noqa: E402

URL = "http://qdrant.test:6333"
SPECS = [
    VectorSpec(name="dense-coarse", kind="dense", dim=8, index="hnsw", quantization="binary"),
    VectorSpec(name="dense-mid", kind="multi", dim=4, quantization="scalar"),
    VectorSpec(name="dense-fine", kind="multi", dim=4),
    VectorSpec(name="bm25-sparse", kind="sparse", modifier="idf"),
]
SERVER = {"shard_number": 6, "replication_factor": 2, "write_consistency_factor": 2,
          "on_disk_payload": True, "on_disk_vectors": ["dense-mid", "dense-fine"],
          "quantization_always_ram": True, "tenant": "acme", "shard_key": "acme",
          "write_ordering": "strong", "read_consistency": "majority", "check_compatibility": False}
OK = {"status": "ok", "time": 0.0}
UPDATE = {"result": {"operation_id": 1, "status": "completed"}, **OK}


def _fake_server(router: Any, calls: list[tuple[str, str, dict, Any]]) -> None:
    """Answers qdrant-client like an empty server and records every request."""

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path, method = request.url.path, request.method
        calls.append((method, path, dict(request.url.params), body))
        if path == "/":
            return httpx.Response(200, json={"title": "qdrant", "version": "1.16.0"})
        if path.endswith("/exists"):
            return httpx.Response(200, json={"result": {"exists": False}, **OK})
        if path.endswith("/points/scroll"):
            return httpx.Response(200, json={"result": {"points": [], "next_page_offset": None}, **OK})
        if path.endswith("/points/query"):
            return httpx.Response(200, json={"result": {"points": []}, **OK})
        if path.endswith("/points/count"):  # bigger than the coarse budget: both stages run
            return httpx.Response(200, json={"result": {"count": 1000}, **OK})
        if re.fullmatch(r"/collections/[^/]+", path) and method == "PUT":
            return httpx.Response(200, json={"result": True, **OK})
        if path.endswith("/shards"):
            return httpx.Response(200, json={"result": True, **OK})
        return httpx.Response(200, json=UPDATE)

    router.route(host="qdrant.test").mock(side_effect=answer)


def _point(i: int) -> EmbeddedChunk:
    chunk = Chunk(id=make_chunk_id("doc", i, f"t{i}"), document_id="doc", kind="text",
                  text=f"text {i}", page=1)
    rng = np.random.default_rng(i)
    return EmbeddedChunk(chunk=chunk, vectors={
        "dense-coarse": rng.standard_normal(8).astype(np.float32),
        "dense-mid": rng.standard_normal((2, 4)).astype(np.float32),
        "dense-fine": rng.standard_normal((5, 4)).astype(np.float32),
        "bm25-sparse": SparseVector(indices=(1, 7), values=(0.5, 1.5)),
    })


def _calls(calls: list, method: str, suffix: str) -> list[tuple[dict, Any]]:
    return [(params, body) for m, path, params, body in calls
            if m == method and path.endswith(suffix)]


def test_server_requests_carry_the_cluster_and_tenant_settings() -> None:
    calls: list[tuple[str, str, dict, Any]] = []
    with respx.mock(assert_all_called=False) as router:
        _fake_server(router, calls)
        store = QdrantStore(url=URL, collection="manuals", server=SERVER, retries=0)
        store.open(SPECS, {"dense": {"model": "demo"}})
        points = [_point(i) for i in range(3)]
        with store.begin("doc", [p.chunk.id for p in points], fingerprint="f1") as tx:
            tx.add(points)
            tx.commit()
        query = np.ones(8, dtype=np.float32)
        store.search(SearchRequest(routes=(Route(name="dense", stages=(
            Stage(vector="dense-coarse", query=query, limit=10),
            Stage(vector="dense-fine", query=np.ones((2, 4), np.float32), limit=3))),), limit=3))
        store.close()

    (_, create), = _calls(calls, "PUT", "/collections/manuals")
    create = models.CreateCollection.model_validate(create)
    assert (create.shard_number, create.replication_factor, create.write_consistency_factor,
            create.on_disk_payload) == (6, 2, 2, True)
    assert create.sharding_method == models.ShardingMethod.CUSTOM
    vectors = create.vectors
    assert isinstance(vectors, dict) and set(vectors) == {"dense-coarse", "dense-mid", "dense-fine"}
    assert [vectors[n].on_disk for n in ("dense-coarse", "dense-mid", "dense-fine")] == [False, True, True]
    coarse, mid, fine = (vectors[n] for n in ("dense-coarse", "dense-mid", "dense-fine"))
    assert isinstance(coarse.quantization_config, models.BinaryQuantization)
    assert coarse.quantization_config.binary.always_ram is True
    assert isinstance(mid.quantization_config, models.ScalarQuantization)
    assert fine.quantization_config is None and fine.multivector_config is not None
    assert coarse.hnsw_config.m == 16 and mid.hnsw_config.m == 0  # HNSW on the coarse level only
    assert create.sparse_vectors["bm25-sparse"].modifier == models.Modifier.IDF

    indexes = [models.CreateFieldIndex.model_validate(b) for _, b in _calls(calls, "PUT", "/index")]
    tenant = next(i for i in indexes if i.field_name == "tenant")
    assert tenant.field_schema.is_tenant is True
    (_, shard), = _calls(calls, "PUT", "/shards")
    assert models.CreateShardingKey.model_validate(shard).shard_key == "acme"

    (params, upsert), = _calls(calls, "PUT", "/points")
    batch = models.PointsList.model_validate(upsert)
    assert params.get("ordering") == "strong" and batch.shard_key == "acme"
    assert len(batch.points) == 3
    for p in batch.points:
        assert p.payload["tenant"] == "acme" and p.payload["doc_pending"] == 1
        assert set(p.vector) == {"dense-coarse", "dense-mid", "dense-fine", "bm25-sparse"}
        assert len(p.vector["dense-fine"]) == 5 and len(p.vector["dense-mid"][0]) == 4
    for params, body in _calls(calls, "POST", "/points/payload"):  # the commit marks
        assert models.SetPayload.model_validate(body).shard_key == "acme"
        assert params.get("ordering") == "strong"

    scrolls = _calls(calls, "POST", "/points/scroll")
    assert scrolls
    for params, body in scrolls:
        request = models.ScrollRequest.model_validate(body)
        assert params.get("consistency") == "majority" and request.shard_key == "acme"
        assert {"key": "tenant", "match": {"value": "acme"}} in body["filter"]["must"]

    (params, body), = _calls(calls, "POST", "/points/query")
    request = models.QueryRequest.model_validate(body)
    assert params.get("consistency") == "majority" and request.shard_key == "acme"
    stages = [body]
    while stages[-1].get("prefetch"):
        stages.append(stages[-1]["prefetch"] if isinstance(stages[-1]["prefetch"], dict)
                      else stages[-1]["prefetch"][0])
    assert [s.get("using") for s in stages] == ["dense-fine", "dense-coarse"]
    for stage in stages:  # the tenant filter at every stage of the funnel
        assert {"key": "tenant", "match": {"value": "acme"}} in stage["filter"]["must"]


def test_a_dead_server_is_a_clear_error() -> None:
    store = QdrantStore(url="http://127.0.0.1:9", collection="manuals", timeout=1, retries=0,
                        server={"check_compatibility": False})
    with pytest.raises(StoreUnavailableError, match="127.0.0.1:9"):
        store.open(SPECS, {"dense": {"model": "demo"}})
