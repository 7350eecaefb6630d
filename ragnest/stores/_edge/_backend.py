"""The Edge backend: one shard plus its ragnest metadata, opened to write or to read
(see the package docs). qdrant_edge types are built in ``_engine``."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from qdrant_edge import (
    CountRequest,
    EdgeShard,
    FacetRequest,
    Point,
    QueryBatchRequest,
    ScrollRequest,
    SparseVector,
    UpdateOperation,
)

from ragnest.errors import StoreError, StoreMismatchError
from ragnest.stores._backend import (
    Failure,
    PointData,
    Row,
    as_list,
    scroll_payloads,
    sparse_parts,
)
from ragnest.stores._commit import CommitLock
from ragnest.stores._edge._engine import (
    DEFAULT_FULL_SCAN_THRESHOLD,
    classify,
    drop_pending,
    index_fields,
    rows,
    shard_config,
    to_filter,
    translate,
)
from ragnest.stores._filters import Condition
from ragnest.stores._lock import DirectoryLock
from ragnest.stores._meta import (
    build_metadata,
    edge_vector_config,
    mismatch_reasons,
    read_json,
    write_json_atomic,
)
from ragnest.stores._plan import PlanNode
from ragnest.stores._replica import ReplicaPool, Slot
from ragnest.types import VectorSpec

__all__ = ["EdgeBackend", "check_store_path", "no_store"]

log = logging.getLogger(__name__)


def check_store_path(root: Path) -> None:
    """A store path must be a directory (or not exist yet)."""
    if root.exists() and not root.is_dir():
        raise StoreError(f"store path {root} is a file, not a directory; give a folder path")


class EdgeBackend:
    """One Edge shard plus its ragnest metadata, opened to ``write`` (the live shard, under
    the writer's lock) or to ``read`` (a private copy of the last committed state)."""

    kind: Literal["edge"] = "edge"

    def __init__(
        self,
        path: str,
        collection: str,
        *,
        hnsw_m: int,
        hnsw_ef_construct: int,
        hnsw_ef: int,
        full_scan_threshold: int | None,
        mode: Literal["read", "write"] = "write",
        wait: float = 5.0,
    ) -> None:
        self.root = Path(path).expanduser().absolute()
        self.collection = collection
        self.shard_dir = self.root / collection
        self.meta_path = self.root / f"{collection}.ragnest.json"
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construct = hnsw_ef_construct
        self.hnsw_ef = hnsw_ef
        self.full_scan_threshold = (
            DEFAULT_FULL_SCAN_THRESHOLD if full_scan_threshold is None else full_scan_threshold
        )
        self.mode = mode
        self.wait = wait
        self._lock = DirectoryLock(self.root)
        self._commit = CommitLock(self.root)
        self._pool = ReplicaPool(self.root, self.shard_dir, self.meta_path, self._commit,
                                 wait=wait)
        self._slot: Slot | None = None  # the reader's copy
        self._shard: EdgeShard | None = None
        self._specs: dict[str, VectorSpec] = {}

    def classify(self, error: BaseException) -> Failure | None:
        return classify(error)

    def exists(self) -> bool:
        """Whether the collection is stored here (a path that is a file is an error)."""
        check_store_path(self.root)
        return self.meta_path.is_file() and _has_shard(self.shard_dir)

    def check(self, specs: Sequence[VectorSpec], identity: Mapping[str, Any]) -> None:
        """Refuse (StoreMismatchError) a setup other than the recorded one, opening nothing."""
        self._check(read_json(self.meta_path), specs, identity)

    # ------------------------------------------------------------------ lifecycle
    def open(self, specs: Sequence[VectorSpec], identity: Mapping[str, Any]) -> None:
        if self._shard is not None:  # already open: only re-check the recorded setup
            self._check(read_json(self._meta_file), specs, identity)
            self._specs = {s.name: s for s in specs}
            return
        check_store_path(self.root)
        if self.mode == "read":
            self._open_read(specs, identity)
            self._specs = {s.name: s for s in specs}
            return
        self._lock.acquire()  # before touching the shard, always
        try:
            created = not self.exists()
            with self._commit.exclusive(logical=created):  # loading rewrites files too
                self._open_locked(specs, identity)
        except BaseException:
            if self._shard is not None:
                try:
                    self._shard.close()
                finally:
                    self._shard = None
            self._lock.release()
            raise
        self._specs = {s.name: s for s in specs}

    def _open_read(self, specs: Sequence[VectorSpec], identity: Mapping[str, Any]) -> None:
        if not self.exists():
            raise StoreError(no_store(self.root, self.collection))
        self.check(specs, identity)  # fail fast, before copying anything
        slot = self._pool.checkout()
        try:
            self._check(read_json(slot.meta), specs, identity)
            self._shard = self._load_copy(slot)
        except BaseException:
            self._pool.release(slot)
            raise
        self._slot = slot
        log.info("opened a read copy of Qdrant Edge collection %r at %s (%s)",
                 self.collection, self.root, slot.path)

    def _load_copy(self, slot: Slot) -> EdgeShard:
        """Load a reader's copy; a fresh one first loses the points of uncommitted writes."""
        shard = EdgeShard.load(str(slot.shard))
        if slot.copied is not None:
            try:
                dropped = drop_pending(shard)
                shard.flush()
                if dropped:
                    log.info("read copy of %s: left out %d points of an uncommitted write",
                             self.root, dropped)
            except BaseException:
                shard.close()
                raise
            slot.ready()
        return shard

    def refresh(self) -> bool:
        """A reader whose data changed since its copy moves to a new copy, if one can be
        had without waiting; otherwise it keeps serving the copy it has (writer: no-op).
        Returns whether it moved."""
        old = self._slot
        if old is None or not self._pool.changed(old):
            return False
        try:
            slot = self._pool.checkout(timeout=0.0)
        except StoreError:
            return False
        try:
            shard = self._load_copy(slot)
        except Exception:
            log.warning("could not load a fresh copy of %s; serving the previous one",
                        self.root, exc_info=True)
            self._pool.release(slot)
            return False
        stale, self._shard, self._slot = self._shard, shard, slot
        try:
            if stale is not None:
                stale.close()
        finally:
            self._pool.release(old)
        log.debug("reader of %s moved to a fresh copy %s", self.root, slot.path)
        return True

    @property
    def _meta_file(self) -> Path:
        return self._slot.meta if self._slot is not None else self.meta_path

    @property
    def _data_dir(self) -> Path:
        return self._slot.shard if self._slot is not None else self.shard_dir

    def _changing(self, *, logical: bool = True) -> contextlib.AbstractContextManager[None]:
        """The exclusive section every change of files runs in (readers copy between them)."""
        if self.mode != "write":
            raise StoreError(f"collection {self.collection!r} at {self.root} is open for reading")
        return self._commit.exclusive(logical=logical)

    def atomic(self) -> contextlib.AbstractContextManager[None]:
        return self._changing()

    def _open_locked(self, specs: Sequence[VectorSpec], identity: Mapping[str, Any]) -> None:
        has_shard = _has_shard(self.shard_dir)
        has_meta = self.meta_path.exists()
        if has_meta and has_shard:
            self._check(read_json(self.meta_path), specs, identity)
            self._shard = EdgeShard.load(str(self.shard_dir))
            log.info("opened Qdrant Edge collection %r at %s", self.collection, self.shard_dir)
            return
        if has_shard:  # created, but the metadata write never happened
            shard = EdgeShard.load(str(self.shard_dir))
            points = shard.info().points_count
            if points:
                shard.close()
                raise StoreError(
                    f"{self.shard_dir} holds {points} points but no ragnest metadata "
                    f"({self.meta_path} is missing), so its embedder and ladder are unknown; "
                    "delete the directory to rebuild it, or use another collection name"
                )
            self._shard = shard
        else:
            if has_meta:
                log.warning(
                    "metadata %s has no shard next to it; creating an empty collection",
                    self.meta_path,
                )
            config = shard_config(specs, hnsw_m=self.hnsw_m, ef_construct=self.hnsw_ef_construct,
                                  full_scan_threshold=self.full_scan_threshold)
            self._shard = EdgeShard.create(str(self.shard_dir), config)
            index_fields(self._shard)
            self._shard.flush()
            log.info("created Qdrant Edge collection %r at %s", self.collection, self.shard_dir)
        write_json_atomic(self.meta_path, build_metadata(specs, identity))

    def _check(
        self, stored: Mapping[str, Any], specs: Sequence[VectorSpec], identity: Mapping[str, Any]
    ) -> None:
        reasons = mismatch_reasons(stored, specs, identity)
        if reasons:
            raise StoreMismatchError(
                f"collection {self.collection!r} at {self.root} was built with a different "
                f"setup: {'; '.join(reasons)}. Use a new collection name (collection=...) or a "
                f"new path, or delete {self.shard_dir} and {self.meta_path} to rebuild it."
            )

    def close(self) -> None:
        shard, self._shard = self._shard, None
        slot, self._slot = self._slot, None
        try:
            if shard is not None and slot is not None:
                shard.close()
            elif shard is not None:
                with self._commit.exclusive(logical=False):
                    try:
                        shard.flush()
                    finally:
                        shard.close()
                log.debug("closed Qdrant Edge collection %r", self.collection)
        finally:
            if slot is not None:
                self._pool.release(slot)
            self._lock.release()

    def drop(self) -> None:
        check_store_path(self.root)
        self.mode = "write"
        self._lock.acquire()
        try:
            with self._commit.exclusive(logical=True):
                if self._shard is not None:
                    self._shard.close()
                    self._shard = None
                shutil.rmtree(self.shard_dir, ignore_errors=True)
                self.meta_path.unlink(missing_ok=True)
            self._pool.clear()
        finally:
            self._lock.release()

    def fitted(self, key: str) -> dict[str, Any] | None:
        meta = self._meta_file
        record = read_json(meta) if meta.exists() else {}
        return (record.get("fitted") or {}).get(key)

    def save_fitted(self, key: str, state: Mapping[str, Any]) -> None:
        with self._changing():
            record = read_json(self.meta_path)
            record.setdefault("fitted", {})[key] = dict(state)
            write_json_atomic(self.meta_path, record)

    def describe(self) -> dict[str, Any]:
        return {"backend": "edge", "path": str(self.root), "collection": self.collection}

    def vector_config(self) -> dict[str, dict[str, Any]]:
        """The engine's own view of each named vector (read from ``edge_config.json``)."""
        raw = json.loads((self._data_dir / "edge_config.json").read_text(encoding="utf-8"))
        return edge_vector_config(raw, self.hnsw_m)

    @property
    def shard(self) -> EdgeShard:
        if self._shard is None:
            raise StoreError(f"collection {self.collection!r} at {self.root} is not open")
        return self._shard


    # ------------------------------------------------------------------ writes
    def _vector(self, name: str, value: Any) -> Any:
        spec = self._specs.get(name)
        if spec is not None and spec.kind == "sparse":
            return SparseVector(*sparse_parts(value))
        return as_list(value)

    def upsert(self, points: Sequence[PointData]) -> None:
        if not points:
            return
        op = UpdateOperation.upsert_points(
            [
                Point(p.id, {n: self._vector(n, v) for n, v in p.vectors.items()}, p.payload)
                for p in points
            ]
        )
        with self._changing():
            self.shard.update(op)

    def set_payload(self, ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        if ids:
            with self._changing():
                self.shard.update(UpdateOperation.set_payload(list(ids), dict(payload)))

    def delete_ids(self, ids: Sequence[str]) -> None:
        if ids:
            with self._changing():
                self.shard.update(UpdateOperation.delete_points(list(ids)))

    def delete_payload(self, ids: Sequence[str], keys: Sequence[str]) -> None:
        if ids and keys:
            with self._changing():
                self.shard.update(UpdateOperation.delete_payload(list(ids), list(keys)))

    def delete_where(self, conditions: Sequence[Condition]) -> None:
        flt = to_filter(conditions)
        if flt is None:
            raise StoreError("refusing to delete without a filter")
        with self._changing():
            self.shard.update(UpdateOperation.delete_points_by_filter(flt))

    def flush(self) -> None:
        with self._changing(logical=False):
            self.shard.flush()

    def optimize(self) -> bool:
        with self._changing(logical=False):  # same data, other files
            return bool(self.shard.optimize())

    # ------------------------------------------------------------------ reads
    def ids_where(self, conditions: Sequence[Condition]) -> list[str]:
        return [pid for pid, _ in self._scroll(conditions, False, None)]

    def payloads_where(
        self, conditions: Sequence[Condition], keys: Sequence[str] | None, limit: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        return self._scroll(conditions, list(keys) if keys else True, limit)

    def _scroll(
        self, conditions: Sequence[Condition], with_payload: Any, limit: int | None
    ) -> list[tuple[str, dict[str, Any]]]:
        flt = to_filter(conditions)
        shard = self.shard

        def fetch(offset: Any, size: int) -> tuple[Sequence[Any], Any]:
            return shard.scroll(ScrollRequest(offset=offset, limit=size, filter=flt,
                                              with_payload=with_payload, with_vector=False))

        return scroll_payloads(fetch, limit)

    def count(self, conditions: Sequence[Condition] = (), exact: bool = True) -> int:
        return int(self.shard.count(CountRequest(exact=exact, filter=to_filter(conditions))))

    def facet(self, key: str) -> dict[Any, int]:
        limit = max(self.count(), 1)
        response = self.shard.facet(FacetRequest(key, limit=limit, exact=True))
        # Edge 0.9 (exact=True) still lists values whose points were all deleted, with count 0
        return {hit.value: int(hit.count) for hit in response.hits if hit.count > 0}

    def retrieve(self, ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        if not ids:
            return []
        return [
            (str(r.id), dict(r.payload or {}))
            for r in self.shard.retrieve(list(ids), True, False)
        ]

    def vectors(self, ids: Sequence[str], names: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        wanted = set(names)
        return {
            str(r.id): {k: v for k, v in (r.vector or {}).items() if k in wanted}
            for r in self.shard.retrieve(list(ids), False, True)
        }

    # ------------------------------------------------------------------ search
    def query(self, requests: Sequence[PlanNode]) -> list[list[Row]]:
        filters: dict[int, Any] = {}
        built = [translate(node, filters, top=True) for node in requests]
        shard = self.shard
        if len(built) == 1:
            return [rows(shard.query(built[0]))]
        return [rows(points) for points in shard.query_batch(QueryBatchRequest(built))]


def _has_shard(directory: Path) -> bool:
    return (directory / "edge_config.json").exists() or (directory / "segments").exists()


def no_store(root: Path, collection: str) -> str:
    """The message for a read of a store that does not exist."""
    others = sorted(p.name[: -len(".ragnest.json")] for p in root.glob("*.ragnest.json"))
    held = f" (it holds {', '.join(repr(o) for o in others)})" if others else ""
    return (f"no store at {root} for collection {collection!r}{held}; "
            "run `ragnest ingest` first, or check --store / the pipeline's store path")
