"""The small interface both store backends implement, and the data they exchange.

``QdrantStore`` (the front door) speaks only this interface; ``_edge`` (Qdrant Edge,
in-process) and ``_client`` (qdrant-client: server or local ``:memory:``) implement it.
Vectors cross it as ragnest values (numpy arrays or :class:`ragnest.types.SparseVector`);
each backend converts them for its engine with :func:`as_list`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from ragnest.stores._filters import Condition
from ragnest.types import Route, SparseVector, Vector, VectorSpec

__all__ = [
    "INDEXED_FIELDS",
    "RESERVED_KEYS",
    "Backend",
    "PointData",
    "Row",
    "as_list",
    "route_limit",
    "sparse_parts",
]

#: Payload fields that get an index: name -> "keyword" | "integer".
INDEXED_FIELDS: dict[str, str] = {
    "document_id": "keyword",
    "source": "keyword",
    "kind": "keyword",
    "page": "integer",
    "doc_fingerprint": "keyword",
}

#: Top-level payload keys the store adds to each chunk's payload.
RESERVED_KEYS = ("doc_fingerprint", "doc_chunks")

#: A search result as backends return it: (point id, score, payload).
Row = tuple[str, float, dict[str, Any]]


@dataclass(frozen=True)
class PointData:
    """One point to upsert: id (uuid string), named vectors, payload."""

    id: str
    vectors: Mapping[str, Vector]
    payload: dict[str, Any]


def as_list(vector: Any) -> list[Any]:
    """A dense (1-d) or multi (2-d) vector as nested float lists, fast."""
    if isinstance(vector, np.ndarray):
        return vector.astype(np.float32, copy=False).tolist()
    return np.asarray(vector, dtype=np.float32).tolist()


def sparse_parts(vector: Any) -> tuple[list[int], list[float]]:
    """Indices and values of a sparse vector as plain lists."""
    if isinstance(vector, SparseVector):
        return [int(i) for i in vector.indices], [float(v) for v in vector.values]
    if isinstance(vector, Mapping) and "indices" in vector:
        return [int(i) for i in vector["indices"]], [float(v) for v in vector["values"]]
    indices = getattr(vector, "indices", None)
    values = getattr(vector, "values", None)
    if indices is None or values is None:
        raise TypeError(f"not a sparse vector: {type(vector).__name__}")
    return [int(i) for i in indices], [float(v) for v in values]


def route_limit(route: Route, limit: int) -> int:
    """How many candidates a route hands to fusion: its last stage's limit, at least ``limit``."""
    return max(route.stages[-1].limit, limit)


class Backend(Protocol):
    """What a store backend offers (ids are uuid strings, payloads plain dicts)."""

    kind: Literal["edge", "server", "memory"]

    def open(self, specs: Sequence[VectorSpec], identity: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...

    def fitted(self, key: str) -> dict[str, Any] | None: ...

    def save_fitted(self, key: str, state: Mapping[str, Any]) -> None: ...

    def vector_config(self) -> dict[str, dict[str, Any]]: ...

    def upsert(self, points: Sequence[PointData]) -> None: ...

    def set_payload(self, ids: Sequence[str], payload: Mapping[str, Any]) -> None: ...

    def delete_ids(self, ids: Sequence[str]) -> None: ...

    def delete_where(self, conditions: Sequence[Condition]) -> None: ...

    def ids_where(self, conditions: Sequence[Condition]) -> list[str]: ...

    def payloads_where(
        self, conditions: Sequence[Condition], keys: Sequence[str] | None, limit: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]: ...

    def count(self, conditions: Sequence[Condition] = ()) -> int: ...

    def facet(self, key: str) -> dict[Any, int]: ...

    def retrieve(self, ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]: ...

    def vectors(self, ids: Sequence[str], names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """{point id: {vector name: stored value}} for ``names`` (missing ones left out)."""
        ...

    def query(
        self,
        routes: Sequence[Route],
        *,
        limit: int,
        conditions: Sequence[Condition],
        fusion: Literal["rrf", "dbsf"],
        fusion_k: int,
    ) -> list[Row]: ...

    def query_each(
        self, routes: Sequence[Route], *, limit: int, conditions: Sequence[Condition]
    ) -> list[list[Row]]: ...

    def flush(self) -> None: ...

    def optimize(self) -> bool: ...

    def drop(self) -> None: ...
