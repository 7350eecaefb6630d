"""RagnestDatasink on hand-built Ray Data blocks (pyarrow tables), no Ray cluster: every
named vector of the ladder, the sparse vectors and the payload are written per document,
skipped documents come back with their reason, a broken store stops the write."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from ragnest import Pipeline
from ragnest.collection import collection_identity, collection_specs
from ragnest.config import ComponentConfig
from ragnest.distributed.stages import embed_task, parse_task, plan_tasks
from ragnest.errors import StoreError
from ragnest.ingest.report import IngestReport

from ._store import PENDING, snapshot

pytest.importorskip("ray", reason="the Ray engine needs the ray extra: pip install 'ragnest[ray]'")
from ragnest.distributed._ray import RagnestDatasink, _rows  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "docs"


def _blocks(store_dir: Path, broken: Path) -> tuple[list[pa.Table], dict]:
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store_dir)}) as rag:
        rag.warm_up()
        report = IngestReport()
        tasks = plan_tasks([str(EXAMPLES), str(broken)], rag.parsers, rag.store, report)
        tasks = [embed_task(parse_task(t, rag.parsers), rag.embedders) for t in tasks]
        job = {"specs": collection_specs(rag.embedders),
               "identity": collection_identity(rag.embedders)}
    # two blocks, as two upstream batches would hand them over
    return [pa.table(_rows(tasks[:2])), pa.table(_rows(tasks[2:]))], job


def test_sink_writes_every_vector_and_reports(tmp_path: Path) -> None:
    broken = tmp_path / "docs" / "broken.pdf"
    broken.parent.mkdir()
    broken.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 50)
    store_dir = tmp_path / "store"
    blocks, job = _blocks(store_dir, broken)
    store = ComponentConfig(type="store/qdrant",
                            params={"path": str(store_dir), "collection": "lite"})
    sink = RagnestDatasink(store, job["specs"], job["identity"], max_points=4)
    assert not sink.supports_distributed_writes  # an Edge directory: the driver's node
    rows = sink.write(blocks, None)
    done = [r["document"] for r in rows if "document" in r]
    skipped = [r["skipped"] for r in rows if "skipped" in r]
    assert sorted(d.status for d in done) == ["added"] * 3
    assert [p for p, _ in skipped] == [str(broken)] and skipped[0][1]
    points = snapshot(store_dir)
    assert len(points) == sum(d.added for d in done) == 22
    names = {s.name for s in job["specs"]}
    for payload, vectors in points.values():
        assert PENDING not in payload and payload["doc_fingerprint"]
        # every dense level and the sparse BM25 vector (thumbnails only on image chunks)
        assert {"dense-coarse", "dense-mid", "dense-fine", "bm25-sparse"} <= set(vectors)
        assert set(vectors) <= names
    # the same blocks again: every document is unchanged, nothing is written twice
    again = sink.write(blocks, None)
    assert sorted(r["document"].status for r in again if "document" in r) == ["unchanged"] * 3
    assert snapshot(store_dir) == points


def test_a_dead_server_stops_the_write(tmp_path: Path) -> None:
    broken = tmp_path / "docs" / "broken.pdf"
    broken.parent.mkdir()
    broken.write_bytes(b"%PDF-1.7\n")
    blocks, job = _blocks(tmp_path / "store", broken)
    dead = ComponentConfig(type="store/qdrant", params={
        "url": "http://127.0.0.1:9", "collection": "lite", "timeout": 1, "retries": 0})
    sink = RagnestDatasink(dead, job["specs"], job["identity"])
    assert sink.supports_distributed_writes
    with pytest.raises(StoreError, match="127.0.0.1:9"):
        sink.write(blocks, None)
