"""Backend failures: classified at the front door, retried when transient, never masked.

No Qdrant server exists here: a dead server is a port where nothing listens, a hung one a
socket that accepts and never answers; failures of a running engine are injected under
the front door (the real Edge engine and qdrant-client local mode run underneath).
"""

from __future__ import annotations

import dataclasses
import errno
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from _storedata import IDENTITY, SPECS, FailOn, dense_route, make_doc, snapshot
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from ragnest.errors import ConfigError, StoreError, StoreUnavailableError
from ragnest.stores import QdrantStore
from ragnest.types import Route, SearchRequest, Stage

# qdrant-client checks the server version in a background thread and warns when it
# cannot: expected here. The fixture below waits for those threads, so the warning
# never lands in another test.
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning")


@pytest.fixture(autouse=True)
def _version_checks_done() -> Iterator[None]:
    yield
    for thread in threading.enumerate():
        if "_check_compatibility" in thread.name:
            thread.join(timeout=15)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A URL whose socket accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def refused() -> ResponseHandlingException:
    return ResponseHandlingException(httpx.ConnectError("[Errno 111] Connection refused"))


def http_error(status: int, message: str = "boom") -> UnexpectedResponse:
    body = b'{"status": {"error": "%s"}}' % message.encode()
    return UnexpectedResponse(status, "", body, httpx.Headers())


class Recorder:
    """Stands in for ``time.sleep`` in the guard: records the backoff delays."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def opened(store: QdrantStore) -> tuple[QdrantStore, Recorder, tuple[str, list, dict]]:
    """``store`` opened with ``a.pdf`` written; its guard sleeps into a recorder."""
    store.open(SPECS, IDENTITY)
    doc = make_doc("a.pdf", 5, seed=1)
    store.write_document(doc[0], doc[1], doc[2], fingerprint="v1")
    sleep = Recorder()
    store._backend._sleep = sleep
    return store, sleep, doc


def inject(store: QdrantStore, **kwargs: Any) -> FailOn:
    """Make the raw backend (under the guard) fail as ``FailOn(**kwargs)`` says."""
    failing = FailOn(store._backend.inner, **kwargs)
    store._backend.inner = failing
    return failing


class TestConfig:
    def test_timeout_and_retries_are_validated(self) -> None:
        for bad in (0, -1.0, float("inf"), float("nan"), "10", True, None):
            with pytest.raises(ConfigError, match="timeout"):
                QdrantStore(url="http://localhost:6333", timeout=bad)
        for bad in (-1, 1.5, "3", True, None):
            with pytest.raises(ConfigError, match="retries"):
                QdrantStore(url="http://localhost:6333", retries=bad)
        store = QdrantStore(url="http://localhost:6333", timeout=2.5, retries=0)
        assert QdrantStore(**dataclasses.asdict(store)) == store
        assert (QdrantStore(location=":memory:").timeout, QdrantStore(path="x").retries) == (10, 3)


class TestServerDown:
    def test_open_on_a_dead_port_fails_fast_and_names_the_url(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        store = QdrantStore(url=url, collection="manuals")
        start = time.monotonic()
        with pytest.raises(StoreUnavailableError) as err:
            store.open(SPECS, IDENTITY)
        elapsed = time.monotonic() - start
        # 3 retries: backoff at most 0.5 + 1 + 2 s; connections are refused at once
        assert elapsed < 10, elapsed
        msg = str(err.value)
        assert f"collection 'manuals' at {url}" in msg
        assert "after 4 attempts" in msg and "Connection refused" in msg
        assert isinstance(err.value.__cause__, ResponseHandlingException)
        assert not store.is_open
        with pytest.raises(StoreUnavailableError, match="open failed: cannot reach the server"):
            QdrantStore(url=url, retries=0).open(SPECS, IDENTITY)

    def test_a_server_that_never_answers_times_out(self, silent_server: str) -> None:
        store = QdrantStore(url=silent_server, timeout=1, retries=1)
        start = time.monotonic()
        with pytest.raises(StoreUnavailableError) as err:
            store.open(SPECS, IDENTITY)
        elapsed = time.monotonic() - start
        assert 2 <= elapsed < 8, elapsed  # two attempts of one second, a backoff <= 0.5 s
        msg = str(err.value)
        assert silent_server in msg and "no answer within 1 s" in msg
        assert "after 2 attempts" in msg


class TestTransientFailures:
    """qdrant-client errors injected under the guard of a local-mode store."""

    def test_a_transient_failure_is_retried_with_backoff(self) -> None:
        store, sleep, (doc_id, chunks, vectors) = opened(QdrantStore(location=":memory:"))
        failing = inject(store, upsert=1, once=True, error=refused)
        _, extra, extra_vectors = make_doc("a.pdf", 2, seed=1, start=10)
        store.write_document(doc_id, chunks + extra, extra_vectors, fingerprint="v2")
        assert failing.calls["upsert"] == 2
        assert len(sleep.delays) == 1 and 0.25 <= sleep.delays[0] <= 0.5
        assert store.document_fingerprint(doc_id) == "v2"

    def test_a_dead_server_mid_write_stops_it_and_keeps_the_previous_version(self) -> None:
        store, sleep, (doc_id, chunks, _) = opened(QdrantStore(location=":memory:", retries=3))
        original = snapshot(store)
        failing = inject(store, upsert=3, once=False, error=refused)
        _, extra, extra_vectors = make_doc("a.pdf", 8, seed=1, start=10)
        with pytest.raises(StoreUnavailableError) as err:
            store.write_document(doc_id, chunks + extra, extra_vectors, fingerprint="v2",
                                 batch_size=2)
        msg = str(err.value)
        assert "collection 'ragnest' at :memory: is unavailable" in msg
        assert "upsert of 2 points failed after 4 attempts" in msg
        assert "cannot reach the server (ConnectError" in msg
        assert failing.calls["upsert"] == 6  # 2 batches, then the 3rd tried 4 times
        # exponential backoff with jitter: each wait within [50 %, 100 %] of 0.5 * 2^n
        assert [0.25 * 2**n <= d <= 0.5 * 2**n for n, d in enumerate(sleep.delays)] == [True] * 3
        store._backend.inner = failing.inner
        assert snapshot(store) == original  # the abort removed the first two batches
        assert store.document_fingerprint(doc_id) == "v1"

    @pytest.mark.parametrize(
        ("error", "kind", "text"),
        [
            (lambda: http_error(503, "overloaded"), StoreUnavailableError, "HTTP 503: overloaded"),
            (lambda: http_error(500), StoreUnavailableError, "after 3 attempts: HTTP 500"),
            (lambda: ResponseHandlingException(httpx.ReadTimeout("timed out")),
             StoreUnavailableError, "no answer within 10 s .ReadTimeout"),
            (lambda: http_error(401, "bad key"), StoreUnavailableError,
             r"count failed: HTTP 401: the server refused the credentials .API key from "
             r"\$QDRANT_API_KEY.: bad key"),
            (lambda: http_error(404, "Collection `x` doesn't exist!"), StoreUnavailableError,
             "collection deleted"),
            (lambda: http_error(400, "Wrong input: Vector dimension error"), ValueError,
             "count: the server refused the request: HTTP 400: Wrong input"),
        ],
    )
    def test_http_failures_are_classified(self, error: Any, kind: type, text: str) -> None:
        store, sleep, (doc_id, _, _) = opened(QdrantStore(location=":memory:", retries=2))
        failing = inject(store, count=1, error=error)
        with pytest.raises(kind, match=text) as err:
            store.document_fingerprint(doc_id)
        if kind is ValueError:  # bad data, not a broken store
            assert not isinstance(err.value, StoreError)
        retried = "HTTP 5" in text or "no answer" in text
        assert failing.calls["count"] == (3 if retried else 1)
        assert len(sleep.delays) == (2 if retried else 0)
        assert isinstance(err.value.__cause__, (UnexpectedResponse, ResponseHandlingException))

    def test_rate_limiting_waits_as_the_server_asks(self) -> None:
        store, sleep, (doc_id, _, _) = opened(QdrantStore(location=":memory:"))
        inject(store, count=1, once=True, error=lambda: ResourceExhaustedResponse("slow", "2"))
        assert store.document_fingerprint(doc_id) == "v1"
        assert sleep.delays == [2.0]

    def test_search_failures_are_classified_too(self) -> None:
        store, _, (_, chunks, vectors) = opened(QdrantStore(location=":memory:", retries=0))
        inject(store, query=1, error=refused)
        request = SearchRequest(routes=(dense_route(vectors[chunks[0].id]),), limit=3)
        with pytest.raises(StoreUnavailableError, match="query failed: cannot reach the server"):
            store.search(request)


class TestEdgeFailures:
    """The real Edge engine: its own data errors, and engine / OS errors injected."""

    def test_engine_data_errors_are_value_errors(self, tmp_path: Path) -> None:
        store, _, _ = opened(QdrantStore(path=str(tmp_path / "db")))
        bad = Route(name="r", stages=(Stage(vector="coarse", query=np.ones(3, np.float32),
                                            limit=3),))
        with pytest.raises(ValueError, match="Vector dimension error: expected dim: 16, got 3"
                           ) as err:
            store.search(SearchRequest(routes=(bad,)))
        assert str(tmp_path / "db") in str(err.value)
        assert not isinstance(err.value, StoreError)
        store.close()

    @pytest.mark.parametrize(
        ("error", "text"),
        [
            (lambda: Exception("Service runtime error: IO Error: No space left on device"),
             "Qdrant Edge engine error: Service runtime error: IO Error: No space left"),
            (lambda: OSError(errno.ENOSPC, "No space left on device"),
             r"OSError: \[Errno 28\] No space left on device"),
        ],
    )
    def test_engine_and_os_errors_stop_the_write(
        self, tmp_path: Path, error: Any, text: str
    ) -> None:
        store, sleep, (doc_id, chunks, _) = opened(QdrantStore(path=str(tmp_path / "db")))
        original = snapshot(store)
        failing = inject(store, upsert=3, error=error)
        _, extra, extra_vectors = make_doc("a.pdf", 8, seed=1, start=10)
        with pytest.raises(StoreUnavailableError, match=text) as err:
            store.write_document(doc_id, chunks + extra, extra_vectors, fingerprint="v2",
                                 batch_size=2)
        assert f"collection 'ragnest' at {tmp_path / 'db'} is unavailable" in str(err.value)
        assert failing.calls["upsert"] == 3 and sleep.delays == []  # never retried
        store._backend.inner = failing.inner
        assert snapshot(store) == original
        assert store.document_fingerprint(doc_id) == "v1"
        store.close()

    def test_other_errors_pass_unchanged(self, tmp_path: Path) -> None:
        store, _, (doc_id, _, _) = opened(QdrantStore(path=str(tmp_path / "db")))
        inject(store, count=1, once=True, error=lambda: RuntimeError("a bug"))
        with pytest.raises(RuntimeError, match="^a bug$"):
            store.document_fingerprint(doc_id)
        store.close()
