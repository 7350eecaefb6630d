"""The component registry: ``"kind/name"`` -> ``"module:Class"``, imported on first use.

Listing imports nothing. Resolving imports the module; when an optional dependency is
missing the error names the extra to install. Third-party packages register their
components under the ``ragnest.components`` entry-point group::

    # in a plugin's pyproject.toml
    [project.entry-points."ragnest.components"]
    "embedder/my-model" = "my_pkg.embed:MyEmbedder"

Usage::

    >>> from ragnest import registry
    >>> "embedder/wordllama" in registry.list_components("embedder")
    True
    >>> store = registry.create("store/qdrant", {"path": "/tmp/ragnest-doc"})
    >>> type(store).__name__
    'QdrantStore'
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from typing import Any

from ragnest import _validate
from ragnest._validate import did_you_mean
from ragnest.errors import ComponentNotFoundError, ConfigError, MissingDependencyError

__all__ = [
    "ComponentEntry",
    "KINDS",
    "ENTRY_POINT_GROUP",
    "register",
    "list_components",
    "resolve",
    "create",
    "type_name_of",
    "validate_params",
]

logger = logging.getLogger(__name__)

KINDS = ("parser", "embedder", "store", "reranker", "generator")
ENTRY_POINT_GROUP = "ragnest.components"


@dataclass(frozen=True)
class ComponentEntry:
    """Where a component lives and which extra its dependencies come from."""

    target: str  # "module:Class"
    extra: str | None = None
    summary: str = ""


_BUILTINS: dict[str, ComponentEntry] = {
    "parser/pdf": ComponentEntry(
        "ragnest.parsers.pdf:PdfParser",
        None,
        "PDF (PyMuPDF): page screenshots or interleaved text/figure/table chunks, OCR fallback",
    ),
    "parser/image": ComponentEntry(
        "ragnest.parsers.image:ImageParser",
        "lite",
        "PNG/JPEG/TIFF/WebP/BMP/GIF images as image chunks with OCR text (RapidOCR)",
    ),
    "parser/office": ComponentEntry(
        "ragnest.parsers.office.parser:OfficeParser",
        "office",
        "DOCX/PPTX/XLSX/HTML/Markdown/EML/EPUB/ODT via unstructured; pages via LibreOffice",
    ),
    "parser/text": ComponentEntry(
        "ragnest.parsers.text:TextParser", None, "Plain text and Markdown, split by headings"
    ),
    "embedder/wordllama": ComponentEntry(
        "ragnest.embedders.wordllama:WordLlamaEmbedder",
        "lite",
        "Offline Matryoshka static embeddings with a multi-vector ladder (WordLlama)",
    ),
    "embedder/bm25": ComponentEntry(
        "ragnest.embedders.bm25:Bm25Embedder", None, "BM25 sparse vectors (Qdrant's built-in model)"
    ),
    "embedder/colqwen2": ComponentEntry(
        "ragnest.embedders.late_interaction:ColQwen2Embedder",
        "hf",
        "ColQwen2 late interaction over page screenshots (multi-vector ladder; transformers)",
    ),
    "embedder/colpali": ComponentEntry(
        "ragnest.embedders.late_interaction:ColPaliEmbedder",
        "hf",
        "ColPali (PaliGemma) late interaction over page screenshots (multi-vector ladder)",
    ),
    "embedder/dse": ComponentEntry(
        "ragnest.embedders.dse:DseEmbedder",
        "hf",
        "DSE: Qwen2-VL page-screenshot embeddings, one Matryoshka vector (last-token pooling)",
    ),
    "embedder/clip": ComponentEntry(
        "ragnest.embedders.dual_encoder:ClipEmbedder",
        "hf",
        "CLIP image/text embeddings: image queries find figures and pages",
    ),
    "embedder/siglip": ComponentEntry(
        "ragnest.embedders.dual_encoder:SiglipEmbedder",
        "hf",
        "SigLIP image/text embeddings: image queries find figures and pages",
    ),
    "embedder/thumbnail": ComponentEntry(
        "ragnest.embedders.thumbnail:ThumbnailEmbedder",
        None,
        "Visual fingerprints of figures/tables/images: finds screenshots of them (no model)",
    ),
    "store/qdrant": ComponentEntry(
        "ragnest.stores.qdrant:QdrantStore",
        None,
        "Qdrant: embedded Edge (path=), server (url=), local mode (location=':memory:')",
    ),
    "reranker/openai": ComponentEntry(
        "ragnest.rerankers.openai:OpenAIReranker",
        "openai",
        "Vision-language yes/no reranker on any OpenAI-compatible server (vLLM, Ollama, OpenAI)",
    ),
    "generator/openai": ComponentEntry(
        "ragnest.generators.openai:OpenAIGenerator",
        "openai",
        "Vision-language answers with [P#] page citations from an OpenAI-compatible server",
    ),
    "reranker/vlm": ComponentEntry(
        "ragnest.rerankers.vlm:VlmReranker",
        "hf",
        "Vision-language reranker: yes/no logits of Qwen2-VL/2.5-VL/3-VL or SmolVLM in one pass",
    ),
    "generator/extractive": ComponentEntry(
        "ragnest.generators.extractive:ExtractiveGenerator",
        None,
        "Answers with cited sentences from the top hits (no model)",
    ),
    "generator/vlm": ComponentEntry(
        "ragnest.generators.vlm:VlmGenerator",
        "hf",
        "Vision-language answers from page images with [P#] citations, a visual-token budget, "
        "streaming (transformers)",
    ),
}

_registry: dict[str, ComponentEntry] = dict(_BUILTINS)
_entry_points_loaded = False


def _check_type_name(type_name: str) -> tuple[str, str]:
    kind, sep, name = type_name.partition("/")
    if not sep or not name or kind not in KINDS:
        raise ConfigError(
            f"component type {type_name!r} must look like 'kind/name' with kind one of "
            f"{', '.join(KINDS)}"
        )
    return kind, name


def register(type_name: str, target: str, *, extra: str | None = None, summary: str = "") -> None:
    """Register (or replace) a component type, e.g. ``register("embedder/mine", "pkg.mod:Cls")``."""
    _check_type_name(type_name)
    if ":" not in target:
        raise ConfigError(f"component target {target!r} must look like 'module:Class'")
    _registry[type_name] = ComponentEntry(target, extra, summary)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    try:
        eps = importlib_metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # pragma: no cover - broken metadata must not break ragnest
        logger.warning("could not read %s entry points", ENTRY_POINT_GROUP, exc_info=True)
        return
    for ep in eps:
        try:
            _check_type_name(ep.name)
        except ConfigError:
            logger.warning("ignoring entry point %r: name is not 'kind/name'", ep.name)
            continue
        _registry.setdefault(ep.name, ComponentEntry(ep.value, None, f"plugin from {ep.value}"))


def list_components(kind: str | None = None) -> dict[str, ComponentEntry]:
    """Registered components (optionally of one kind), without importing any of them."""
    _load_entry_points()
    return {
        k: v for k, v in sorted(_registry.items()) if kind is None or k.startswith(kind + "/")
    }


def _import_target(target: str, *, extra: str | None, type_name: str) -> type:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        missing = err.name or ""
        if missing and (missing == module_name or module_name.startswith(missing + ".")):
            raise ComponentNotFoundError(
                f"component {type_name!r} points to module {module_name!r}, which does not exist"
            ) from err
        hint = f"pip install 'ragnest[{extra}]'" if extra else f"pip install {missing}"
        raise MissingDependencyError(
            f"component {type_name!r} needs the package {missing!r}, which is not installed; "
            f"install it with: {hint}"
        ) from err
    try:
        return getattr(module, attr)
    except AttributeError as err:
        raise ComponentNotFoundError(
            f"component {type_name!r}: module {module_name!r} has no attribute {attr!r}"
        ) from err


def resolve(type_name: str, *, allow_import_paths: bool = False) -> type:
    """The class for ``type_name`` (imports its module now).

    ``allow_import_paths=True`` also accepts ``"module:Class"`` directly (opt-in, since it
    lets a YAML file import arbitrary code).
    """
    if ":" in type_name:
        if not allow_import_paths:
            raise ConfigError(
                f"import path {type_name!r} is not allowed in this pipeline; register the "
                "component or pass allow_import_paths=True"
            )
        return _import_target(type_name, extra=None, type_name=type_name)
    _check_type_name(type_name)
    _load_entry_points()
    entry = _registry.get(type_name)
    if entry is None:
        raise ComponentNotFoundError(
            f"unknown component type {type_name!r}" + did_you_mean(type_name, sorted(_registry))
        )
    return _import_target(entry.target, extra=entry.extra, type_name=type_name)


def type_name_of(obj: Any) -> str | None:
    """The registered ``kind/name`` of a component instance, if any."""
    cls = type(obj)
    target = f"{cls.__module__}:{cls.__qualname__}"
    _load_entry_points()
    for name, entry in _registry.items():
        if entry.target == target:
            return name
    return None


def validate_params(cls: type, params: Mapping[str, Any], *, where: str) -> None:
    """Check ``params`` against what ``cls(**params)`` takes, without building it.

    Unknown keys are rejected with a "did you mean", values of the wrong type, choices
    outside a ``Literal`` and missing required parameters too; ``where`` names the
    parameter mapping in the :class:`~ragnest.errors.ConfigError` (see
    :func:`ragnest._validate.validate_params`, the one mechanism behind it)::

        >>> from ragnest.stores.qdrant import QdrantStore
        >>> validate_params(QdrantStore, {"path": "/tmp/s", "hnsw_m": "16"},
        ...                 where="pipelines/x.yaml: components.store.params")
        Traceback (most recent call last):
        ...
        ragnest.errors.ConfigError: pipelines/x.yaml: components.store.params.hnsw_m: expects an integer, got '16' (a string)
    """
    _validate.validate_params(cls, params, where=where)


def create(
    type_name: str,
    params: Mapping[str, Any] | None = None,
    *,
    where: str | None = None,
    allow_import_paths: bool = False,
) -> Any:
    """Resolve ``type_name`` and build it from ``params`` (validated first).

    ``where`` names the parameter mapping in error messages (``"pipelines/x.yaml:
    components.dense.params"``); it defaults to ``"<type_name> params"``. A
    ``TypeError`` or ``ValueError`` from the constructor becomes a
    :class:`~ragnest.errors.ConfigError` prefixed with ``where``.
    """
    cls = resolve(type_name, allow_import_paths=allow_import_paths)
    params = dict(params or {})
    where = where or f"{type_name} params"
    validate_params(cls, params, where=where)
    try:
        return cls(**params)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from err
