"""Fixtures for the store contract suite: one store per backend."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ragnest.stores import QdrantStore

BACKENDS = ["edge", "memory", "server"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "server" and not os.environ.get("RAGNEST_QDRANT_URL"):
        pytest.skip("set RAGNEST_QDRANT_URL to run the store suite against a Qdrant server")
    return request.param


@pytest.fixture
def make_store(backend: str, tmp_path: Path) -> Iterator[Callable[..., QdrantStore]]:
    """Factory of unopened stores; every store made is closed (server collections dropped).

    ``make_store()`` twice gives two handles on the same collection; ``make_store(name)``
    gives another collection (another directory for Edge, whose lock is per directory).
    """
    made: list[QdrantStore] = []
    prefix = f"ragnest-test-{uuid.uuid4().hex[:12]}"
    collections: set[str] = set()

    def factory(name: str | None = None, **kwargs: object) -> QdrantStore:
        if backend == "edge":
            path = tmp_path / ("db" if name is None else f"db-{name}")
            store = QdrantStore(path=str(path), collection=name or "ragnest", **kwargs)
        elif backend == "memory":
            store = QdrantStore(location=":memory:", collection=name or "ragnest", **kwargs)
        else:
            collection = prefix if name is None else f"{prefix}-{name}"
            collections.add(collection)
            store = QdrantStore(
                url=os.environ["RAGNEST_QDRANT_URL"], collection=collection, **kwargs
            )
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()
    for collection in sorted(collections):
        QdrantStore(url=os.environ["RAGNEST_QDRANT_URL"], collection=collection).drop()
