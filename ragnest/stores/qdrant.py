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
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ragnest.errors import ConfigError, StoreError
from ragnest.stores._backend import RESERVED_KEYS, Backend, PointData, Row
from ragnest.stores._filters import Condition, parse_filters
from ragnest.stores._fusion import relative_fusion
from ragnest.stores._meta import jsonable
from ragnest.stores._stage_scores import scored_kinds, stage_score
from ragnest.types import Chunk, Hit, Route, SearchRequest, SparseVector, Vector, VectorSpec

__all__ = ["BATCH_SIZE", "QdrantStore", "VectorSource", "WriteResult"]

log = logging.getLogger(__name__)

#: Points per upsert call.
BATCH_SIZE = 256

#: Embeds a batch of new chunks: returns {chunk id: {vector name: vector}} for them.
VectorSource = Callable[[Sequence[Chunk]], Mapping[str, Mapping[str, Vector]]]
_COLLECTION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_FUSIONS = ("rrf", "dbsf", "relative")


@dataclass(frozen=True)
class WriteResult:
    """What :meth:`QdrantStore.write_document` did: chunks added, kept as they were, removed."""

    added: int
    unchanged: int
    removed: int


@dataclass(kw_only=True)
class QdrantStore:
    """Chunks and their named vectors in Qdrant; funnel search coarse -> fine.

    ``__init__`` only validates arguments; :meth:`open` creates or reopens the
    collection for a ladder (``specs``) and an embedder ``identity`` and refuses a
    different one (:class:`ragnest.errors.StoreMismatchError`). An Edge store
    (``path=``) is locked against a second opener
    (:class:`ragnest.errors.StoreLockedError`) until :meth:`close`.

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
            **common,
        )

    def open(self, specs: Sequence[VectorSpec], identity: Mapping[str, Any]) -> None:
        """Create the collection for ``specs`` or reopen it, checking specs and identity.

        Calling it again while open re-checks the recorded setup against the new
        arguments (and raises :class:`StoreMismatchError` on any difference).
        """
        specs = tuple(specs)
        _validate_specs(specs, self._where())
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

    def write_document(
        self,
        document_id: str,
        chunks: Sequence[Chunk],
        vectors: Mapping[str, Mapping[str, Vector]] | VectorSource,
        *,
        fingerprint: str,
        batch_size: int = BATCH_SIZE,
    ) -> WriteResult:
        """Make the stored document equal ``chunks``.

        ``vectors`` maps chunk id -> {vector name: vector} for chunks not stored yet,
        or is a callable that embeds a batch of new chunks and returns that mapping
        for them: the store then embeds and writes ``batch_size`` chunks at a time, so
        a 10,000-page document never holds all its vectors in memory.

        New points are upserted first, kept ones get the new fingerprint, and only
        then are stale chunks deleted, so an interrupted write never loses the old
        version's chunks before the new ones exist. If embedding or writing fails
        part-way, the points this call added are removed again before the error
        propagates: the stored document stays the old version.
        """
        backend = self._require()
        ids = [c.id for c in chunks]
        _check_chunks(document_id, chunks, ids)
        stored = dict(backend.payloads_where(_doc(document_id), RESERVED_KEYS))
        total = len(chunks)
        new = [c for c in chunks if c.id not in stored]
        embed = vectors if callable(vectors) else None
        if embed is None:
            for chunk in new:
                self._check_vectors(chunk.id, vectors.get(chunk.id))  # type: ignore[union-attr]
        wanted = set(ids)
        kept = [cid for cid in ids if cid in stored]
        stale = [cid for cid in stored if cid not in wanted]
        to_mark = [
            cid
            for cid in kept
            if stored[cid].get("doc_fingerprint") != fingerprint
            or stored[cid].get("doc_chunks") != total
        ]
        extra = {"doc_fingerprint": fingerprint, "doc_chunks": total}
        written: list[str] = []
        try:
            for start in range(0, len(new), max(1, batch_size)):
                batch = new[start : start + max(1, batch_size)]
                named = embed(batch) if embed is not None else vectors
                if embed is not None:
                    for chunk in batch:
                        self._check_vectors(chunk.id, named.get(chunk.id))  # type: ignore[union-attr]
                backend.upsert(
                    [
                        PointData(id=c.id, vectors=named[c.id],  # type: ignore[index]
                                  payload={**c.to_payload(), **extra})
                        for c in batch
                    ]
                )
                written += [c.id for c in batch]
        except BaseException:
            if written:
                log.warning("%s: document %s: write failed after %d new chunks; removing them",
                            self._where(), document_id, len(written))
                backend.delete_ids(written)
                backend.flush()
            raise
        backend.set_payload(to_mark, extra)
        backend.delete_ids(stale)
        if new or to_mark or stale:
            backend.flush()
        result = WriteResult(added=len(new), unchanged=len(kept), removed=len(stale))
        log.info(
            "%s: document %s: +%d =%d -%d chunks",
            self._where(),
            document_id,
            result.added,
            result.unchanged,
            result.removed,
        )
        return result

    def _check_vectors(self, chunk_id: str, named: Mapping[str, Vector] | None) -> None:
        if not named:
            raise ValueError(
                f"chunk {chunk_id} is not stored yet and came without vectors; "
                "pass vectors for every new chunk"
            )
        specs = {s.name: s for s in self._specs}
        for name, vec in named.items():
            spec = specs.get(name)
            if spec is None:
                raise ValueError(
                    f"chunk {chunk_id}: unknown vector {name!r}; {self._where()} has "
                    f"{sorted(specs)}"
                )
            _check_vector(chunk_id, spec, vec)

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
        return [_chunk(cid, rows[cid]) for cid in chunk_ids if cid in rows]

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
        """
        backend = self._require()
        routes = tuple(request.routes)
        if not routes or request.limit <= 0:
            return []
        if request.fusion not in _FUSIONS:
            raise ConfigError(
                f"unknown fusion {request.fusion!r}; use one of {', '.join(_FUSIONS)}"
            )
        names = {s.name for s in self._specs}
        for route in routes:
            if not route.stages:
                raise ConfigError(f"route {route.name!r} has no stages")
            for stage in route.stages:
                if stage.vector not in names:
                    raise ConfigError(
                        f"route {route.name!r}: unknown vector {stage.vector!r}; "
                        f"{self._where()} has {sorted(names)}"
                    )
                if stage.limit <= 0:
                    raise ConfigError(
                        f"route {route.name!r}: stage {stage.vector!r} limit must be > 0"
                    )
        conditions = parse_filters(request.filters)
        if len(routes) > 1 and request.fusion == "relative":
            per_route = backend.query_each(routes, limit=request.limit, conditions=conditions)
            fused = relative_fusion(
                per_route,
                names=[r.name for r in routes],
                weights=[r.weight for r in routes],
                limit=request.limit,
            )
            hits = [
                Hit(
                    chunk=_chunk(pid, payload), score=score, scores_by_stage={"final": score, **raw}
                )
                for pid, score, payload, raw in fused
            ]
            return self._with_stage_scores(hits, routes) if request.stage_scores else hits
        if request.fusion == "dbsf" and any(r.weight != 1.0 for r in routes):
            log.debug("dbsf fusion ignores route weights %s", [r.weight for r in routes])
        rows: list[Row] = backend.query(
            routes,
            limit=request.limit,
            conditions=conditions,
            fusion="dbsf" if request.fusion == "dbsf" else "rrf",
            fusion_k=request.fusion_k,
        )
        single = routes[0].name if len(routes) == 1 else None
        hits = [
            Hit(
                chunk=_chunk(pid, payload),
                score=score,
                scores_by_stage={"final": score, **({single: score} if single else {})},
            )
            for pid, score, payload in rows
        ]
        return self._with_stage_scores(hits, routes) if request.stage_scores else hits

    def _with_stage_scores(self, hits: list[Hit], routes: Sequence[Route]) -> list[Hit]:
        """Add each dense/multi stage's score (by vector name) to every hit."""
        specs = {s.name: s for s in self._specs}
        stages = [st for r in routes for st in r.stages if scored_kinds(specs[st.vector])]
        if not hits or not stages:
            return hits
        stored = self._require().vectors([h.chunk.id for h in hits],
                                         sorted({st.vector for st in stages}))
        out = []
        for hit in hits:
            scores = dict(hit.scores_by_stage)
            vecs = stored.get(hit.chunk.id, {})
            for st in stages:
                value = stage_score(specs[st.vector], st.query, vecs.get(st.vector))
                if value is not None:
                    scores[st.vector] = value
            out.append(Hit(chunk=hit.chunk, score=hit.score, scores_by_stage=scores))
        return out


# ---------------------------------------------------------------------- helpers
def _doc(document_id: str) -> list[Condition]:
    return [Condition("document_id", "match", document_id)]


def _chunk(chunk_id: str, payload: Mapping[str, Any]) -> Chunk:
    clean = {k: v for k, v in payload.items() if k not in RESERVED_KEYS}
    return Chunk.from_payload(chunk_id, clean)


def _validate_specs(specs: Sequence[VectorSpec], where: str) -> None:
    if not specs:
        raise ConfigError(f"{where}: open() needs at least one VectorSpec")
    seen: set[str] = set()
    for s in specs:
        if not s.name:
            raise ConfigError(f"{where}: a VectorSpec has an empty name")
        if s.name in seen:
            raise ConfigError(f"{where}: vector name {s.name!r} appears twice")
        seen.add(s.name)
        if s.kind not in ("dense", "multi", "sparse"):
            raise ConfigError(f"{where}: vector {s.name!r} has unknown kind {s.kind!r}")
        if s.kind != "sparse" and (not isinstance(s.dim, int) or s.dim <= 0):
            raise ConfigError(f"{where}: vector {s.name!r} ({s.kind}) needs dim > 0, got {s.dim!r}")
        if s.distance not in ("dot", "cosine"):
            raise ConfigError(f"{where}: vector {s.name!r} has unknown distance {s.distance!r}")


def _check_chunks(document_id: str, chunks: Sequence[Chunk], ids: Sequence[str]) -> None:
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"document {document_id}: duplicate chunk ids {dupes[:3]}")
    for chunk in chunks:
        if chunk.document_id != document_id:
            raise ValueError(
                f"chunk {chunk.id} belongs to document {chunk.document_id}, not {document_id}"
            )
        try:
            canonical = str(uuid.UUID(chunk.id))
        except (ValueError, AttributeError, TypeError):
            canonical = None
        if canonical != chunk.id:
            raise ValueError(
                f"chunk id {chunk.id!r} is not a canonical uuid string (use make_chunk_id)"
            )


def _check_vector(chunk_id: str, spec: VectorSpec, vec: Any) -> None:
    if spec.kind == "sparse":
        if not isinstance(vec, SparseVector) and not (
            hasattr(vec, "indices") and hasattr(vec, "values")
        ):
            raise ValueError(
                f"chunk {chunk_id}: vector {spec.name!r} is sparse, got {type(vec).__name__}"
            )
        return
    shape = np.shape(vec)
    if spec.kind == "dense" and shape != (spec.dim,):
        raise ValueError(
            f"chunk {chunk_id}: vector {spec.name!r} is dense {spec.dim}-d, got shape {shape}"
        )
    if spec.kind == "multi" and (len(shape) != 2 or shape[0] == 0 or shape[1] != spec.dim):
        raise ValueError(
            f"chunk {chunk_id}: vector {spec.name!r} is multi (rows x {spec.dim}), "
            f"got shape {shape}"
        )
