"""``RagnestRetriever``: a ragnest pipeline as a LangChain retriever.

Swap it in where an LCEL chain had another retriever::

    from langchain_ragnest import RagnestRetriever

    retriever = RagnestRetriever.from_yaml("lite", env={"RAGNEST_STORE": "./.ragnest"})
    retriever.pipeline.ingest(["manuals/"])
    chain = {"context": retriever | format_docs, "question": RunnablePassthrough()} | prompt | llm

Each ``Document`` is one retrieved chunk: ``page_content`` is its text; ``metadata``
holds ``source``, ``page``, ``bbox``, ``score``, ``chunk_id``, ``scores_by_stage`` (what
every funnel stage, BM25 and fusion scored) and the page or region image as a
reference (``metadata["image"]``: ``uri``, ``mime_type``); the pixels come on demand
(:mod:`langchain_ragnest.images`), or eagerly with ``include_base64=True``.
``k`` is a field and an ``invoke`` keyword, as are ``filters`` and ``budgets``::

    >>> import tempfile
    >>> retriever = RagnestRetriever.from_yaml("lite", env={"RAGNEST_STORE": tempfile.mkdtemp()})
    >>> _ = retriever.pipeline.ingest(["examples/docs"], progress=False)
    >>> docs = retriever.invoke("How often should the machine be descaled?", k=2)
    >>> [(d.metadata["source"].rsplit("/", 1)[-1], d.metadata["page"]) for d in docs][:1]
    [('nimbus3_handbook.pdf', 5)]
    >>> docs[0].metadata["image"]["uri"].endswith("nimbus3_handbook.pdf#page=5")
    True
    >>> retriever.close()
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field, model_validator
from ragnest import Pipeline, Query
from ragnest.types import Hit

from langchain_ragnest.documents import hit_to_document
from langchain_ragnest.images import DEFAULT_MAX_PIXELS, with_image_base64

__all__ = ["RagnestRetriever"]

# Keywords LangChain itself may leave in ``invoke``'s kwargs; they are not search options.
_LANGCHAIN_KWARGS = frozenset({"verbose"})


class RagnestRetriever(BaseRetriever):
    """Retrieves ragnest chunks as LangChain Documents (see the module docs).

    Args:
        pipeline: the ragnest ``Pipeline`` to search, or a shipped pipeline name or
            YAML path (``"lite"``, ``"pipelines/my.yaml"``) loaded with ``env=`` and
            ``profile=`` (also :meth:`from_yaml`).
        k: Documents returned (``None``: the pipeline's ``retrieval.k``).
        filters: payload filters (``{"source": "/docs/a.pdf", "page": {"gte": 3}}``).
        budgets: candidates per funnel stage (``{"coarse": 2000}``).
        using: the pipeline's embedders to search with (default: all).
        explain: every Document's ``scores_by_stage`` also holds its score at each funnel
            stage (``dense-coarse``, ...; off by default: it costs a fetch of vectors).
        image_format: the format image references announce and encode to
            (``jpeg``, ``png``, ``webp``).
        include_base64: render and encode each Document's image now, into
            ``metadata["image"]["base64"]`` (otherwise on demand).
        max_pixels: pixel cap of the encoded images.
    """

    pipeline: Pipeline
    """The ragnest pipeline; a YAML path or shipped name (``"lite"``) is loaded, with
    ``env=`` and ``profile=`` given to the constructor too."""
    k: int | None = Field(default=None, ge=1)
    filters: dict[str, Any] | None = None
    budgets: dict[str, int] | None = None
    using: list[str] | None = None
    explain: bool = False
    image_format: Literal["jpeg", "png", "webp"] = "jpeg"
    include_base64: bool = False
    max_pixels: int = Field(default=DEFAULT_MAX_PIXELS, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _load_pipeline(cls, data: Any) -> Any:
        """``pipeline="lite"`` (or a YAML path) with ``env=``/``profile=``: load it."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        env, profile = data.pop("env", None), data.pop("profile", None)
        source = data.get("pipeline")
        if isinstance(source, (str, os.PathLike)):
            data["pipeline"] = Pipeline.from_yaml(source, env=env, profile=profile)
        elif env is not None or profile is not None:
            raise ValueError("env= and profile= apply to pipeline='<name or YAML path>' only")
        return data

    @classmethod
    def from_yaml(
        cls,
        name_or_path: str | os.PathLike[str] = "lite",
        *,
        env: Mapping[str, str] | None = None,
        profile: str | os.PathLike[str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> RagnestRetriever:
        """A retriever over the pipeline a YAML file (or shipped name) describes;
        ``fields`` set the retriever's own fields (``k=3``, ...)."""
        pipeline = Pipeline.from_yaml(name_or_path, env=env, profile=profile,
                                      overrides=overrides)
        return cls(pipeline=pipeline, **fields)

    def close(self) -> None:
        """Close the pipeline (its store is flushed and unlocked)."""
        self.pipeline.close()

    # ------------------------------------------------------------------ retrieval
    def _search_args(
        self, query: str, k: int | None, filters: Mapping[str, Any] | None,
        budgets: Mapping[str, int] | None, image: str | os.PathLike[str] | None,
        extra: Mapping[str, Any],
    ) -> tuple[str | Query, dict[str, Any]]:
        unknown = sorted(set(extra) - _LANGCHAIN_KWARGS)
        if unknown:
            raise TypeError(
                f"RagnestRetriever.invoke got unexpected keyword arguments {unknown}; it takes "
                "k, filters, budgets and image"
            )
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(f"RagnestRetriever: k={k!r}: expected a positive integer")
        q: str | Query = Pipeline.image_query(image, query or None) if image else query
        args = {
            "k": k if k is not None else self.k,
            "filters": dict(filters) if filters is not None else self.filters,
            "budgets": dict(budgets) if budgets is not None else self.budgets,
            "using": self.using,
            "explain": self.explain,
        }
        return q, args

    def _documents(self, hits: list[Hit]) -> list[Document]:
        docs = [hit_to_document(h, image_format=self.image_format) for h in hits]
        if self.include_base64:
            docs = with_image_base64(docs, format=self.image_format, max_pixels=self.max_pixels)
        return docs

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        budgets: Mapping[str, int] | None = None,
        image: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        q, args = self._search_args(query, k, filters, budgets, image, kwargs)
        return self._documents(self.pipeline.retrieve(q, **args))

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        budgets: Mapping[str, int] | None = None,
        image: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        q, args = self._search_args(query, k, filters, budgets, image, kwargs)
        hits = await self.pipeline.aretrieve(q, **args)
        if self.include_base64:  # rendering and encoding: off the event loop
            return await asyncio.to_thread(self._documents, hits)
        return self._documents(hits)
