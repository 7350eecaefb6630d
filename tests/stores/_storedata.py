"""Small deterministic data for the store tests (also imported by their subprocesses)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ragnest.types import (
    Chunk,
    EmbeddedChunk,
    Route,
    Source,
    SparseVector,
    Stage,
    VectorSpec,
    make_chunk_id,
)

__all__ = [
    "IDENTITY",
    "SPECS",
    "FailOn",
    "dense_route",
    "embed_elsewhere",
    "make_doc",
    "snapshot",
    "sparse_route",
    "unit",
]

SPECS = (
    VectorSpec(name="coarse", kind="dense", dim=16, index="hnsw", quantization="binary"),
    VectorSpec(name="mid", kind="dense", dim=32, datatype="float16"),
    VectorSpec(name="fine", kind="multi", dim=16, quantization="scalar"),
    VectorSpec(name="bm25", kind="sparse", modifier="idf"),
)
IDENTITY: dict[str, Any] = {"model": "test-embedder", "revision": "r1", "ladder": [16, 32, "4x16"]}


def unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.normal(size=shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def make_doc(
    name: str, n: int, seed: int, *, lang: str = "en", start: int = 0
) -> tuple[str, list[Chunk], dict[str, dict[str, Any]]]:
    """A document of ``n`` page chunks (positions ``start..``) with random unit vectors.

    Each chunk's sparse vector holds two terms unique to it plus a term shared by all.
    """
    doc_id = Source.from_bytes(b"", name=name).document_id
    chunks: list[Chunk] = []
    vectors: dict[str, dict[str, Any]] = {}
    for i in range(start, start + n):
        rng = np.random.default_rng([seed, i])
        text = f"{name} page {i}"
        cid = make_chunk_id(doc_id, i, text)
        chunks.append(
            Chunk(
                id=cid,
                document_id=doc_id,
                kind="page",
                text=text,
                source=name,
                page=i + 1,
                metadata={"lang": lang},
            )
        )
        term = 1000 * seed + 2 * i
        vectors[cid] = {
            "coarse": unit(rng, 16),
            "mid": unit(rng, 32),
            "fine": unit(rng, 4, 16),
            "bm25": SparseVector(indices=(1, term, term + 1), values=(1.0, 2.0, 1.0)),
        }
    return doc_id, chunks, vectors


def dense_route(
    v: dict[str, Any],
    limits: tuple[int, int, int] = (8, 5, 3),
    *,
    name: str = "dense",
    weight: float = 1.0,
) -> Route:
    return Route(
        name=name,
        weight=weight,
        stages=(
            Stage(vector="coarse", query=v["coarse"], limit=limits[0]),
            Stage(vector="mid", query=v["mid"], limit=limits[1]),
            Stage(vector="fine", query=v["fine"], limit=limits[2]),
        ),
    )


def sparse_route(v: dict[str, Any], *, limit: int = 5, weight: float = 1.0) -> Route:
    q = v["bm25"]
    query = SparseVector(indices=q.indices[1:], values=(1.0,) * (len(q.indices) - 1))
    return Route(
        name="bm25", weight=weight, stages=(Stage(vector="bm25", query=query, limit=limit),)
    )


def embed_elsewhere(name: str, n: int, seed: int) -> list[EmbeddedChunk]:
    """What an embedding worker (another process, a Ray task) hands back: data only."""
    _, chunks, vectors = make_doc(name, n, seed)
    return [EmbeddedChunk(chunk=c, vectors=vectors[c.id]) for c in chunks]


def _canonical(value: Any) -> Any:
    if hasattr(value, "indices") and hasattr(value, "values"):
        return ("sparse", [int(i) for i in value.indices], [float(v) for v in value.values])
    return np.asarray(value, dtype=np.float32).tolist()


def snapshot(store: Any) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Every stored point: id -> (whole payload, {vector name: stored vector})."""
    backend = store._require()
    rows = dict(backend.payloads_where([], None))
    names = [s.name for s in store._specs]
    vectors = backend.vectors(sorted(rows), names) if rows else {}
    return {
        pid: (payload, {k: _canonical(v) for k, v in vectors.get(pid, {}).items()})
        for pid, payload in rows.items()
    }


class FailOn:
    """A backend wrapper that makes chosen calls fail, passing everything else through.

    ``FailOn(backend, upsert=3, error=lambda: StoreUnavailableError("down"))`` fails the
    3rd upsert and every one after it (``once=True``: only the 3rd; ``applied=True``: the
    call is made, then fails, like a request whose answer was lost).
    """

    def __init__(
        self,
        inner: Any,
        *,
        error: Callable[[], BaseException],
        once: bool = False,
        applied: bool = False,
        **nth: int,
    ) -> None:
        self.inner = inner
        self.error = error
        self.once = once
        self.applied = applied
        self.nth = nth
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name not in self.nth:
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            n = self.calls[name] = self.calls.get(name, 0) + 1
            if n == self.nth[name] or (n > self.nth[name] and not self.once):
                if self.applied:
                    target(*args, **kwargs)
                raise self.error()
            return target(*args, **kwargs)

        return call
