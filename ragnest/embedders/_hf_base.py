"""The shared base of the transformers embedders: configuration, loading on the runtime,
the ladder, the explicit fit, and the query/document plumbing.

Families live in their own modules (:mod:`~ragnest.embedders.late_interaction`,
:mod:`~ragnest.embedders.dse`, :mod:`~ragnest.embedders.dual_encoder`); torch and
transformers are imported by :mod:`ragnest._hf` inside ``warm_up()`` only::

    >>> from ragnest.embedders.late_interaction import ColQwen2Embedder
    >>> emb = ColQwen2Embedder(model="vidore/colqwen2-v1.0-hf")  # nothing loaded yet
    >>> [(s.name, s.kind) for s in emb.vector_specs()]
    [('coarse', 'dense'), ('mid', 'multi'), ('fine', 'multi')]
    >>> emb.needs_fit
    False

A family implements ``_load`` (model and pre-processing on the runtime), ``_dim`` (the
model's vector size), ``_raw_documents`` and ``_raw_queries`` (model output per item
before the ladder, ``None`` where the item has nothing the model reads); the base turns
those outputs into ladder vectors with :class:`~ragnest.ladder.LadderBuilder`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ragnest._hf import (
    HfRuntime,
    LoadedModel,
    check_device,
    check_dtype,
    load_lock,
    render_images,
)
from ragnest.errors import ConfigError
from ragnest.ladder import Ladder, LadderBuilder, TokenRows
from ragnest.media.render import Renderer
from ragnest.types import Chunk, ImageRef, Level, Query, Vector, VectorSpec

__all__ = ["HfEmbedder", "RawOutput"]

logger = logging.getLogger(__name__)

_VERSION = 1

#: One item's model output before the ladder (``None``: nothing the model reads).
RawOutput = TokenRows | np.ndarray | None


@dataclass(kw_only=True)
class HfEmbedder:
    """Shared configuration and machinery of the transformers embedders.

    ``device``: ``auto`` (cuda, else mps, else cpu), ``cpu``, ``cuda[:N]``, ``mps``.
    ``dtype``: ``auto`` (bfloat16 on a cuda device that supports it, else float32),
    ``float32``, ``bfloat16``, ``float16``. ``render_max_pixels`` caps the pixels an
    image is rendered at before the processor sees it. ``rotation: pca`` rotates the
    model's vectors by a PCA fitted on a corpus sample before prefix truncation (for
    models not trained with Matryoshka dims). The rotation is fitted explicitly --
    :meth:`fit` (``Pipeline.fit(sample)``, ``ragnest fit``, or an ingest into a new
    collection, which fits on its first batch) -- and stored with the collection; every
    later embedder loads it (:meth:`load_fitted_state`). Embedding before that is an
    :class:`~ragnest.errors.EmbeddingError`.
    """

    family: ClassVar[str] = ""
    default_ladder: ClassVar[list[dict[str, Any]]] = []
    #: The transformers classes the family loads (checked against transformers in tests).
    transformers_classes: ClassVar[tuple[str, ...]] = ()

    model: str = ""
    ladder: list[dict[str, Any]] = field(default_factory=list)
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 4
    render_max_pixels: int = 4_000_000
    rotation: str = "none"

    def __post_init__(self) -> None:
        name = self.owner
        if not self.model:
            raise ConfigError(f"{name}: 'model' (a hub id or a local path) is required")
        if not self.ladder:
            self.ladder = [dict(d) for d in self.default_ladder]
        self._ladder = Ladder(self.ladder)  # parsed once; bound to the model in warm_up
        check_device(self.device, name)
        check_dtype(self.dtype, name)
        if self.batch_size <= 0 or self.render_max_pixels <= 0:
            raise ConfigError(f"{name}: batch_size and render_max_pixels must be positive")
        if self.rotation not in ("none", "pca"):
            raise ConfigError(f"{name}: rotation must be 'none' or 'pca', got {self.rotation!r}")
        self._check_ladder()
        self._builder = LadderBuilder(self._ladder, rotation=self.rotation, owner=name)  # type: ignore[arg-type]
        self._loaded: LoadedModel | None = None
        self._bound: Ladder | None = None
        self._renderer = Renderer()  # cheap: opens documents only when pages are rendered

    @property
    def owner(self) -> str:
        """The component's registry name, used in every error (``embedder/colqwen2``)."""
        return f"embedder/{self.family}"

    def _check_ladder(self) -> None:
        """Subclasses reject ladders their vectors cannot fill."""

    def _single_levels_only(self) -> None:
        multi = list(self._ladder.multi_levels)
        if multi:
            raise ConfigError(
                f"{self.owner}: this model gives one vector per item; ladder level(s) "
                f"{multi} ask for several (use vectors: 1)"
            )

    # -- lifecycle -------------------------------------------------------------------
    def warm_up(self) -> None:
        """Import torch/transformers, load model and processor (idempotent), bind the
        ladder to the model's dimension."""
        if self._loaded is not None:
            return
        with load_lock():
            if self._loaded is None:
                runtime = HfRuntime.create(device=self.device, dtype=self.dtype, owner=self.owner)
                loaded = self._load(runtime)
                dim = self._dim(loaded)
                bound = self._ladder.bind(dim, owner=self.owner)
                self._builder.check_dim(dim)
                self._bound, self._loaded = bound, loaded

    def close(self) -> None:
        """Drop model and processor (frees GPU memory once nothing else holds them) and
        close the documents this embedder's renderer holds open."""
        loaded, self._loaded = self._loaded, None
        if loaded is not None:
            loaded.close()
        self._renderer.close()

    @property
    def loaded(self) -> LoadedModel:
        """The loaded model, processor and runtime (warms up first): for inspection."""
        self.warm_up()
        assert self._loaded is not None
        return self._loaded

    def _load(self, runtime: HfRuntime) -> LoadedModel:  # pragma: no cover
        raise NotImplementedError

    def _dim(self, loaded: LoadedModel) -> int:  # pragma: no cover
        raise NotImplementedError

    # -- description ------------------------------------------------------------------
    @property
    def levels(self) -> list[Level]:
        """The parsed ladder levels, coarse to fine."""
        return list(self._ladder.levels)

    @property
    def parsed_ladder(self) -> Ladder:
        """The parsed :class:`~ragnest.ladder.Ladder` (bound to the model once warm)."""
        return self._ladder if self._bound is None else self._bound

    def vector_specs(self) -> list[VectorSpec]:
        """One dense or multi vector per ladder level, distance ``dot`` (unit vectors)."""
        return self._ladder.specs(distance="dot")

    def _extra_identity(self) -> dict[str, Any]:
        return {}

    def identity(self) -> dict[str, Any]:
        """Model, family, ladder, version and whatever else changes stored vectors."""
        return {
            "model": self.model,
            "family": self.family,
            "ladder": self._ladder.to_dicts(),
            **({"rotation": self.rotation} if self.rotation != "none" else {}),
            "version": _VERSION,
            **self._extra_identity(),
        }

    # -- fitted state (the ladder's rotation) ------------------------------------------
    @property
    def needs_fit(self) -> bool:
        """True with ``rotation: pca`` while no rotation is fitted or loaded."""
        return self._builder.needs_fit

    def fit(self, chunks: Sequence[Chunk]) -> None:
        """Fit the corpus state (the ``rotation: pca``) on the model rows of ``chunks``,
        replacing any held in memory; nothing to do without ``rotation: pca``.

        One-vector models (DSE, CLIP, SigLIP) give one row per chunk, so the sample needs
        at least as many chunks as the model has dimensions (else an
        :class:`~ragnest.errors.EmbeddingError` says how many).
        """
        if self.rotation != "pca":
            return
        self._builder.fit(self._raw_documents(chunks))

    def fit_rotation(self, chunks: Sequence[Chunk]) -> None:
        """The same as :meth:`fit` (its former name)."""
        self.fit(chunks)

    def fitted_state(self) -> dict[str, Any] | None:
        """The PCA rotation fitted on the corpus (``rotation: pca``), or ``None``."""
        return self._builder.state()

    def load_fitted_state(self, state: Mapping[str, Any] | None) -> None:
        """Restore the rotation stored with the collection (``None``: not fitted yet)."""
        dim = None if self._bound is None else self._bound.model_dim
        self._builder.load_state(state, model_dim=dim)

    # -- embedding --------------------------------------------------------------------
    def _raw_documents(self, chunks: Sequence[Chunk]) -> list[RawOutput]:
        """Model output per chunk before the ladder (``None``: nothing to embed)."""
        raise NotImplementedError  # pragma: no cover

    def _raw_queries(self, queries: Sequence[Query]) -> list[RawOutput]:
        """Model output per query before the ladder (``None``: nothing this model reads)."""
        raise NotImplementedError  # pragma: no cover

    def embed_documents(self, chunks: Sequence[Chunk]) -> list[dict[str, Vector]]:
        """``{level: vector}`` per chunk (``{}`` when the chunk has nothing this model
        reads). Never fits anything: with ``rotation: pca`` and no fitted or loaded
        state this raises :class:`~ragnest.errors.EmbeddingError` before the model runs."""
        if not chunks:
            return []
        self._builder.require_fitted()
        raw = self._raw_documents(chunks)
        return [{} if r is None else dict(self._builder.document(r)) for r in raw]

    def embed_queries(self, queries: Sequence[Query]) -> list[dict[str, Vector] | None]:
        """Every level's query vectors (never pooled), batched through the model;
        ``None`` for a query with nothing this model reads."""
        if not queries:
            return []
        self._builder.require_fitted()
        return [None if r is None else dict(self._builder.query(r)) for r in self._raw_queries(queries)]

    def embed_query(self, query: Query) -> dict[str, Vector] | None:
        """:meth:`embed_queries` for one query."""
        return self.embed_queries([query])[0]

    # -- helpers ----------------------------------------------------------------------
    def _render(self, refs: Sequence[ImageRef], chunks: Sequence[Chunk]) -> list[Any]:
        """PIL images for ``refs`` (``None`` for a ref that cannot be rendered, with a
        warning naming its chunk's file and page)."""
        return render_images(
            refs,
            max_pixels=self.render_max_pixels,
            where=[f"{c.source} p.{c.page}" for c in chunks],
            renderer=self._renderer,
        )

    def _batches(self, items: Sequence[Any]) -> list[Sequence[Any]]:
        return [items[i : i + self.batch_size] for i in range(0, len(items), self.batch_size)]
