"""Backend failures classified in one place, and idempotent calls retried with backoff.

:class:`GuardedBackend` wraps a backend (``_edge`` or ``_client``) and is what the front
door and the write transaction talk to. Every call goes through :meth:`GuardedBackend.call`:

* ragnest's own errors pass unchanged (a locked directory, a mismatched collection, ...);
* the backend says what an exception of its library means (``Backend.classify``):
  ``retry`` (a refused or reset connection, a timeout, HTTP 5xx, rate limiting): the
  call is repeated up to ``retries`` times, after an exponential backoff with jitter
  (or the wait the server asked for); every backend call is idempotent (explicit point
  ids, deletes by id or filter), so a repeat never writes anything twice;
  ``unavailable`` (and ``retry`` once the retries are spent), and any ``OSError`` (a full
  disk, a permission): :class:`~ragnest.errors.StoreUnavailableError`, naming the store
  and the cause (chained); ``data``: ``ValueError`` naming the store;
* anything else (a bug, a ``ValueError`` about the data) passes unchanged.

    >>> policy = RetryPolicy(retries=3, backoff=0.5, backoff_max=8.0)
    >>> [round(policy.delay(n, None) / (0.5 * 2 ** (n - 1)), 1) >= 0.5 for n in (1, 2, 3)]
    [True, True, True]
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from ragnest.errors import RagnestError, StoreUnavailableError
from ragnest.stores._backend import Backend, Failure, PointData, Row
from ragnest.stores._filters import Condition
from ragnest.stores._plan import PlanNode
from ragnest.types import VectorSpec

__all__ = ["BACKOFF_MAX_S", "BACKOFF_S", "COUNT_TTL_S", "GuardedBackend", "RetryPolicy"]

log = logging.getLogger(__name__)

#: First backoff before a retry (seconds); it doubles with each retry, up to BACKOFF_MAX_S.
BACKOFF_S = 0.5
BACKOFF_MAX_S = 8.0
#: How long a server's point count is trusted for query planning (seconds).
COUNT_TTL_S = 1.0
#: The longest wait honoured when a rate-limited server asks for one (Retry-After).
RETRY_AFTER_MAX_S = 60.0

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried."""

    retries: int = 3
    backoff: float = BACKOFF_S
    backoff_max: float = BACKOFF_MAX_S

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based): the server's
        Retry-After if it sent one, else exponential backoff with jitter (50-100 %)."""
        if retry_after is not None:
            return min(max(0.0, retry_after), RETRY_AFTER_MAX_S)
        ceiling = min(self.backoff_max, self.backoff * 2 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)


class GuardedBackend:
    """A backend whose failures come out classified (see the module docs)."""

    def __init__(
        self,
        inner: Backend,
        *,
        where: str,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.where = where
        self.policy = policy
        self._sleep = sleep
        # points matching a filter (the engine's estimate), for query planning: forgotten
        # on every write through this object and when a reader moves to fresh data; a
        # server (other clients write too) keeps an estimate COUNT_TTL_S seconds at most
        self._counts: dict[str, tuple[float, int]] = {}

    def call(self, op: str, fn: Callable[..., T], *args: Any, retry: bool = True) -> T:
        """``fn(*args)``, retried on transient failures when ``retry``; failures classified."""
        attempt = 0
        while True:
            try:
                return fn(*args)
            except RagnestError:
                raise
            except Exception as err:
                failure = self.classify(err)
                if failure is None:
                    raise
                if failure.kind == "retry" and retry and attempt < self.policy.retries:
                    attempt += 1
                    delay = self.policy.delay(attempt, failure.retry_after)
                    log.warning("%s: %s failed (%s); retry %d of %d in %.1f s", self.where, op,
                                failure.reason, attempt, self.policy.retries, delay)
                    self._sleep(delay)
                    continue
                if failure.kind == "data":
                    raise ValueError(f"{self.where}: {op}: {failure.reason}") from err
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise StoreUnavailableError(
                    f"{self.where} is unavailable: {op} failed{tries}: {failure.reason}"
                ) from err

    def classify(self, error: BaseException) -> Failure | None:
        """The backend's verdict; an unclaimed ``OSError`` (disk full, permission) means
        the store cannot work."""
        failure = self.inner.classify(error)
        if failure is None and isinstance(error, OSError):
            return Failure("unavailable", f"{type(error).__name__}: {error}")
        return failure

    # ------------------------------------------------------------------ the Backend protocol
    def open(self, specs: Sequence[VectorSpec], identity: Mapping[str, Any]) -> None:
        self.call("open", self.inner.open, specs, identity)

    def close(self) -> None:
        self.call("close", self.inner.close, retry=False)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def fitted(self, key: str) -> dict[str, Any] | None:
        return self.call("read fitted state", self.inner.fitted, key)

    def save_fitted(self, key: str, state: Mapping[str, Any]) -> None:
        self.call("save fitted state", self.inner.save_fitted, key, state)

    def vector_config(self) -> dict[str, dict[str, Any]]:
        return self.call("read the vector config", self.inner.vector_config)

    def upsert(self, points: Sequence[PointData]) -> None:
        try:
            self.call(f"upsert of {len(points)} points", self.inner.upsert, points)
        finally:  # what the count said may be stale now
            self._changed()

    def set_payload(self, ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        try:
            self.call("set payload", self.inner.set_payload, ids, payload)
        finally:  # what the count said may be stale now
            self._changed()

    def delete_ids(self, ids: Sequence[str]) -> None:
        try:
            self.call(f"delete of {len(ids)} points", self.inner.delete_ids, ids)
        finally:  # what the count said may be stale now
            self._changed()

    def delete_payload(self, ids: Sequence[str], keys: Sequence[str]) -> None:
        try:
            self.call("delete payload keys", self.inner.delete_payload, ids, keys)
        finally:  # what the count said may be stale now
            self._changed()

    def delete_where(self, conditions: Sequence[Condition]) -> None:
        try:
            self.call("delete by filter", self.inner.delete_where, conditions)
        finally:  # what the count said may be stale now
            self._changed()

    def ids_where(self, conditions: Sequence[Condition]) -> list[str]:
        return self.call("scroll", self.inner.ids_where, conditions)

    def payloads_where(
        self, conditions: Sequence[Condition], keys: Sequence[str] | None, limit: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        return self.call("scroll", self.inner.payloads_where, conditions, keys, limit)

    def count(self, conditions: Sequence[Condition] = (), exact: bool = True) -> int:
        return self.call("count", self.inner.count, conditions, exact)

    def estimate(self, conditions: Sequence[Condition] = ()) -> int:
        """Points matching ``conditions`` for query planning, cached until the data changes
        (an Edge store) or for ``COUNT_TTL_S`` seconds (a server). Without a filter the
        engine's cheap count; with one an exact count (an index lookup), since a low guess
        would make a funnel scan far more points than it should."""
        key = repr(tuple(conditions))
        now = time.monotonic()
        hit = self._counts.get(key)
        if hit is not None and (self.kind == "edge" or now - hit[0] <= COUNT_TTL_S):
            return hit[1]
        n = self.count(conditions, exact=bool(conditions))
        if len(self._counts) >= 256:
            self._counts.clear()
        self._counts[key] = (now, n)
        return n

    def facet(self, key: str) -> dict[Any, int]:
        return self.call("facet", self.inner.facet, key)

    def retrieve(self, ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        return self.call("retrieve", self.inner.retrieve, ids)

    def vectors(self, ids: Sequence[str], names: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self.call("retrieve vectors", self.inner.vectors, ids, names)

    def query(self, requests: Sequence[PlanNode]) -> list[list[Row]]:
        return self.call("query", self.inner.query, requests)

    def flush(self) -> None:
        self.call("flush", self.inner.flush)

    def atomic(self) -> AbstractContextManager[None]:
        return self.inner.atomic()

    def _changed(self) -> None:
        self._counts.clear()

    def refresh(self) -> bool:
        moved = bool(self.inner.refresh())
        if moved:
            self._changed()
        return moved

    def optimize(self) -> bool:
        return self.call("optimize", self.inner.optimize)

    def drop(self) -> None:
        try:
            self.call("drop", self.inner.drop)
        finally:  # what the count said may be stale now
            self._changed()
