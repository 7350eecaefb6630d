"""Small deterministic data for the store tests (also imported by their subprocesses)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ragnest.types import Chunk, Route, Source, SparseVector, Stage, VectorSpec, make_chunk_id

__all__ = ["IDENTITY", "SPECS", "dense_route", "make_doc", "sparse_route", "unit"]

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
