"""The small interface both store backends implement, and the data they exchange.

``QdrantStore`` (the front door) speaks only this interface; ``_edge`` (Qdrant Edge,
in-process) and ``_client`` (qdrant-client: server or local ``:memory:``) implement it.
Vectors cross it as ragnest values (numpy arrays or :class:`ragnest.types.SparseVector`);
each backend converts them for its engine with :func:`as_list`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from ragnest.stores._filters import Condition
from ragnest.stores._plan import PlanNode
from ragnest.types import Chunk, SparseVector, Vector, VectorSpec

__all__ = [
    "INDEXED_FIELDS",
    "PENDING_KEY",
    "RESERVED_KEYS",
    "Backend",
    "Failure",
    "PointData",
    "Row",
    "as_list",
    "scroll_payloads",
    "sparse_parts",
    "to_chunk",
]

#: Payload fields that get an index: name -> "keyword" | "integer".
INDEXED_FIELDS: dict[str, str] = {
    "document_id": "keyword",
    "source": "keyword",
    "kind": "keyword",
    "page": "integer",
    "doc_fingerprint": "keyword",
    "doc_pending": "integer",
}

#: Marks a point written by a document write that is not committed yet (value 1); the
#: commit removes it, and a reader's copy of the store drops the points that carry it.
PENDING_KEY = "doc_pending"

#: Top-level payload keys the store adds to each chunk's payload.
RESERVED_KEYS = ("doc_fingerprint", "doc_chunks", PENDING_KEY)

#: A search result as backends return it: (point id, score, payload).
Row = tuple[str, float, dict[str, Any]]


@dataclass(frozen=True)
class PointData:
    """One point to upsert: id (uuid string), named vectors, payload."""

    id: str
    vectors: Mapping[str, Vector]
    payload: dict[str, Any]


@dataclass(frozen=True)
class Failure:
    """What a backend says an exception of its library means (see ``Backend.classify``).

    ``kind``: ``"retry"`` (transient: a connection refused or reset, a timeout, HTTP 5xx,
    rate limiting: an idempotent call may be retried after a backoff), ``"unavailable"``
    (the store cannot work: an engine I/O error, a full disk, refused credentials),
    ``"data"`` (the engine refused what it was given: a bad vector, an unknown name).
    ``reason`` says it in words; ``retry_after`` is a wait the server asked for (s).
    """

    kind: Literal["retry", "unavailable", "data"]
    reason: str
    retry_after: float | None = None


def to_chunk(chunk_id: str, payload: Mapping[str, Any]) -> Chunk:
    """A stored point's payload back as the :class:`Chunk` (the store's own keys dropped)."""
    clean = {k: v for k, v in payload.items() if k not in RESERVED_KEYS}
    return Chunk.from_payload(chunk_id, clean)


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


class Backend(Protocol):
    """What a store backend offers (ids are uuid strings, payloads plain dicts).

    Every write is idempotent (upserts carry explicit ids; deletes and payload sets name
    their points or a filter), so a failed call may be repeated as it is.
    """

    kind: Literal["edge", "server", "memory"]

    def classify(self, error: BaseException) -> Failure | None:
        """What an exception of this backend's library means; ``None`` if not its own."""
        ...

    def open(self, specs: Sequence[VectorSpec], identity: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...

    def fitted(self, key: str) -> dict[str, Any] | None: ...

    def save_fitted(self, key: str, state: Mapping[str, Any]) -> None: ...

    def vector_config(self) -> dict[str, dict[str, Any]]: ...

    def upsert(self, points: Sequence[PointData]) -> None: ...

    def set_payload(self, ids: Sequence[str], payload: Mapping[str, Any]) -> None: ...

    def delete_ids(self, ids: Sequence[str]) -> None: ...

    def delete_payload(self, ids: Sequence[str], keys: Sequence[str]) -> None: ...

    def delete_where(self, conditions: Sequence[Condition]) -> None: ...

    def ids_where(self, conditions: Sequence[Condition]) -> list[str]: ...

    def payloads_where(
        self, conditions: Sequence[Condition], keys: Sequence[str] | None, limit: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]: ...

    def count(self, conditions: Sequence[Condition] = (), exact: bool = True) -> int:
        """Points matching ``conditions`` (``exact=False``: the engine's cheap estimate)."""
        ...

    def facet(self, key: str) -> dict[Any, int]: ...

    def retrieve(self, ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]: ...

    def vectors(self, ids: Sequence[str], names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """{point id: {vector name: stored value}} for ``names`` (missing ones left out)."""
        ...

    def query(self, requests: Sequence[PlanNode]) -> list[list[Row]]:
        """Run a plan's top-level requests (one batch); their rows, best first, in order."""
        ...

    def flush(self) -> None: ...

    def refresh(self) -> bool:
        """A reader of a copy moves to the data committed since (Edge; else a no-op);
        returns whether it moved."""
        ...

    def atomic(self) -> AbstractContextManager[None]:
        """A section whose changes readers of the store see all together or not at all
        (Edge: its exclusive commit lock; a server has no such section)."""
        ...

    def optimize(self) -> bool: ...

    def drop(self) -> None: ...


#: Points per page when scrolling.
SCROLL_PAGE = 1024


def scroll_payloads(
    fetch: Callable[[Any, int], tuple[Sequence[Any], Any]], limit: int | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """``(id, payload)`` of every point a scroll returns, page by page: ``fetch(offset,
    page size)`` gives one page of records and the next offset (``None`` at the end);
    ``limit`` stops after that many points.

    >>> from types import SimpleNamespace as R
    >>> pages = {None: ([R(id=1, payload={"a": 1})], 5), 5: ([R(id=2, payload=None)], None)}
    >>> scroll_payloads(lambda offset, size: pages[offset])
    [('1', {'a': 1}), ('2', {})]
    """
    out: list[tuple[str, dict[str, Any]]] = []
    offset: Any = None
    while True:
        size = SCROLL_PAGE if limit is None else min(SCROLL_PAGE, limit - len(out))
        records, offset = fetch(offset, size)
        out.extend((str(r.id), dict(r.payload or {})) for r in records)
        if offset is None or not records or (limit is not None and len(out) >= limit):
            return out
