"""The pipeline: a thin facade over :mod:`ragnest.ingest` and :mod:`ragnest.retrieval`.

parse -> embed -> store on ingest; embed -> funnel search -> rerank -> generate on query.

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

import asyncio
import dataclasses
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ragnest import registry, steps
from ragnest.collection import (
    bind_embedder,
    check_embedder_names,
    collection_identity,
    collection_specs,
    fitted_embedders,
    open_collection,
)
from ragnest.config import (
    ComponentConfig,
    IngestConfig,
    PipelineConfig,
    RetrievalConfig,
    load_config,
)
from ragnest.errors import ConfigError
from ragnest.ingest import (
    DocumentReport,
    IngestReport,
    delete_documents,
    fit_embedders,
    ingest_source,
    run_ingest,
    run_sync,
    sample_chunks,
)
from ragnest.ingest.run import ProgressCallback
from ragnest.protocols import (
    Component,
    Embedder,
    Generator,
    Parser,
    Reranker,
    Store,
    StoreAdmin,
)
from ragnest.retrieval import Retriever, as_query, image_query
from ragnest.retrieval.answer import answer_retrieval, stream_retrieval
from ragnest.retrieval.planner import check_weights
from ragnest.types import (
    Answer,
    AnswerDelta,
    Chunk,
    Chunks,
    EmbeddedChunks,
    Fusion,
    Hit,
    Hits,
    Query,
    Source,
    VectorSpec,
)

__all__ = ["Pipeline"]

logger = logging.getLogger(__name__)


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

    The work happens in library functions a Ray job, a server or an evaluation loop
    call directly: :func:`ragnest.ingest.run_ingest`, :class:`ragnest.retrieval.Retriever`,
    :func:`ragnest.collection.open_collection`.
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
        check_embedder_names(embedders)
        self.parsers = list(parsers)
        self.embedders = dict(embedders)
        self.store = store
        self.generator = generator
        self.reranker = reranker
        self.retrieval = retrieval or RetrievalConfig()
        self.ingest_config = ingest or IngestConfig()
        check_weights(self.retrieval, self.embedders)
        bind_embedder(generator, self.embedders)  # a generator that asks for an embedder gets it
        self._names = dict(names or {})
        self._meta: dict[str, Any] = {}
        self._open = False
        self._retriever: Retriever | None = None

    # ------------------------------------------------------------------ building
    @classmethod
    def from_config(cls, config: PipelineConfig, *, allow_import_paths: bool = False) -> Pipeline:
        """Build every component named by a validated :class:`PipelineConfig`."""
        built: dict[str, Any] = {}

        def get(name: str) -> Any:
            if name not in built:
                comp = config.components[name]
                built[name] = registry.create(comp.type, comp.params,
                                              where=config.params_where(name),
                                              allow_import_paths=allow_import_paths)
            return built[name]

        names: dict[str, str] = {}

        def named(role: str, name: str | None) -> Any:
            if name is None:
                return None
            obj = get(name)
            names[f"{role}:{id(obj)}"] = name
            return obj

        pipe = cls(
            parsers=[named("parser", n) for n in config.parsers],
            embedders={n: get(n) for n in config.embedders},
            store=named("store", config.store),
            generator=named("generator", config.generator),
            reranker=named("reranker", config.reranker),
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
        config = load_config(name_or_path, profile=profile, env=env, overrides=overrides,
                             allow_import_paths=allow_import_paths)
        return cls.from_config(config, allow_import_paths=allow_import_paths)

    def to_config(self) -> PipelineConfig:
        """The configuration that rebuilds this pipeline (derived from component fields)."""
        components: dict[str, ComponentConfig] = {}

        def add(role: str, obj: Any, default: str) -> str | None:
            if obj is None:
                return None
            name = self._names.get(f"{role}:{id(obj)}", default)
            type_name = registry.type_name_of(obj)
            if type_name is None:
                type_name = f"{type(obj).__module__}:{type(obj).__qualname__}"
            components[name] = ComponentConfig(type=type_name, params=_component_params(obj))
            return name

        parsers = [add("parser", p, f"parser_{i}") for i, p in enumerate(self.parsers)]
        embedders = [add("embedder", e, k) for k, e in self.embedders.items()]
        return PipelineConfig(
            components=components,
            parsers=[p for p in parsers if p],
            embedders=[e for e in embedders if e],
            store=add("store", self.store, "store") or "store",
            generator=add("generator", self.generator, "generator"),
            reranker=add("reranker", self.reranker, "reranker"),
            retrieval=dataclasses.replace(self.retrieval),
            ingest=dataclasses.replace(self.ingest_config),
            name=self._meta.get("name"),
            description=self._meta.get("description"),
        )

    # ------------------------------------------------------------------ lifecycle
    def _components(self) -> list[Any]:
        comps: list[Any] = [*self.parsers, *self.embedders.values(), self.store]
        return comps + [c for c in (self.reranker, self.generator) if c is not None]

    def warm_up(self) -> None:
        """Load every component's heavy state and open the store."""
        for comp in self._components():
            if isinstance(comp, Component):
                comp.warm_up()
        self.open()

    def open(self, *, write: bool = False) -> None:
        """Open the store's collection for these embedders and load their fitted state
        (idempotent; every method calls it); ``write``: take the store's writer lock now."""
        if write and isinstance(self.store, StoreAdmin):
            self.store.prepare_write()
        if not self._open:
            open_collection(self.store, self.embedders)
            self._open = True

    def close(self) -> None:
        """Release every component (the store is flushed and unlocked)."""
        if self._retriever is not None:
            self._retriever.close()
            self._retriever = None
        for comp in reversed(self._components()):
            if isinstance(comp, Component):
                try:
                    comp.close()
                except Exception:  # pragma: no cover - close must not mask other errors
                    logger.warning("closing %r failed", comp, exc_info=True)
        self._open = False

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def vector_specs(self) -> list[VectorSpec]:
        """The store's named vectors: ``<embedder name>-<level name>`` for every level."""
        return collection_specs(self.embedders)

    def identity(self) -> dict[str, Any]:
        """What the store records to refuse a different embedder later."""
        return collection_identity(self.embedders)

    # ------------------------------------------------------------------ ingest
    def fit(
        self,
        sample: Iterable[str | os.PathLike[str]] | Sequence[Chunk] | str | os.PathLike[str],
        *,
        max_chunks: int = 2000,
        seed: int = 0,
    ) -> list[str]:
        """Fit corpus-fitted state (a ``rotation: pca``) on a sample and store it with the
        collection, before any ingest; later pipelines, processes and workers load it.

        ``sample``: files and folders (parsed here; at most ``max_chunks`` chunks are
        drawn from them, spread over the documents) or chunks. Embedders that already
        hold state (stored with the collection) are left as they are. Returns the names
        of the embedders fitted.
        """
        self.open(write=True)
        chunks = sample_chunks(sample, self.parsers, config=self.ingest_config,
                               max_chunks=max_chunks, seed=seed)
        if not fitted_embedders(self.embedders):
            logger.info("no embedder of this pipeline fits corpus state; nothing to fit")
        return fit_embedders(self.store, self.embedders, chunks)

    def ingest(
        self,
        paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        progress: bool = True,
        on_file: ProgressCallback | None = None,
        workers: int | str | None = None,
    ) -> IngestReport:
        """Ingest files and folders; one bad file never stops the others.

        Re-ingesting an unchanged file is a no-op; a changed file replaces its old
        chunks (new ones are written before stale ones are removed). ``workers``
        parser processes (default: ``pipeline.ingest.workers``, "auto"; 0 = one per CPU)
        parse files, and page ranges of big PDFs, in parallel; embedding and writing
        stay in this process, in file order. A broken store stops the ingest with its
        :class:`~ragnest.errors.StoreError` (``err.report`` says what was committed).
        """
        self.open(write=True)
        return run_ingest(paths, parsers=self.parsers, embedders=self.embedders,
                          store=self.store, config=self.ingest_config, workers=workers,
                          progress=progress, on_file=on_file)

    def ingest_source(self, source: Source) -> DocumentReport:
        """Ingest one source in this process; raises :class:`ParseError` (naming the file)."""
        self.open(write=True)
        return ingest_source(source, parsers=self.parsers, embedders=self.embedders,
                             store=self.store, batch_size=self.ingest_config.batch_size)

    def sync(
        self,
        roots: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        dry_run: bool = False,
        progress: bool = True,
        on_file: ProgressCallback | None = None,
        workers: int | str | None = None,
    ) -> IngestReport:
        """Make the store match the files under ``roots``: ingest new and changed files,
        re-point moved ones (nothing re-embedded), remove documents under the roots whose
        files are gone (``report.removed``); documents outside the roots are never removed.
        ``dry_run`` reports the plan and changes nothing. See :mod:`ragnest.ingest.lifecycle`.
        """
        self.open(write=True)
        return run_sync(roots, parsers=self.parsers, embedders=self.embedders,
                        store=self.store, config=self.ingest_config, workers=workers,
                        progress=progress, on_file=on_file, dry_run=dry_run)

    def delete(self, *paths_or_ids: str | os.PathLike[str]) -> int:
        """Remove documents by file path (present or gone), folder (everything stored
        under it) or document id; returns the chunks removed. A target naming nothing
        stored raises :class:`~ragnest.errors.DocumentNotFoundError` and nothing is
        removed (:func:`ragnest.ingest.delete_documents` returns the full report)."""
        self.open(write=True)
        return delete_documents(self.store, paths_or_ids).chunks_removed

    def stats(self) -> dict[str, Any]:
        """What the store holds (chunks, documents, backend)."""
        self.open()
        return self.store.stats()

    # ------------------------------------------------------------------ query
    @property
    def retriever(self) -> Retriever:
        """The :class:`~ragnest.retrieval.Retriever` this pipeline queries with."""
        self.open()
        r = self._retriever
        if r is None or r.reranker is not self.reranker or r.config is not self.retrieval:
            if r is not None:  # a component was swapped: build anew
                r.close()
            self._retriever = r = Retriever(self.embedders, self.store, self.retrieval,
                                            reranker=self.reranker)
        return r

    def retrieve(
        self,
        query: str | Query,
        *,
        k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        budgets: Mapping[str, int] | None = None,
        using: Sequence[str] | None = None,
        fusion: Fusion | None = None,
        explain: bool = False,
    ) -> Hits:
        """The top ``k`` hits for a query: every embedder's funnel, fused, then reranked
        (a list of :class:`~ragnest.types.Hit` that displays in notebooks).

        ``budgets`` overrides per-stage candidate limits for this query (keys: vector or
        level names); ``using`` restricts retrieval to some embedders (by name);
        ``explain`` adds each hit's score at every dense/multi-vector stage to
        ``scores_by_stage`` (off by default: it costs a fetch of the hits' vectors).
        """
        return self.retriever.retrieve(query, k=k, filters=filters, budgets=budgets,
                                       using=using, fusion=fusion, explain=explain)

    def retrieve_many(self, queries: Sequence[str | Query], **kwargs: Any) -> list[Hits]:
        """:meth:`retrieve` for many queries at once (keywords as there, ``filters`` for
        all of them): one embedding batch and one store batch, the same hits as
        ``[rag.retrieve(q) for q in queries]``; for evaluation loops and servers."""
        return self.retriever.retrieve_many(queries, **kwargs)

    def query(
        self,
        query: str | Query,
        *,
        k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        budgets: Mapping[str, int] | None = None,
        explain: bool = False,
    ) -> Answer:
        """Retrieve, then answer with citations (hits only when there is no generator).
        ``answer.timings`` holds seconds per step; ``explain`` as :meth:`retrieve`."""
        result = self.retriever.run(as_query(query, filters), k=k, budgets=budgets,
                                    explain=explain)
        return answer_retrieval(result, self.generator, self.embedders)

    def stream(
        self,
        query: str | Query,
        *,
        k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        budgets: Mapping[str, int] | None = None,
        explain: bool = False,
    ) -> Iterator[AnswerDelta]:
        """:meth:`query`, yielding the answer as it is generated (one delta for a
        generator that does not stream); the last delta carries the :class:`Answer`."""
        result = self.retriever.run(as_query(query, filters), k=k, budgets=budgets,
                                    explain=explain)
        yield from stream_retrieval(result, self.generator, self.embedders)

    async def aingest(self, paths: Any, **kwargs: Any) -> IngestReport:
        """:meth:`ingest` in a worker thread."""
        return await asyncio.to_thread(self.ingest, paths, **kwargs)

    async def aretrieve(self, query: str | Query, **kwargs: Any) -> Hits:
        """:meth:`retrieve` in a worker thread."""
        return await asyncio.to_thread(self.retrieve, query, **kwargs)

    async def aquery(self, query: str | Query, **kwargs: Any) -> Answer:
        """:meth:`query` in a worker thread."""
        return await asyncio.to_thread(self.query, query, **kwargs)

    @staticmethod
    def image_query(path: str | os.PathLike[str], text: str | None = None) -> Query:
        """A query made of an image file (and optional text)."""
        return image_query(str(path), text)

    def __repr__(self) -> str:
        return (
            f"Pipeline(parsers={[type(p).__name__ for p in self.parsers]}, "
            f"embedders={list(self.embedders)}, store={type(self.store).__name__}, "
            f"generator={type(self.generator).__name__ if self.generator else None})"
        )

    # ---- step by step (notebooks): each result displays in a notebook; see ragnest.steps
    def parse(self, document: str | os.PathLike[str] | Source, *, progress: bool = True) -> Chunks:
        """Step 1: the chunks of one file, parsed here; nothing is stored."""
        return steps.parse(document, self.parsers, progress=progress)

    def embed(self, chunks: Sequence[Chunk], *, progress: bool = True) -> EmbeddedChunks:
        """Step 2: every embedder's vectors for one document's chunks (from :meth:`parse`)."""
        self.open()
        return steps.embed(chunks, self.embedders, store=self.store, progress=progress,
                           batch_size=self.ingest_config.batch_size)

    def write(self, points: EmbeddedChunks) -> DocumentReport:
        """Step 3: store one document's embedded chunks (from :meth:`embed`)."""
        self.open(write=True)
        return steps.write(self.store, points)

    def search(self, query: str | Query, *, k: int | None = None, **kwargs: Any) -> Hits:
        """Step 4: funnel search + fusion without the reranker (``k`` defaults to the
        reranker's pool); keywords as :meth:`retrieve`."""
        self.open()
        return steps.search(query, self.embedders, self.store, self.retrieval, k=k,
                            pool=self.reranker is not None, **kwargs)

    def rerank(self, query: str | Query, hits: Sequence[Hit], *, top_k: int | None = None,
               reranker: Reranker | None = None) -> Hits:
        """Step 5: ``hits`` re-scored by the pipeline's reranker (or ``reranker``)."""
        return steps.rerank(query, hits, reranker or self.reranker, top_k=top_k or self.retrieval.k)

    def answer(self, query: str | Query, hits: Sequence[Hit], *,
               generator: Generator | None = None) -> Answer:
        """Step 6: the generator's (or ``generator``'s) answer from ``hits``, citing pages."""
        return steps.answer(query, hits, bind_embedder(generator or self.generator, self.embedders))
