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
    """Factory of unopened stores; every store made is closed (server collections dropped)."""
    made: list[QdrantStore] = []
    collection = f"ragnest-test-{uuid.uuid4().hex[:12]}" if backend == "server" else "ragnest"

    def factory(**kwargs: object) -> QdrantStore:
        if backend == "edge":
            store = QdrantStore(path=str(tmp_path / "db"), collection=collection, **kwargs)
        elif backend == "memory":
            store = QdrantStore(location=":memory:", collection=collection, **kwargs)
        else:
            store = QdrantStore(
                url=os.environ["RAGNEST_QDRANT_URL"], collection=collection, **kwargs
            )
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()
    if backend == "server":
        QdrantStore(url=os.environ["RAGNEST_QDRANT_URL"], collection=collection).drop()
