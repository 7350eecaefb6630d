"""End to end on a local Ray cluster (2 CPUs, one logical GPU): the lite pipeline's YAML
ingests examples/docs through Ray Data into the embedded store and gives exactly the
chunk ids, payloads and vectors of a local ingest; a second run ships nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragnest.config import load_config
from ragnest.distributed import RayConfig, ray_ingest

from ._store import comparable, local_ingest, snapshot

ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra: "
                                        "pip install 'ragnest[ray]'")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "docs"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_ingest_equals_local_ingest(tmp_path: Path, local_ray: None) -> None:
    local = local_ingest([EXAMPLES], tmp_path / "local")
    cfg = load_config("lite", profile="ray", env={"RAGNEST_STORE": str(tmp_path / "ray")})
    settings = RayConfig.from_mapping({**cfg.ingest.ray, "gpus_per_actor": 1,
                                       "embed_batch_size": 2, "progress": False})
    start = time.perf_counter()
    report = ray_ingest([EXAMPLES], cfg, ray_config=settings)
    print(f"ray ingest of examples/docs: {time.perf_counter() - start:.1f} s")
    assert report.ok and not report.skipped and report.error is None
    assert comparable(report.to_dict()) == comparable(local)
    assert snapshot(tmp_path / "ray") == snapshot(tmp_path / "local")
    again = ray_ingest([EXAMPLES], cfg, ray_config=settings)
    assert {d.status for d in again.documents} == {"unchanged"}
    assert again.chunks_added == 0 and again.files == 3
