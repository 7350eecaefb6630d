"""The ray settings: validation, the shipped profile, the engine switch (no Ray needed)."""

from __future__ import annotations

import pytest

import ragnest.distributed as distributed
from ragnest.config import IngestConfig, load_config, parse_config
from ragnest.distributed import RayConfig
from ragnest.errors import ConfigError


def test_public_api() -> None:
    assert sorted(distributed.__all__) == ["DocTask", "RayConfig", "ray_ingest"]
    for name in distributed.__all__:
        assert getattr(distributed, name) is not None


def test_import_does_not_import_ray() -> None:
    import subprocess
    import sys

    code = "import sys, ragnest.distributed, ragnest.cli; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_profile_sets_engine_and_settings() -> None:
    cfg = load_config("lite", profile="ray", env={"RAGNEST_STORE": "/tmp/x",
                                                  "RAGNEST_RAY_ACTORS": "3",
                                                  "RAGNEST_RAY_GPUS_PER_ACTOR": "0.5"})
    assert cfg.ingest.engine == "ray"
    ray = RayConfig.from_mapping(cfg.ingest.ray)
    assert (ray.address, ray.actors, ray.gpus_per_actor) == (None, 3, 0.5)
    assert isinstance(ray.embed_batch_size, int)
    # round trip: the config's dict parses back to the same settings
    again = parse_config(cfg.to_dict(), env={})
    assert again.ingest == cfg.ingest


def test_profile_reads_the_cluster_address() -> None:
    cfg = load_config("lite", profile="ray", env={"RAY_ADDRESS": "ray://head:10001"})
    assert RayConfig.from_mapping(cfg.ingest.ray).address == "ray://head:10001"


@pytest.mark.parametrize("bad, message", [
    ({"actors": 0}, "actors"),
    ({"embed_batch_size": 2.5}, "embed_batch_size: expects an integer"),
    ({"gpu_per_actor": 1}, "did you mean 'gpus_per_actor'"),
])
def test_bad_settings_are_named(bad: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RayConfig.from_mapping(bad)


def test_unknown_engine_is_refused() -> None:
    with pytest.raises(ConfigError, match="engine"):
        IngestConfig(engine="spark")  # type: ignore[arg-type]


def test_cluster_files_are_well_formed() -> None:
    """The cluster examples are not run here; their shape is checked."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2] / "configs" / "ray"
    compose = yaml.safe_load((root / "qdrant-cluster.compose.yaml").read_text())
    nodes = compose["services"]
    assert len(nodes) == 3
    assert all("--uri" in n["command"] for n in nodes.values())
    assert sum("--bootstrap" in n["command"] for n in nodes.values()) == 2
    assert "NOT RUN IN CI" in (root / "qdrant-cluster.compose.yaml").read_text()
    cluster = yaml.safe_load((root / "cluster.yaml").read_text())
    gpu = cluster["available_node_types"]["gpu_embed"]["resources"]
    assert gpu["GPU"] >= 1 and cluster["head_node_type"] in cluster["available_node_types"]


def test_ray_server_profile_reads_the_url_from_the_environment() -> None:
    from ragnest.stores import QdrantStore

    cfg = load_config("lite", profile="ray-server",
                      env={"QDRANT_URL": "http://qdrant:6333", "RAGNEST_QDRANT_SHARDS": "6"})
    params = cfg.components[cfg.store].params
    store = QdrantStore(**params)  # valid arguments (nothing is contacted)
    assert store.url == "http://qdrant:6333" and store.path is None
    assert store.server["shard_number"] == 6 and cfg.ingest.engine == "ray"
    assert RayConfig.from_mapping(cfg.ingest.ray).write_concurrency == 4


def test_an_in_memory_store_is_refused_by_the_ray_engine() -> None:
    from ragnest.distributed import ray_ingest

    cfg = load_config("lite", profile="memory")
    with pytest.raises(ConfigError, match="location=':memory:'"):
        ray_ingest(["examples/docs"], cfg)
