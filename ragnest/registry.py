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

import dataclasses
import difflib
import importlib
import logging
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from typing import Any

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
        "ragnest.parsers.office:OfficeParser",
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
    "generator/extractive": ComponentEntry(
        "ragnest.generators.extractive:ExtractiveGenerator",
        None,
        "Answers with cited sentences from the top hits (no model)",
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


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


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
            f"unknown component type {type_name!r}" + _suggest(type_name, sorted(_registry))
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


_BASIC = (str, int, float, bool, type(None), list, dict)


def _matches(value: Any, annotation: Any) -> bool:
    """A shallow check of a JSON-basic value against a dataclass field annotation."""
    if annotation is Any or annotation is typing.Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (list, tuple, typing.Sequence) or annotation in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin in (dict, typing.Mapping, Mapping) or annotation is dict:
        return isinstance(value, dict)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is type(None) or annotation is None:
        return value is None
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def validate_params(cls: type, params: Mapping[str, Any], *, where: str) -> None:
    """Reject unknown keys (with "did you mean") and values of the wrong basic type."""
    if not dataclasses.is_dataclass(cls):
        return
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # pragma: no cover - unresolvable annotations: skip type checks
        hints = {}
    for key, value in params.items():
        if key not in fields:
            raise ConfigError(
                f"{where}: unknown parameter {key!r} for {cls.__name__}"
                + _suggest(key, sorted(fields))
                + f" (known: {', '.join(sorted(fields))})"
            )
        hint = hints.get(key)
        if hint is not None and not _matches(value, hint):
            raise ConfigError(
                f"{where}: parameter {key!r} of {cls.__name__} expects {hint}, got {value!r}"
            )


def create(
    type_name: str,
    params: Mapping[str, Any] | None = None,
    *,
    where: str | None = None,
    allow_import_paths: bool = False,
) -> Any:
    """Resolve ``type_name`` and build it from ``params`` (validated first)."""
    cls = resolve(type_name, allow_import_paths=allow_import_paths)
    params = dict(params or {})
    validate_params(cls, params, where=where or type_name)
    try:
        return cls(**params)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where or type_name}: {err}") from err
