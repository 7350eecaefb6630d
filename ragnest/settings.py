"""How retrieval and ingest run: the ``retrieval`` and ``ingest`` sections of a pipeline
file as dataclasses, checked like component parameters (re-exported by
:mod:`ragnest.config`)::

    >>> from ragnest.settings import RetrievalConfig
    >>> RetrievalConfig(k=3, weights={"bm25": 0.5}).k
    3
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from ragnest._validate import AtLeast, validate_params
from ragnest.types import Fusion

__all__ = ["IngestConfig", "RetrievalConfig"]


@dataclass(kw_only=True)
class RetrievalConfig:
    """How retrieval runs.

    ``k``: hits returned. ``candidates``: hits each route hands to fusion (and the
    reranker). ``fusion``: ``relative`` (normalised score sum), ``rrf`` or ``dbsf``
    (:data:`ragnest.types.FUSIONS`).
    ``weights``: per embedder name. ``budgets``: candidate limits per stage, keyed
    by vector name (``dense-coarse``) or level name (``coarse``); unset stages keep
    ``4x`` the next stage's limit. ``image_ocr``: an image query is read with OCR
    (RapidOCR) and searched as text too; ``auto`` reads only crops that count as text
    (for pipelines with an image embedder: a figure crop is answered by it, without
    OCR's second); ``False`` makes image queries no embedder reads an error.
    ``image_text``, ``image_mixed``: the share of a crop's ink in glyph-sized marks
    (:func:`ragnest.media.ocr.text_share`) from which it counts as text, or as mixed
    (read by OCR under ``auto`` too; below it: graphics). ``image_weights``: route
    weights by what the crop is (``text``, ``mixed``, ``graphics``), over ``weights``
    for the routes they name. ``image_chars``: about how many characters of a crop's
    text OCR reads for the query, the lines nearest its middle first (``None``: every
    line; a passage's full reading costs ~1 s of CPU, 80 characters ~0.12 s and find its
    page first 94 times in 100). ``candidates_from``: per route, other routes whose
    candidates its last stage scores as well (``{dense: [bm25]}``: the dense funnel's
    fine stage also rescores BM25's top ``candidates`` pages, see
    :attr:`ragnest.types.Route.shared`), so its earlier stages may keep fewer.

    Fields are checked like component parameters (a bad one raises
    :class:`~ragnest.errors.ConfigError`)::

        >>> RetrievalConfig(k=10, fusion="rrf").candidates
        50
        >>> RetrievalConfig(fusion="magic")
        Traceback (most recent call last):
        ...
        ragnest.errors.ConfigError: RetrievalConfig.fusion: 'magic' is not one of 'rrf', 'dbsf', 'relative'
    """

    k: Annotated[int, AtLeast(1)] = 5
    candidates: Annotated[int, AtLeast(1)] = 50
    fusion: Fusion = "relative"
    fusion_k: int = 60
    weights: dict[str, float] = field(default_factory=dict)
    budgets: dict[str, int] = field(default_factory=dict)
    rerank_k: int | None = None
    image_ocr: bool | Literal["auto"] = True
    image_text: Annotated[float, AtLeast(0.0)] = 0.7
    image_mixed: Annotated[float, AtLeast(0.0)] = 0.5
    image_weights: dict[Literal["text", "mixed", "graphics"], dict[str, float]] = field(
        default_factory=dict)
    image_chars: Annotated[int, AtLeast(1)] | None = 80
    candidates_from: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_fields(self)


@dataclass(kw_only=True)
class IngestConfig:
    """How ingest runs.

    ``workers``: parser processes (1 parses in the calling process; more spread
    files, and page ranges of big PDFs, over that many processes; ``0`` means one
    per CPU; ``"auto"``, the default, decides from the CPUs and the corpus size: one
    process for a small corpus (under 1.5 MB with forked workers, 4 MB with spawned
    ones, see :mod:`ragnest.ingest.start`), else one per CPU, see
    :func:`ragnest.ingest.pool.auto_workers`). ``split_pages``: page-range size for
    spreading one big PDF. ``batch_size``: chunks embedded and written at a time.
    ``embed_in_workers``: the parser processes also embed what they parse (embedders
    that allow it, see :func:`ragnest.ingest.embed.portable_embedders`), so the calling
    process only writes; ``auto``: when a CPU is left for the writer (more CPUs than
    workers; on two CPUs with two workers the copies cost more than they save).
    ``engine``: ``local`` (this process and its parse pool) or ``ray`` (a Ray Data job,
    see :mod:`ragnest.distributed`, configured by the ``ray`` mapping: address, actors,
    GPUs per actor, batch sizes).

    >>> IngestConfig(workers=0).batch_size
    64
    >>> IngestConfig().workers
    'auto'
    """

    workers: Annotated[int, AtLeast(0)] | Literal["auto"] = "auto"
    split_pages: Annotated[int, AtLeast(1)] = 100
    batch_size: Annotated[int, AtLeast(1)] = 64
    embed_in_workers: bool | Literal["auto"] = "auto"
    engine: Literal["local", "ray"] = "local"
    ray: dict[str, Any] | None = None  # validated by ragnest.distributed.RayConfig

    def __post_init__(self) -> None:
        _check_fields(self)


def _check_fields(obj: Any) -> None:
    """Validate a config dataclass built in Python with the same rules as its YAML."""
    values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}
    validate_params(type(obj), values, where=type(obj).__name__, noun="key")
