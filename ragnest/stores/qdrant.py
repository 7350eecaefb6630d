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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ragnest.errors import ConfigError, StoreError
from ragnest.protocols import StoredDocument
from ragnest.stores import _catalog
from ragnest.stores._backend import RESERVED_KEYS, Backend, PointData, to_chunk
from ragnest.stores._filters import Condition
from ragnest.stores._fusion import hits_from_rows
from ragnest.stores._guard import GuardedBackend, RetryPolicy
from ragnest.stores._meta import jsonable, validate_specs
from ragnest.stores._plan import build_plan
from ragnest.stores._stage_scores import with_stage_scores
from ragnest.stores._write import QdrantWrite, check_chunk_ids, check_vectors, document_filter
from ragnest.types import Chunk, EmbeddedChunk, Hit, SearchRequest, Vector, VectorSpec, WriteResult

__all__ = ["BATCH_SIZE", "QdrantStore", "QdrantWrite", "WriteResult"]

log = logging.getLogger(__name__)

#: Points per upsert call.
BATCH_SIZE = 256

_COLLECTION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(kw_only=True)
class QdrantStore:
    """Chunks and their named vectors in Qdrant; funnel search coarse -> fine.

    ``__init__`` only validates arguments; :meth:`open` creates or reopens the
    collection for a ladder (``specs``) and an embedder ``identity`` and refuses a
    different one (:class:`ragnest.errors.StoreMismatchError`). An Edge store
    (``path=``) is locked against a second opener
    (:class:`ragnest.errors.StoreLockedError`) until :meth:`close`.

    A backend that fails (a server that does not answer, a full disk, an engine error)
    raises :class:`ragnest.errors.StoreUnavailableError` naming the collection and the
    cause; the data it was given is refused with ``ValueError``. A server is asked with a
    ``timeout`` (seconds, rounded up to whole seconds by qdrant-client) and transient
    failures are retried ``retries`` times with exponential backoff and jitter.

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

    def __post_init__(self) -> None:
        if self.path is not None:
            self.path = os.fspath(self.path)
        chosen = [n for n in ("path", "url", "location") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ConfigError(
                "QdrantStore needs exactly one of path= (Qdrant Edge on disk), url= (a Qdrant "
                "server) or location=':memory:' (local mode, tests only)"
                + (f"; got {', '.join(chosen)}" if chosen else "")
            )
        if self.location is not None and self.location != ":memory:":
            raise ConfigError(
                f"QdrantStore location={self.location!r}: only ':memory:' is supported; "
                "use path= for an on-disk store"
            )
        if not isinstance(self.collection, str) or not _COLLECTION_RE.match(self.collection):
            raise ConfigError(
                f"QdrantStore collection={self.collection!r}: use letters, digits, '_', '-', '.' "
                "(it names a directory)"
            )
        for name in ("hnsw_m", "hnsw_ef_construct", "hnsw_ef"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < (0 if name == "hnsw_m" else 1)
            ):
                raise ConfigError(f"QdrantStore {name}={value!r}: expected a positive integer")
        fst = self.full_scan_threshold
        if fst is not None and (isinstance(fst, bool) or not isinstance(fst, int) or fst < 0):
            raise ConfigError(f"QdrantStore full_scan_threshold={fst!r}: expected an integer >= 0")
        t = self.timeout
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < float("inf"):
            raise ConfigError(f"QdrantStore timeout={t!r}: expected a number of seconds > 0")
        r = self.retries
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise ConfigError(f"QdrantStore retries={r!r}: expected an integer >= 0")
        # Heavy state lives outside the dataclass fields (asdict() must round-trip).
        self._backend: Backend | None = None
        self._specs: tuple[VectorSpec, ...] = ()
        self._identity: dict[str, Any] | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def backend(self) -> str:
        """``"edge"``, ``"server"`` or ``"memory"``."""
        return "edge" if self.path is not None else "server" if self.url else "memory"

    @property
    def is_open(self) -> bool:
        return self._backend is not None

    def _make_backend(self) -> Backend:
        return GuardedBackend(
            self._raw_backend(), where=self._where(), policy=RetryPolicy(retries=self.retries)
        )

    def _raw_backend(self) -> Backend:
        common: dict[str, Any] = {
            "hnsw_m": self.hnsw_m,
            "hnsw_ef_construct": self.hnsw_ef_construct,
            "hnsw_ef": self.hnsw_ef,
            "full_scan_threshold": self.full_scan_threshold,
        }
        if self.path is not None:
            from ragnest.stores._edge import EdgeBackend

            return EdgeBackend(self.path, self.collection, **common)  # type: ignore[arg-type]
        from ragnest.stores._client import ClientBackend

        return ClientBackend(  # type: ignore[arg-type]
            url=self.url,
            location=self.location,
            collection=self.collection,
            api_key_env=self.api_key_env,
            timeout=float(self.timeout),
            **common,
        )

    def open(self, specs: Sequence[VectorSpec], identity: Mapping[str, Any]) -> None:
        """Create the collection for ``specs`` or reopen it, checking specs and identity.

        Calling it again while open re-checks the recorded setup against the new
        arguments (and raises :class:`StoreMismatchError` on any difference).
        """
        specs = tuple(specs)
        validate_specs(specs, self._where())
        backend = self._backend or self._make_backend()
        backend.open(specs, dict(identity))
        self._backend = backend
        self._specs = specs
        self._identity = dict(identity)

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
        backend = self._require()
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
        if self._backend is None and self._specs and self._identity is not None:
            self.open(self._specs, self._identity)

    def close(self) -> None:
        """Flush, close the collection and release the directory lock (idempotent)."""
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()

    def __enter__(self) -> QdrantStore:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown, half-built object
            self.close()

    def optimize(self) -> bool:
        """Build pending indexes (Edge: HNSW on the coarse vector when big enough).

        Cheap when there is nothing to do; returns whether anything was optimized.
        """
        return self._require().optimize()

    def drop(self) -> None:
        """Delete the whole collection (and, for Edge, its metadata file), then close."""
        backend = self._backend or self._make_backend()
        self._backend = None
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

    def _require(self) -> Backend:
        if self._backend is None:
            raise StoreError(f"{self._where()} is not open; call open(specs, identity) first")
        return self._backend

    # ------------------------------------------------------------------ documents
    def chunk_ids(self, document_id: str) -> set[str]:
        """Ids of the chunks stored for ``document_id``."""
        return set(self._require().ids_where(_doc(document_id)))

    def document_fingerprint(self, document_id: str) -> str | None:
        """The stored fingerprint, only if every chunk of that version is present (and no other)."""
        backend = self._require()
        rows = backend.payloads_where(_doc(document_id), RESERVED_KEYS, limit=1)
        if not rows:
            return None
        payload = rows[0][1]
        fp, total = payload.get("doc_fingerprint"), payload.get("doc_chunks")
        if not isinstance(fp, str) or not isinstance(total, int):
            return None
        if backend.count(_doc(document_id)) != total:
            return None
        matched = backend.count([*_doc(document_id), Condition("doc_fingerprint", "match", fp)])
        return fp if matched == total else None

    def begin(
        self, document_id: str, chunk_ids: Sequence[str], *, fingerprint: str
    ) -> QdrantWrite:
        """Start replacing ``document_id`` by the version made of ``chunk_ids``.

        The returned transaction lists in ``missing`` the chunks not stored yet; add
        them with their vectors, then commit (see :mod:`ragnest.stores._write`). New
        points are written before stale ones are removed, and the fingerprint marks
        the document complete only at commit; an abort leaves the previous version.
        """
        return QdrantWrite(self._require(), {s.name: s for s in self._specs}, document_id,
                           chunk_ids, fingerprint=fingerprint, where=self._where())

    def append(self, document_id: str, points: Sequence[EmbeddedChunk]) -> WriteResult:
        """Add chunks to ``document_id`` without touching its other chunks.

        For documents that grow (a conversation's memory): ids already stored are
        kept as they are (a retried append adds nothing twice). Appended chunks carry
        no file fingerprint, so a file ingest of the same document id replaces them.
        """
        backend = self._require()
        ids = [p.chunk.id for p in points]
        check_chunk_ids(document_id, ids)
        specs = {s.name: s for s in self._specs}
        for p in points:
            if p.chunk.document_id != document_id:
                raise ValueError(
                    f"chunk {p.chunk.id} belongs to document {p.chunk.document_id}, "
                    f"not {document_id}"
                )
        stored = {pid for pid, _ in backend.retrieve(ids)} if ids else set()
        new = [p for p in points if p.chunk.id not in stored]
        for p in new:
            check_vectors(p.chunk.id, p.vectors, specs, self._where())
        for start in range(0, len(new), BATCH_SIZE):
            backend.upsert([PointData(id=p.chunk.id, vectors=p.vectors,
                                      payload=p.chunk.to_payload())
                            for p in new[start : start + BATCH_SIZE]])
        if new:
            backend.flush()
        return WriteResult(added=len(new), unchanged=len(points) - len(new), removed=0)

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
        backend = self._require()
        n = backend.count(_doc(document_id))
        if n:
            backend.delete_where(_doc(document_id))
            backend.flush()
            log.info("%s: deleted document %s (%d chunks)", self._where(), document_id, n)
        return n

    def get(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        """The stored chunks for ``chunk_ids``, in that order (missing ids are skipped)."""
        rows = dict(self._require().retrieve(list(dict.fromkeys(chunk_ids))))
        return [to_chunk(cid, rows[cid]) for cid in chunk_ids if cid in rows]

    def documents(self) -> list[dict[str, Any]]:
        """One ``{"document_id", "source", "chunks"}`` dict per stored document, by source."""
        docs: dict[str, dict[str, Any]] = {}
        for _, payload in self._require().payloads_where([], ["document_id", "source"]):
            doc_id = payload.get("document_id")
            entry = docs.setdefault(
                doc_id, {"document_id": doc_id, "source": payload.get("source") or "", "chunks": 0}
            )
            entry["chunks"] += 1
        return sorted(docs.values(), key=lambda d: (d["source"], str(d["document_id"])))

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
        return _catalog.set_chunk_fields(self._require(), document_id, fields, self._where())

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

    def vector_config(self) -> dict[str, dict[str, Any]]:
        """The engine's view of each named vector: kind, dim, ``hnsw_m`` (0 = no graph), ..."""
        return self._require().vector_config()

    # ------------------------------------------------------------------ search
    def search(self, request: SearchRequest) -> list[Hit]:
        """Run the request's funnels (one nested-prefetch query each) and fuse them.

        One route: a single query, coarse stage innermost, the filter on every stage.
        Several routes: ``rrf`` (weighted) and ``dbsf`` fuse inside the engine;
        ``relative`` runs the funnels as one batch and fuses min-max normalised scores.
        The plan is built once (:mod:`ragnest.stores._plan`); the backend translates it.
        """
        backend = self._require()
        specs = {s.name: s for s in self._specs}
        plan = build_plan(request, specs, hnsw_ef=self.hnsw_ef, where=self._where())
        if plan is None:
            return []
        hits = hits_from_rows(plan, backend.query(plan.requests))
        if not request.stage_scores:
            return hits
        return with_stage_scores(hits, plan.routes, specs, backend.vectors)


# ---------------------------------------------------------------------- helpers
_doc = document_filter
