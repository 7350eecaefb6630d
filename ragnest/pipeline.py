"""The pipeline: parse -> embed -> store on ingest; embed -> funnel search -> rerank -> generate on query.

    >>> import tempfile
    >>> from ragnest import Pipeline
    >>> store = tempfile.mkdtemp()
    >>> with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": store}) as rag:
    ...     report = rag.ingest(["examples/docs"], progress=False)
    ...     answer = rag.query("How often should the machine be descaled?")
    >>> answer.citations[0].page
    5
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ragnest import registry
from ragnest.config import (
    ComponentConfig,
    IngestConfig,
    PipelineConfig,
    RetrievalConfig,
    load_config,
)
from ragnest.errors import ConfigError, ParseError, RagnestError, StoreLockedError
from ragnest.ingest import DocumentReport, IngestReport, SkippedFile, discover
from ragnest.ingest.pool import ParsePool, parse_all
from ragnest.protocols import Embedder, FittedEmbedder, Generator, Parser, Reranker, Store
from ragnest.types import (
    Answer,
    Chunk,
    EmbeddedChunk,
    Hit,
    ImageRef,
    Query,
    Route,
    SearchRequest,
    Source,
    Stage,
    Vector,
    VectorSpec,
)

__all__ = ["Pipeline"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, str], None]  # (path, status)


def _component_params(obj: Any) -> dict[str, Any]:
    """Non-default init fields of a dataclass component (what YAML needs to rebuild it)."""
    if not dataclasses.is_dataclass(obj):
        return {}
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        if not f.init:
            continue
        value = getattr(obj, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        if f.default_factory is not dataclasses.MISSING and value == f.default_factory():
            continue
        out[f.name] = value
    return out


class Pipeline:
    """Parsers, embedders, a store, and optionally a reranker and a generator.

    Build it from YAML (:meth:`from_yaml`) or in Python::

        from ragnest import Pipeline
        from ragnest.parsers.pdf import PdfParser
        from ragnest.embedders.bm25 import Bm25Embedder
        from ragnest.stores.qdrant import QdrantStore
        from ragnest.generators.extractive import ExtractiveGenerator

        rag = Pipeline(parsers=[PdfParser()], embedders={"bm25": Bm25Embedder()},
                       store=QdrantStore(path="./.ragnest"), generator=ExtractiveGenerator())
        rag.ingest(["manuals/"])
        print(rag.query("how do I reset the device?").text)
    """

    def __init__(
        self,
        *,
        parsers: Sequence[Parser],
        embedders: Mapping[str, Embedder],
        store: Store,
        generator: Generator | None = None,
        reranker: Reranker | None = None,
        retrieval: RetrievalConfig | None = None,
        ingest: IngestConfig | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        if not parsers:
            raise ConfigError("a pipeline needs at least one parser")
        if not embedders:
            raise ConfigError("a pipeline needs at least one embedder")
        for key in embedders:
            if not key or "-" in key or not key.replace("_", "").isalnum():
                raise ConfigError(
                    f"embedder name {key!r}: use letters, digits and '_' (it prefixes vector names)"
                )
        self.parsers = list(parsers)
        self.embedders = dict(embedders)
        self.store = store
        self.generator = generator
        self.reranker = reranker
        self.retrieval = retrieval or RetrievalConfig()
        self.ingest_config = ingest or IngestConfig()
        for name in self.retrieval.weights:
            if name not in self.embedders:
                raise ConfigError(f"retrieval.weights names {name!r}, which is not an embedder")
        self._names = dict(names or {})
        self._meta: dict[str, Any] = {}
        self._store_open = False
        self._fitted_saved: set[str] = set()

    # ------------------------------------------------------------------ building
    @classmethod
    def from_config(cls, config: PipelineConfig, *, allow_import_paths: bool = False) -> Pipeline:
        """Build every component named by a validated :class:`PipelineConfig`."""
        built: dict[str, Any] = {}

        def get(name: str) -> Any:
            if name not in built:
                comp = config.components[name]
                built[name] = registry.create(
                    comp.type,
                    comp.params,
                    where=f"components.{name}",
                    allow_import_paths=allow_import_paths,
                )
            return built[name]

        names = {}
        parsers = []
        for n in config.parsers:
            parsers.append(get(n))
            names[f"parser:{id(built[n])}"] = n
        embedders = {n: get(n) for n in config.embedders}
        store = get(config.store)
        names[f"store:{id(store)}"] = config.store
        generator = get(config.generator) if config.generator else None
        if generator is not None:
            names[f"generator:{id(generator)}"] = config.generator  # type: ignore[assignment]
        reranker = get(config.reranker) if config.reranker else None
        if reranker is not None:
            names[f"reranker:{id(reranker)}"] = config.reranker  # type: ignore[assignment]
        pipe = cls(
            parsers=parsers,
            embedders=embedders,
            store=store,
            generator=generator,
            reranker=reranker,
            retrieval=dataclasses.replace(config.retrieval),
            ingest=dataclasses.replace(config.ingest),
            names=names,
        )
        pipe._meta = {"name": config.name, "description": config.description}
        return pipe

    @classmethod
    def from_yaml(
        cls,
        name_or_path: str | os.PathLike[str] = "lite",
        *,
        profile: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        allow_import_paths: bool = False,
    ) -> Pipeline:
        """Load a pipeline YAML (a path, or a shipped name such as ``"lite"``)."""
        config = load_config(
            name_or_path,
            profile=profile,
            env=env,
            overrides=overrides,
            allow_import_paths=allow_import_paths,
        )
        return cls.from_config(config, allow_import_paths=allow_import_paths)

    def _name(self, role: str, obj: Any, default: str) -> str:
        return self._names.get(f"{role}:{id(obj)}", default)

    def to_config(self) -> PipelineConfig:
        """The configuration that rebuilds this pipeline (derived from component fields)."""
        components: dict[str, ComponentConfig] = {}

        def add(name: str, obj: Any) -> str:
            type_name = registry.type_name_of(obj)
            if type_name is None:
                cls = type(obj)
                type_name = f"{cls.__module__}:{cls.__qualname__}"
            components[name] = ComponentConfig(type=type_name, params=_component_params(obj))
            return name

        parsers = [
            add(self._name("parser", p, f"parser_{i}"), p) for i, p in enumerate(self.parsers)
        ]
        embedders = [add(k, e) for k, e in self.embedders.items()]
        store = add(self._name("store", self.store, "store"), self.store)
        generator = (
            add(self._name("generator", self.generator, "generator"), self.generator)
            if self.generator is not None
            else None
        )
        reranker = (
            add(self._name("reranker", self.reranker, "reranker"), self.reranker)
            if self.reranker is not None
            else None
        )
        meta = self._meta
        return PipelineConfig(
            components=components,
            parsers=parsers,
            embedders=embedders,
            store=store,
            generator=generator,
            reranker=reranker,
            retrieval=dataclasses.replace(self.retrieval),
            ingest=dataclasses.replace(self.ingest_config),
            name=meta.get("name"),
            description=meta.get("description"),
        )

    # ------------------------------------------------------------------ lifecycle
    def _components(self) -> list[Any]:
        comps: list[Any] = [*self.parsers, *self.embedders.values(), self.store]
        comps += [c for c in (self.reranker, self.generator) if c is not None]
        return comps

    def warm_up(self) -> None:
        """Load every component's heavy state and open the store."""
        for comp in self._components():
            if hasattr(comp, "warm_up"):
                comp.warm_up()
        self._open_store()

    def close(self) -> None:
        """Release every component (the store is flushed and unlocked)."""
        for comp in reversed(self._components()):
            if hasattr(comp, "close"):
                try:
                    comp.close()
                except Exception:  # pragma: no cover - close must not mask other errors
                    logger.warning("closing %r failed", comp, exc_info=True)
        self._store_open = False

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def vector_specs(self) -> list[VectorSpec]:
        """The store's named vectors: ``<embedder name>-<level name>`` for every level."""
        specs = []
        for key, emb in self.embedders.items():
            specs += [replace(s, name=f"{key}-{s.name}") for s in emb.vector_specs()]
        return specs

    def identity(self) -> dict[str, Any]:
        """What the store records to refuse a different embedder later."""
        return {key: emb.identity() for key, emb in self.embedders.items()}

    def _fitted(self) -> dict[str, FittedEmbedder]:
        return {k: e for k, e in self.embedders.items() if isinstance(e, FittedEmbedder)}

    def _open_store(self) -> None:
        if not self._store_open:
            self.store.open(self.vector_specs(), self.identity())
            self._fitted_saved = set()
            for key, emb in self._fitted().items():
                state = self.store.fitted_state(key)
                emb.load_fitted_state(state)
                if state is not None:
                    self._fitted_saved.add(key)
            self._store_open = True

    def _save_fitted(self) -> None:
        """Store state an embedder fitted, before any vector made with it is written."""
        for key, emb in self._fitted().items():
            if key in self._fitted_saved:
                continue
            state = emb.fitted_state()
            if state is not None:
                self.store.save_fitted_state(key, state)
                self._fitted_saved.add(key)

    # ------------------------------------------------------------------ ingest
    def _pick_parser(self, source: Source) -> Parser | None:
        from ragnest.media.sniff import sniff

        kind = sniff(source)
        wanted = {"pdf": ".pdf", "png": ".png", "jpeg": ".jpg", "tiff": ".tiff", "webp": ".webp"}
        suffix = wanted.get(kind or "", source.suffix)
        for parser in self.parsers:
            if suffix in parser.extensions:
                return parser
        if kind in ("pdf", "png", "jpeg", "tiff", "webp", "zip"):
            return None  # binary of a known type no parser reads: never feed it to a text parser
        if kind == "text" and not source.suffix:
            for parser in self.parsers:
                if ".txt" in parser.extensions:
                    return parser
        return None

    def _embed(self, chunks: Sequence[Chunk]) -> dict[str, dict[str, Vector]]:
        vectors: dict[str, dict[str, Vector]] = {c.id: {} for c in chunks}
        if not chunks:
            return vectors
        for key, emb in self.embedders.items():
            if isinstance(emb, FittedEmbedder) and emb.needs_fit:
                emb.fit(chunks)  # a collection without fitted state: fit on its first batch
            out = emb.embed_documents(chunks)
            if len(out) != len(chunks):
                raise RagnestError(
                    f"embedder {key!r} returned {len(out)} results for {len(chunks)} chunks"
                )
            for chunk, levels in zip(chunks, out):
                for level, vec in levels.items():
                    vectors[chunk.id][f"{key}-{level}"] = vec
        self._save_fitted()  # before the caller writes any vector made with it
        return vectors

    def _prepare(self, source: Source) -> tuple[Parser, str] | DocumentReport:
        """Checks before parsing: the parser to use and the file's fingerprint, or the
        report of an unchanged document (raises :class:`ParseError` for unusable files)."""
        self._open_store()
        name = source.display_name
        if source.data is None and source.path is not None:
            if Path(source.path).stat().st_size == 0:
                raise ParseError(name, "file is empty (0 bytes)")
        elif source.data is not None and not source.data:
            raise ParseError(name, "file is empty (0 bytes)")
        parser = self._pick_parser(source)
        if parser is None:
            raise ParseError(name, f"unsupported file type {source.suffix or '(no extension)'!r}")
        doc_id = source.document_id
        fingerprint = source.fingerprint()
        if self.store.document_fingerprint(doc_id) == fingerprint:
            ids = self.store.chunk_ids(doc_id)
            return DocumentReport(name, doc_id, self._stored_pages(ids), 0, len(ids), 0, "unchanged")
        return parser, fingerprint

    def _write(self, source: Source, chunks: list[Chunk], fingerprint: str) -> DocumentReport:
        """Embed (batch by batch) and store one parsed document."""
        name = source.display_name
        if not chunks:
            raise ParseError(name, "no content could be extracted")
        doc_id = source.document_id
        existing = self.store.chunk_ids(doc_id)

        def embed(batch: Sequence[Chunk]) -> dict[str, dict[str, Vector]]:
            try:
                return self._embed(batch)
            except RagnestError:
                raise
            except Exception as err:
                raise ParseError(name, f"embedding failed: {type(err).__name__}: {err}") from err

        step = max(1, self.ingest_config.batch_size)
        with self.store.begin(doc_id, [c.id for c in chunks], fingerprint=fingerprint) as tx:
            need = set(tx.missing)
            new = [c for c in chunks if c.id in need]
            for start in range(0, len(new), step):
                batch = new[start : start + step]
                vectors = embed(batch)
                tx.add([EmbeddedChunk(chunk=c, vectors=vectors[c.id]) for c in batch])
            result = tx.commit()
        pages = len({p for c in chunks for p in (c.pages or ((c.page,) if c.page else ()))})
        status = "added" if not existing else "updated"
        if result.added == 0 and result.removed == 0:
            status = "unchanged"
        return DocumentReport(
            name, doc_id, pages, result.added, result.unchanged, result.removed, status
        )

    def ingest_source(self, source: Source) -> DocumentReport:
        """Ingest one source in this process; raises :class:`ParseError` (naming the file)."""
        prepared = self._prepare(source)
        if isinstance(prepared, DocumentReport):
            return prepared
        parser, fingerprint = prepared
        return self._write(source, parse_all(parser, source), fingerprint)

    def _stored_pages(self, ids: set[str]) -> int:
        getter = getattr(self.store, "get", None)
        if not ids or getter is None:
            return 0
        chunks = getter(sorted(ids)[:1])
        if chunks and chunks[0].metadata.get("page_count"):
            return int(chunks[0].metadata["page_count"])
        return len(ids) if chunks and chunks[0].kind == "page" else 0

    def ingest(
        self,
        paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        progress: bool = True,
        on_file: ProgressCallback | None = None,
        workers: int | None = None,
    ) -> IngestReport:
        """Ingest files and folders; one bad file never stops the others.

        Re-ingesting an unchanged file is a no-op; a changed file replaces its old
        chunks (new ones are written before stale ones are removed). ``workers``
        parser processes (default: ``pipeline.ingest.workers``; 0 = one per CPU)
        parse files, and page ranges of big PDFs, in parallel; embedding and writing
        stay in this process, in file order.
        """
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        start = time.perf_counter()
        files, skipped = discover(paths)
        report = IngestReport(skipped=list(skipped))
        self._open_store()
        bar = None
        if progress and on_file is None and files:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(files), desc="ingest", unit="file")

        def done(path: str, status: str) -> None:
            if on_file is not None:
                on_file(path, status)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(pages=report.pages, chunks=report.chunks_added, refresh=False)

        def skip(path: str, reason: str, exc_info: bool = False) -> None:
            report.skipped.append(SkippedFile(path, reason))
            logger.warning("skipped %s: %s", path, reason, exc_info=exc_info)
            done(path, "skipped")

        fingerprints: dict[str, str] = {}

        def jobs() -> Iterator[tuple[Source, Parser]]:
            for path in files:
                source = Source.from_path(path)
                try:
                    prepared = self._prepare(source)
                except ParseError as err:
                    skip(str(path), err.reason)
                    continue
                except (RagnestError, KeyboardInterrupt):
                    raise
                except Exception as err:
                    skip(str(path), f"{type(err).__name__}: {err}", exc_info=True)
                    continue
                if isinstance(prepared, DocumentReport):
                    report.documents.append(prepared)
                    done(str(path), prepared.status)
                    continue
                fingerprints[source.document_id] = prepared[1]
                yield source, prepared[0]

        config = self.ingest_config
        pool = ParsePool(workers=config.workers if workers is None else workers,
                         split_pages=config.split_pages)
        try:
            for source, chunks, error in pool.map(jobs()):
                path = source.path or source.display_name
                if error is not None:
                    skip(path, error.reason)
                    continue
                try:
                    doc = self._write(source, chunks, fingerprints.pop(source.document_id))
                except ParseError as err:
                    skip(path, err.reason)
                except (StoreLockedError, KeyboardInterrupt):
                    raise
                except Exception as err:
                    skip(path, f"{type(err).__name__}: {err}", exc_info=True)
                else:
                    report.documents.append(doc)
                    done(path, doc.status)
        finally:
            pool.close()
            if bar is not None:
                bar.close()
            optimize = getattr(self.store, "optimize", None)
            if optimize is not None and report.chunks_added:
                optimize()
        report.seconds = time.perf_counter() - start
        return report

    def delete(self, path_or_document_id: str | os.PathLike[str]) -> int:
        """Remove one document (by its file path or document id); returns chunks removed."""
        self._open_store()
        key = str(path_or_document_id)
        doc_id = key if not os.path.exists(key) else Source.from_path(key).document_id
        return self.store.delete_document(doc_id)

    def stats(self) -> dict[str, Any]:
        """What the store holds (chunks, documents, backend)."""
        self._open_store()
        return self.store.stats()

    # ------------------------------------------------------------------ query
    def _stage_limits(self, key: str, specs: Sequence[VectorSpec], last: int,
                      budgets: Mapping[str, int]) -> list[int]:
        limits = [0] * len(specs)
        nxt = last
        for i in range(len(specs) - 1, -1, -1):
            name = specs[i].name
            given = budgets.get(f"{key}-{name}", budgets.get(name))
            if i == len(specs) - 1:
                limits[i] = max(int(given), 1) if given else last
            else:
                limits[i] = max(int(given), 1) if given else nxt * 4
            nxt = limits[i]
        return limits

    def _as_query(self, query: str | Query, filters: Mapping[str, Any] | None) -> Query:
        if isinstance(query, Query):
            if filters is not None:
                query = replace(query, filters=dict(filters))
            return query
        if isinstance(query, str):
            return Query(text=query, filters=dict(filters) if filters else None)
        raise TypeError(f"query must be a str or a ragnest.Query, not {type(query).__name__}")

    def _routes(self, q: Query, last: int, budgets: Mapping[str, int],
                using: Sequence[str] | None) -> list[Route]:
        routes: list[Route] = []
        for key, emb in self.embedders.items():
            if using is not None and key not in using:
                continue
            qvecs = emb.embed_query(q)
            if not qvecs:
                continue
            specs = [s for s in emb.vector_specs() if s.name in qvecs]
            limits = self._stage_limits(key, specs, last, budgets)
            stages = tuple(
                Stage(vector=f"{key}-{s.name}", query=qvecs[s.name], limit=lim)
                for s, lim in zip(specs, limits)
            )
            routes.append(Route(name=key, stages=stages, weight=self.retrieval.weights.get(key, 1.0)))
        return routes

    @staticmethod
    def _ocr_query(image: ImageRef) -> str:
        """The text in a query image (RapidOCR), for pipelines that only read text."""
        from ragnest.media.ocr import get_engine
        from ragnest.media.render import render_array

        engine = get_engine()
        engine.warm_up()
        text = engine.text(render_array(image, max_pixels=16_000_000))
        logger.debug("image query read by OCR: %r", text[:200])
        return text

    def retrieve(
        self,
        query: str | Query,
        *,
        k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        budgets: Mapping[str, int] | None = None,
        using: Sequence[str] | None = None,
        fusion: str | None = None,
    ) -> list[Hit]:
        """The top ``k`` hits for a query: every embedder's funnel, fused, then reranked.

        ``budgets`` overrides per-stage candidate limits for this query (keys: vector or
        level names); ``using`` restricts retrieval to some embedders (by name).
        """
        q = self._as_query(query, filters)
        self._open_store()
        k = k or self.retrieval.k
        budgets = {**self.retrieval.budgets, **(budgets or {})}
        pool = max(k, self.retrieval.rerank_k or 0) if self.reranker else k
        last = max(pool, self.retrieval.candidates)
        if q.image is not None and not q.text and self.retrieval.image_ocr:
            # Text embedders read the words in the image; image embedders read its pixels.
            text = self._ocr_query(q.image)
            if text:
                q = replace(q, text=text)
        routes = self._routes(q, last, budgets, using)
        if not routes and q.image is not None and not q.text:
            logger.info("image query: no text found in it and no embedder reads its pixels")
            if self.retrieval.image_ocr:
                return []
        if not routes:
            what = "image" if q.image is not None and not q.text else "this"
            raise RagnestError(
                f"no embedder in this pipeline reads {what} query "
                f"(embedders: {', '.join(self.embedders)})"
            )
        request = SearchRequest(
            routes=tuple(routes),
            limit=pool,
            filters=q.filters,
            fusion=fusion or self.retrieval.fusion,  # type: ignore[arg-type]
            fusion_k=self.retrieval.fusion_k,
        )
        hits = self.store.search(request)
        if self.reranker is not None and hits:
            hits = self.reranker.rerank(q, hits, top_k=k)
        return hits[:k]

    def query(
        self,
        query: str | Query,
        *,
        k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        budgets: Mapping[str, int] | None = None,
    ) -> Answer:
        """Retrieve, then answer with citations (hits only when there is no generator)."""
        q = self._as_query(query, filters)
        hits = self.retrieve(q, k=k, budgets=budgets)
        if self.generator is None:
            return Answer(text="", hits=tuple(hits), found=bool(hits))
        return self.generator.generate(q, hits)

    @staticmethod
    def image_query(path: str | os.PathLike[str], text: str | None = None) -> Query:
        """A query made of an image file (and optional text)."""
        p = Path(path)
        if not p.is_file():
            raise RagnestError(f"{p}: no such image file")
        return Query(text=text, image=ImageRef(blob=str(p.absolute())))

    def __repr__(self) -> str:
        return (
            f"Pipeline(parsers={[type(p).__name__ for p in self.parsers]}, "
            f"embedders={list(self.embedders)}, store={type(self.store).__name__}, "
            f"generator={type(self.generator).__name__ if self.generator else None})"
        )
