"""The stages and the write step without Ray: real lite components, a real Edge store."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ragnest import Pipeline
from ragnest.distributed.stages import DocTask, embed_task, pack, parse_task, plan_tasks, unpack
from ragnest.distributed.write import request_batches, write_task
from ragnest.ingest.report import IngestReport

from ._store import PENDING, comparable, local_ingest, snapshot

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "docs"


def _tasks(rag: Pipeline, paths: list[Path]) -> tuple[list[DocTask], IngestReport]:
    report = IngestReport()
    tasks = plan_tasks([str(p) for p in paths], rag.parsers, rag.store, report)
    tasks = [parse_task(t, rag.parsers) for t in tasks]
    return [unpack(pack(embed_task(t, rag.embedders))) for t in tasks], report


def test_stages_write_what_the_local_path_writes(tmp_path: Path) -> None:
    local = local_ingest([EXAMPLES], tmp_path / "local")
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(tmp_path / "staged")}) as rag:
        rag.warm_up()
        tasks, report = _tasks(rag, [EXAMPLES])
        assert len(tasks) == 3 and not report.skipped
        report.documents += [write_task(rag.store, t, max_points=3, max_bytes=1 << 20)
                             for t in tasks]
        # planned again: everything is committed and unchanged, nothing is shipped
        again = IngestReport()
        assert plan_tasks([str(EXAMPLES)], rag.parsers, rag.store, again) == []
        assert {d.status for d in again.documents} == {"unchanged"}
    assert comparable(report.to_dict()) == comparable(local)
    assert snapshot(tmp_path / "staged") == snapshot(tmp_path / "local")


def test_a_killed_write_is_finished_by_the_next_run(tmp_path: Path) -> None:
    """Points of a document whose write never committed are taken over, not duplicated."""
    store_dir = tmp_path / "store"
    doc = EXAMPLES / "nimbus3_handbook.pdf"
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store_dir)}) as rag:
        rag.warm_up()
        (task,), _ = _tasks(rag, [doc])
        tx = rag.store.begin(task.document_id, [c.id for c in task.chunks],
                             fingerprint=task.fingerprint)
        tx.add(list(task.points[:3]))  # then the process "dies": no commit, no abort
        assert rag.store.document_fingerprint(task.document_id) is None
        (again,), _ = _tasks(rag, [doc])
        # the 3 uncommitted points are kept (ids are deterministic), the rest embedded
        assert len(again.points) == len(task.points) - 3
        result = write_task(rag.store, again)
        assert (result.added, result.unchanged) == (len(task.points) - 3, 3)
        assert rag.store.document_fingerprint(task.document_id) == task.fingerprint
    points = snapshot(store_dir)
    assert len(points) == len(task.chunks)
    assert not any(PENDING in payload for payload, _ in points.values())


def test_requests_are_split_when_the_server_refuses_them(tmp_path: Path) -> None:
    """A server refusing a request as too large gets it again in halves (the refusal is
    the error text a Qdrant server sends past its 32 MB request limit)."""
    sent: list[int] = []

    class Limited:
        def __init__(self, tx: object, limit: int) -> None:
            self.tx, self.limit = tx, limit

        def __getattr__(self, name: str) -> object:
            return getattr(self.tx, name)

        def add(self, points: list) -> None:
            if len(points) > self.limit:
                raise ValueError("the server refused the request: HTTP 400: Payload error: "
                                 "JSON payload (40000000 bytes) is larger than allowed")
            sent.append(len(points))
            self.tx.add(points)

        def __enter__(self) -> Limited:
            return self

        def __exit__(self, *exc: object) -> None:
            self.tx.__exit__(*exc)

    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(tmp_path / "s")}) as rag:
        rag.warm_up()
        (task,), _ = _tasks(rag, [EXAMPLES / "travel_faq.md"])
        real_begin = rag.store.begin
        rag.store.begin = lambda *a, **k: Limited(real_begin(*a, **k), 3)  # type: ignore[method-assign]
        doc = write_task(rag.store, task, max_points=100)
        assert doc.added == len(task.points) == 10
        assert sent and max(sent) <= 3 and sum(sent) == 10


def test_request_batches_respect_bytes_and_points(tmp_path: Path) -> None:
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(tmp_path / "s")}) as rag:
        for component in (*rag.parsers, *rag.embedders.values()):
            component.warm_up()  # no store is opened: planning uses an empty one
        report = IngestReport()
        tasks = plan_tasks([str(EXAMPLES / "nimbus3_handbook.pdf")], rag.parsers,
                           _EmptyStore(), report)
        task = embed_task(parse_task(tasks[0], rag.parsers), rag.embedders)
    batches = list(request_batches(task.points, max_points=3, max_bytes=1 << 30))
    assert [len(b) for b in batches] == [3, 3, 2]
    one = list(request_batches(task.points, max_points=100, max_bytes=1))
    assert [len(b) for b in one] == [1] * 8  # a point bigger than the limit goes alone


def test_a_parse_failure_becomes_a_skipped_document(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 50)
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(tmp_path / "s")}) as rag:
        rag.open(write=True)
        report = IngestReport()
        (task,) = plan_tasks([str(bad)], rag.parsers, rag.store, report)
        parsed = parse_task(task, rag.parsers)
        assert parsed.error and parsed.chunks is None
        assert embed_task(parsed, rag.embedders) is parsed  # an error is passed along
        with pytest.raises(ValueError, match="not parsed"):
            write_task(rag.store, replace(parsed))


class _EmptyStore:
    """Planning against a store that holds nothing (no store opened for a pure test)."""

    def document_fingerprint(self, document_id: str) -> None:
        return None

    def chunk_ids(self, document_id: str) -> set[str]:
        return set()
