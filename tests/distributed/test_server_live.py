"""The contract against a live Qdrant server or cluster (``RAGNEST_QDRANT_URL``, e.g.
``http://localhost:6333`` from configs/ray/qdrant-cluster.compose.yaml): collection
settings are applied, tenants are kept apart, a Ray ingest into the server equals a
local one. Skipped, with the reason shown, where no server runs (as in CI)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from ragnest import Pipeline
from ragnest.config import load_config
from ragnest.stores import QdrantStore

from ._store import comparable

URL = os.environ.get("RAGNEST_QDRANT_URL")
pytestmark = pytest.mark.skipif(not URL, reason="set RAGNEST_QDRANT_URL to run the live "
                                                "server contract (no Qdrant server here)")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "docs"


def _server(collection: str, **server: object) -> dict:
    return {"components": {"store": {"params": {"path": None, "url": URL,
                                                "collection": collection, "server": server}}}}


def _drop(collection: str) -> None:
    QdrantStore(url=URL, collection=collection).drop()


def test_settings_and_tenants_on_a_live_server() -> None:
    name = f"ragnest-live-{uuid.uuid4().hex[:8]}"
    settings = {"shard_number": 2, "on_disk_payload": True, "on_disk_vectors": ["dense-fine"],
                "tenant": "acme", "write_ordering": "strong"}
    try:
        with Pipeline.from_yaml("lite", overrides=_server(name, **settings)) as rag:
            report = rag.ingest([str(EXAMPLES)], progress=False)
            assert report.ok and report.chunks_added > 0
            info = rag.store._require().inner.client.get_collection(name)  # type: ignore[attr-defined]
            assert info.config.params.shard_number == 2
            assert info.config.params.on_disk_payload is True
            stats = rag.store.stats()
            assert stats["documents"] == 3
            assert rag.retrieve("descale the espresso machine", k=3).hits
        other = {**settings, "tenant": "globex"}
        with Pipeline.from_yaml("lite", overrides=_server(name, **other)) as rag:
            rag.open()
            assert rag.store.stats()["documents"] == 0  # another tenant sees nothing
    finally:
        _drop(name)


def test_ray_ingest_into_the_server_equals_a_local_one(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the Ray engine needs the ray extra")
    from ragnest.distributed import RayConfig, ray_ingest

    name = f"ragnest-live-{uuid.uuid4().hex[:8]}"
    try:
        with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(tmp_path / "l")}) as rag:
            local = rag.ingest([str(EXAMPLES)], progress=False).to_dict()
        cfg = load_config("lite", profile="ray", overrides=_server(name))
        report = ray_ingest([EXAMPLES], cfg, ray_config=RayConfig(num_cpus=2, progress=False))
        assert comparable(report.to_dict()) == comparable(local)
    finally:
        _drop(name)
