"""``QdrantStore``: one front door to Qdrant Edge, a Qdrant server, or local mode.

The backend follows from the arguments (exactly one of them):

* ``path=...``          -> Qdrant Edge in-process (the embedded default), with a directory lock;
* ``url=...``           -> a Qdrant server or cluster through qdrant-client;
* ``location=":memory:"`` -> qdrant-client local mode (pure Python, brute force: quick tests only).

Example::

    >>> import numpy as np
    >>> from ragnest.stores import QdrantStore
    >>> from ragnest.types import Chunk, VectorSpec, Route, Stage, SearchRequest, make_chunk_id
    >>> specs = [VectorSpec(name="coarse", kind="dense", dim=4, index="hnsw")]
    >>> with QdrantStore(location=":memory:") as store:
    ...     store.open(specs, {"model": "demo"})
    ...     cid = make_chunk_id("doc", 0, "hello")
    ...     chunk = Chunk(id=cid, document_id="doc", kind="text", text="hello", page=1)
    ...     v = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    ...     store.write_document("doc", [chunk], {cid: {"coarse": v}}, fingerprint="f1")
    ...     hits = store.search(SearchRequest(routes=(Route(name="dense",
    ...         stages=(Stage(vector="coarse", query=v, limit=5),)),), limit=1))
    ...     hits[0].chunk.text
    WriteResult(added=1, unchanged=0, removed=0)
    'hello'
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ragnest.errors import StoreError
from ragnest.protocols import StoredDocument
from ragnest.stores import _catalog
from ragnest.stores._args import check_arguments
from ragnest.stores._backend import Backend, to_chunk
from ragnest.stores._guard import GuardedBackend, RetryPolicy
from ragnest.stores._meta import jsonable, validate_specs
from ragnest.stores._reads import read_call
from ragnest.stores._replica import removing_inline
from ragnest.stores._search import SearchSettings, run_searches
from ragnest.stores._write import QdrantWrite, append_points, document_filter
from ragnest.types import Chunk, EmbeddedChunk, Hit, SearchRequest, Vector, VectorSpec, WriteResult

__all__ = ["BATCH_SIZE", "QdrantStore", "QdrantWrite", "WriteResult"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Points per upsert call.
BATCH_SIZE = 256

@dataclass(kw_only=True)
class QdrantStore:
    """Chunks and their named vectors in Qdrant; funnel search coarse -> fine.

    ``__init__`` only validates arguments; :meth:`open` creates or reopens the
    collection for a ladder (``specs``) and an embedder ``identity`` and refuses a
    different one (:class:`ragnest.errors.StoreMismatchError`).

    An Edge store (``path=``) has any number of readers and one writer, across processes.
    ``mode`` says which this handle is: ``"read"`` serves a private copy of the last
    committed state (refreshed when the data changes; a missing store is a
    :class:`~ragnest.errors.StoreError` naming the path, and writes are refused);
    ``"write"`` opens the live collection under the writer's lock (a second writer gets
    :class:`ragnest.errors.StoreLockedError`; it is created if missing); ``"auto"`` (the
    default) reads until the first write (or :meth:`prepare_write`), then becomes the
    writer, and creates a missing store at :meth:`open`. A reader waits up to ``wait``
    seconds for a writer's change in progress to finish, then raises
    :class:`~ragnest.errors.StoreLockedError`. A reader never blocks the writer or
    other readers.

    The first stage of a funnel walks the HNSW graph with ``ef = max(hnsw_ef, its
    limit)``, or searches exactly when the points it would search hold at most
    ``exact_search_kb`` KB of that vector (a small collection, or a narrow filter): HNSW can
    miss the best match in skewed collections, and a scan of that size takes milliseconds
    (``0``: always the graph). Funnel budgets follow the collection's size: a stage before
    the last keeps at most ``funnel_share`` of the points it scores, and one that would
    keep them all is left out (1.0, the default, never changes the hits; lower trims
    budgets on small collections at some recall).

    A backend that fails (a server that does not answer, a full disk, an engine error)
    raises :class:`ragnest.errors.StoreUnavailableError` naming the collection and the
    cause; the data it was given is refused with ``ValueError``. A server is asked with a
    ``timeout`` (seconds, rounded up to whole seconds by qdrant-client) and transient
    failures are retried ``retries`` times with exponential backoff and jitter. ``server``:
    sharding, replication, on-disk storage, tenants (see :mod:`ragnest.stores._server`).

    >>> store = QdrantStore(path="/tmp/ragnest-db", collection="manuals")
    >>> store.stats()  # doctest: +SKIP
    {'chunks': 0, 'documents': 0, 'backend': 'edge', 'path': '/tmp/ragnest-db', ...}
    """

    path: str | None = None
    url: str | None = None
    location: str | None = None
    collection: str = "ragnest"
    api_key_env: str = "QDRANT_API_KEY"
    hnsw_m: int = 16
    hnsw_ef_construct: int = 100
    hnsw_ef: int = 128
    full_scan_threshold: int | None = None
    timeout: float = 10.0
    retries: int = 3
    mode: Literal["auto", "read", "write"] = "auto"
    wait: float = 5.0
    exact_search_kb: int = 100_000
    funnel_share: float = 1.0
    server: dict[str, Any] | None = None  # url=: sharding, replication, tenant (stores._server)

    def __post_init__(self) -> None:
        if self.path is not None:
            self.path = os.fspath(self.path)
        check_arguments(self)
        # Heavy state lives outside the dataclass fields (asdict() must round-trip).
        self._backend: Backend | None = None
        self._writing = False  # whether _backend may write (an Edge reader may not)
        self._lazy = False  # open, but no backend made yet (auto mode on an existing store)
        self._want_write = False  # prepare_write() came before open()
        self._mutex = threading.Lock()
        self._readers = 0  # read calls in progress (a reader's copy is never swapped under one)
        self._specs: tuple[VectorSpec, ...] = ()
        self._identity: dict[str, Any] | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def backend(self) -> str:
        """``"edge"``, ``"server"`` or ``"memory"``."""
        return "edge" if self.path is not None else "server" if self.url else "memory"

    @property
    def is_open(self) -> bool:
        return self._backend is not None or self._lazy

    def _make_backend(self, write: bool = True) -> Backend:
        return GuardedBackend(
            self._raw_backend(write), where=self._where(), policy=RetryPolicy(retries=self.retries)
        )

    def _raw_backend(self, write: bool = True) -> Backend:
        common: dict[str, Any] = {
            "hnsw_m": self.hnsw_m,
            "hnsw_ef_construct": self.hnsw_ef_construct,
            "hnsw_ef": self.hnsw_ef,
            "full_scan_threshold": self.full_scan_threshold,
        }
        if self.path is not None:
            from ragnest.stores._edge import EdgeBackend

            return EdgeBackend(self.path, self.collection,  # type: ignore[arg-type]
                               mode="write" if write else "read", wait=float(self.wait), **common)
        from ragnest.stores._client import ClientBackend

        return ClientBackend(  # type: ignore[arg-type]
            url=self.url,
            location=self.location,
            collection=self.collection,
            api_key_env=self.api_key_env,
            timeout=float(self.timeout),
            server=self.server,
            **common,
        )

    def open(self, specs: Sequence[VectorSpec], identity: Mapping[str, Any]) -> None:
        """Create the collection for ``specs`` or reopen it, checking specs and identity.

        Calling it again while open re-checks the recorded setup against the new
        arguments (and raises :class:`StoreMismatchError` on any difference). With
        ``mode="read"`` a collection that does not exist is a :class:`StoreError`.
        """
        specs = tuple(specs)
        validate_specs(specs, self._where())
        if self._backend is not None:
            self._backend.open(specs, dict(identity))
        elif self.path is not None and self.mode != "write" and not self._want_write:
            probe = self._raw_backend(write=False)
            if self.mode == "read":
                self._open_backend(specs, identity, write=False)
            elif probe.exists():  # type: ignore[attr-defined]
                probe.check(specs, dict(identity))  # type: ignore[attr-defined]
                self._lazy = True  # auto: a reader or the writer, as the first use says
            else:
                self._open_backend(specs, identity, write=True)
        else:
            self._open_backend(specs, identity, write=self.mode != "read")
        self._specs = specs
        self._identity = dict(identity)

    def _open_backend(
        self, specs: Sequence[VectorSpec], identity: Mapping[str, Any], *, write: bool
    ) -> None:
        backend = self._make_backend(write)
        backend.open(specs, dict(identity))
        old, self._backend, self._writing, self._lazy = self._backend, backend, write, False
        if old is not None:  # a reader handing over to the writer
            old.close()

    def prepare_write(self) -> None:
        """Become the writer now (before any write): an ``auto`` store reading a copy
        switches to the live collection under the writer's lock; ``read`` refuses.

        Raises :class:`StoreLockedError` when another writer holds the store.
        """
        if self.is_open:
            self._require(write=True)
        else:
            self._refuse_read_only()
            self._want_write = True

    @read_call
    def fitted_state(self, key: str) -> dict[str, Any] | None:
        """State fitted on the corpus and stored with the collection (e.g. a PCA rotation).

        ``key`` names the owner (the pipeline uses the embedder's key). ``None`` when
        nothing was stored under it.
        """
        return self._require().fitted(key)

    def save_fitted_state(self, key: str, state: Mapping[str, Any]) -> None:
        """Store fitted state with the collection, once: vectors depend on it.

        Raises :class:`StoreError` when a different state is already stored under ``key``
        (replacing it would silently change what the stored vectors mean).

        >>> store = QdrantStore(location=":memory:")
        >>> store.open([VectorSpec(name="v", kind="dense", dim=2)], {"model": "m"})
        >>> store.save_fitted_state("dense", {"kind": "pca", "dim": 2})
        >>> store.fitted_state("dense")["kind"]
        'pca'
        """
        backend = self._require(write=True)
        old = backend.fitted(key)
        if old is not None:
            if jsonable(old) == jsonable(dict(state)):
                return
            raise StoreError(
                f"{self._where()} already stores fitted state for {key!r}; vectors were made "
                "with it, so it is never replaced (use a new collection to refit)"
            )
        backend.save_fitted(key, jsonable(dict(state)))

    def warm_up(self) -> None:
        """Reopen with the last ``open`` arguments after a :meth:`close`; no-op otherwise."""
        if not self.is_open and self._specs and self._identity is not None:
            self.open(self._specs, self._identity)

    def close(self) -> None:
        """Flush, close the collection and release the locks (idempotent)."""
        backend, self._backend = self._backend, None
        self._writing = self._lazy = self._want_write = False
        if backend is not None:
            backend.close()

    def __enter__(self) -> QdrantStore:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown, half-built object
            with removing_inline():  # no thread started from a finalizer
                self.close()

    def optimize(self) -> bool:
        """Build pending indexes (Edge: HNSW on the coarse vector when big enough).

        Cheap when there is nothing to do; returns whether anything was optimized.
        """
        return self._require(write=True).optimize()

    def drop(self) -> None:
        """Delete the whole collection (and, for Edge, its metadata file), then close."""
        self._refuse_read_only()
        backend = self._backend if self._writing else None
        if backend is None:  # not the writer yet (or a reader's copy, released here)
            self.close()
            backend = self._make_backend()
        self._backend, self._writing, self._lazy = None, False, False
        if backend.kind == "edge":
            backend.drop()  # takes the lock itself (and closes the shard first)
        else:
            try:
                backend.drop()
            finally:
                backend.close()

    def _where(self) -> str:
        where = self.path or self.url or self.location
        return f"collection {self.collection!r} at {where}"

    def _require(self, write: bool = False) -> Backend:
        """The open backend; for ``write`` the writer (an ``auto`` reader switches)."""
        if not self.is_open:
            raise StoreError(f"{self._where()} is not open; call open(specs, identity) first")
        if write:
            self._refuse_read_only()
        if self._backend is None or (write and not self._writing):
            self._open_backend(self._specs, self._identity or {}, write=write)
        assert self._backend is not None
        return self._backend

    def _enter_read(self) -> None:
        with self._mutex:
            backend = self._require()
            if not self._writing and self._readers == 0:
                backend.refresh()  # a reader's call serves the latest committed state
            self._readers += 1

    def _exit_read(self) -> None:
        with self._mutex:
            self._readers -= 1

    def _refuse_read_only(self) -> None:
        if self.mode == "read":
            raise StoreError(f"{self._where()} is open for reading (mode='read'); use "
                             "mode='auto' or 'write' to change it")

    # ------------------------------------------------------------------ documents
    @read_call
    def chunk_ids(self, document_id: str) -> set[str]:
        """Ids of the chunks stored for ``document_id``."""
        return set(self._require().ids_where(_doc(document_id)))

    @read_call
    def document_fingerprint(self, document_id: str) -> str | None:
        """The stored fingerprint, only if every chunk of that version is present (and no
        other) and committed: a write killed before its commit leaves none."""
        return _catalog.committed_fingerprint(self._require(), document_id)

    def begin(
        self, document_id: str, chunk_ids: Sequence[str], *, fingerprint: str
    ) -> QdrantWrite:
        """Start replacing ``document_id`` by the version made of ``chunk_ids``.

        The returned transaction lists in ``missing`` the chunks not stored yet; add
        them with their vectors, then commit (see :mod:`ragnest.stores._write`). New
        points are written before stale ones are removed, and the fingerprint marks
        the document complete only at commit; an abort leaves the previous version.
        """
        return QdrantWrite(self._require(write=True), {s.name: s for s in self._specs}, document_id,
                           chunk_ids, fingerprint=fingerprint, where=self._where())

    def append(self, document_id: str, points: Sequence[EmbeddedChunk]) -> WriteResult:
        """Add chunks to ``document_id`` without touching its other chunks.

        For documents that grow (a conversation's memory): ids already stored are
        kept as they are (a retried append adds nothing twice). Appended chunks carry
        no file fingerprint, so a file ingest of the same document id replaces them.
        """
        return append_points(self._require(write=True), {s.name: s for s in self._specs},
                             document_id, points, batch_size=BATCH_SIZE, where=self._where())

    def write_document(
        self,
        document_id: str,
        chunks: Sequence[Chunk],
        vectors: Mapping[str, Mapping[str, Vector]],
        *,
        fingerprint: str,
        batch_size: int = BATCH_SIZE,
    ) -> WriteResult:
        """Make the stored document equal ``chunks`` in one call (a :meth:`begin`
        transaction): ``vectors`` maps chunk id -> {vector name: vector} for at least
        the chunks not stored yet; they are written ``batch_size`` at a time.
        """
        for chunk in chunks:
            if chunk.document_id != document_id:
                raise ValueError(
                    f"chunk {chunk.id} belongs to document {chunk.document_id}, not {document_id}"
                )
        with self.begin(document_id, [c.id for c in chunks], fingerprint=fingerprint) as tx:
            need = set(tx.missing)
            new = [c for c in chunks if c.id in need]
            step = max(1, batch_size)
            for start in range(0, len(new), step):
                # add() checks every vector (a new chunk without any is refused, clearly);
                # a bad batch aborts the transaction, removing the batches before it
                tx.add([EmbeddedChunk(chunk=c, vectors=vectors.get(c.id) or {})
                        for c in new[start : start + step]])
            return tx.commit()

    def delete_document(self, document_id: str) -> int:
        """Remove every chunk of ``document_id``; returns how many were removed."""
        backend = self._require(write=True)
        n = backend.count(_doc(document_id))
        if n:
            backend.delete_where(_doc(document_id))
            backend.flush()
            log.info("%s: deleted document %s (%d chunks)", self._where(), document_id, n)
        return n

    @read_call
    def get(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        """The stored chunks for ``chunk_ids``, in that order (missing ids are skipped)."""
        rows = dict(self._require().retrieve(list(dict.fromkeys(chunk_ids))))
        return [to_chunk(cid, rows[cid]) for cid in chunk_ids if cid in rows]

    @read_call
    def documents(self) -> list[dict[str, Any]]:
        """One ``{"document_id", "source", "chunks"}`` dict per stored document, by source."""
        return _catalog.documents(self._require())

    @read_call
    def catalog(
        self,
        *,
        source: str | None = None,
        fingerprint: str | None = None,
        document_id: str | None = None,
    ) -> list[StoredDocument]:
        """Stored documents, each described whole (the paths its chunks cite, its chunk
        count, its fingerprint when completely stored), sorted by source.

        ``source`` / ``fingerprint`` / ``document_id`` keep those with a chunk citing
        that path / carrying that content fingerprint / of that id (indexed lookups;
        no filter lists every document).
        """
        return _catalog.catalog(self._require(), source=source, fingerprint=fingerprint,
                                document_id=document_id)

    def set_chunk_fields(self, document_id: str, fields: Mapping[str, Mapping[str, Any]]) -> int:
        """Set payload fields of stored chunks of ``document_id`` in place:
        ``{chunk id: {"source": ..., "image": ...}}`` (keys as in ``Chunk.to_payload``,
        except ``document_id``). Ids, vectors and fingerprints stay as they are: a moved
        file is re-pointed without re-embedding. Returns the chunks updated; a chunk
        that is not one of the document's is refused (``ValueError``) before any change.
        """
        return _catalog.set_chunk_fields(self._require(write=True), document_id, fields,
                                         self._where())

    @read_call
    def stats(self) -> dict[str, Any]:
        """Counts and where the data lives.

        ``{"chunks", "documents", "backend", "path"|"url"|"location", "collection", "vectors"}``.
        """
        backend = self._require()
        out: dict[str, Any] = {
            "chunks": backend.count(),
            "documents": len(backend.facet("document_id")),
        }
        out.update(backend.describe())
        out["vectors"] = [s.name for s in self._specs]
        return out

    @read_call
    def vector_config(self) -> dict[str, dict[str, Any]]:
        """The engine's view of each named vector: kind, dim, ``hnsw_m`` (0 = no graph), ..."""
        return self._require().vector_config()

    # ------------------------------------------------------------------ search
    @read_call
    def search(self, request: SearchRequest) -> list[Hit]:
        """Run the request's funnels (one nested-prefetch query each) and fuse them.

        One route: a single query, coarse stage innermost, the filter on every stage.
        Several routes: ``rrf`` (weighted) and ``dbsf`` fuse inside the engine;
        ``relative`` runs the funnels as one batch and fuses min-max normalised scores.
        The engine returns ids and scores; payloads are fetched for the final hits only,
        and per-stage scores only when ``request.stage_scores`` asks for them. Each
        stage keeps at most ``funnel_share`` of the points it scores, and a stage that
        would keep them all is left out (:func:`ragnest.stores._plan.sized_stages`).
        """
        return self.search_many([request])[0]

    @read_call
    def search_many(self, requests: Sequence[SearchRequest]) -> list[list[Hit]]:
        """:meth:`search` for many requests: one engine batch for all of them and one
        fetch of their final hits' payloads; the same hits as searching one by one."""
        backend = self._require()
        settings = SearchSettings(hnsw_ef=self.hnsw_ef, exact_search_kb=self.exact_search_kb,
                                  funnel_share=self.funnel_share, where=self._where())
        return run_searches(backend, {s.name: s for s in self._specs}, list(requests),
                            settings)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- helpers
_doc = document_filter
