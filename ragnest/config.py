"""Pipeline configuration: YAML <-> :class:`PipelineConfig`.

A pipeline file names component instances and wires them into fixed slots::

    components:
      pdf:    {type: parser/pdf}
      dense:  {type: embedder/wordllama}
      bm25:   {type: embedder/bm25}
      store:  {type: store/qdrant, params: {path: "${RAGNEST_STORE:-.ragnest}"}}
      answer: {type: generator/extractive}
    pipeline:
      parsers: [pdf]
      embedders: [dense, bm25]
      store: store
      generator: answer
      retrieval: {k: 5, fusion: relative, weights: {bm25: 1.0, dense: 0.5}}

Rules: ``yaml.safe_load`` only; ``${VAR}`` and ``${VAR:-default}`` interpolation in
string values and nowhere else; unknown keys are rejected with a "did you mean";
secret-looking parameters (``api_key``, ``password``, ``token``, ``secret``) must
come from ``${ENV}``; import paths (``module:Class``) only when the caller opts in.
A profile (``configs/profiles/<name>.yaml`` or any path) is deep-merged on top.

    >>> from ragnest.config import load_config
    >>> cfg = load_config("lite", env={"RAGNEST_STORE": "/tmp/s"})
    >>> cfg.components["store"].params["path"]
    '/tmp/s'
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ragnest.errors import ConfigError

__all__ = [
    "ComponentConfig",
    "RetrievalConfig",
    "IngestConfig",
    "PipelineConfig",
    "load_config",
    "parse_config",
    "interpolate",
    "find_pipeline_file",
    "find_profile_file",
    "deep_merge",
]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET = re.compile(r"(api_?key|password|passwd|token|secret)$", re.IGNORECASE)
_REPO_ROOT = Path(__file__).resolve().parent.parent


def _did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=2, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _reject_unknown(data: Mapping[str, Any], known: list[str], where: str) -> None:
    for key in data:
        if key not in known:
            raise ConfigError(
                f"{where}: unknown key {key!r}" + _did_you_mean(str(key), known)
                + f" (allowed: {', '.join(known)})"
            )


@dataclass(kw_only=True)
class ComponentConfig:
    """One named component instance: a registered ``type`` and its ``params``."""

    type: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class RetrievalConfig:
    """How retrieval runs.

    ``k``: hits returned. ``candidates``: hits each route hands to fusion (and the
    reranker). ``fusion``: ``relative`` (normalised score sum), ``rrf`` or ``dbsf``.
    ``weights``: per embedder name. ``budgets``: candidate limits per stage, keyed
    by vector name (``dense-coarse``) or level name (``coarse``); unset stages keep
    ``4x`` the next stage's limit. ``image_ocr``: an image query that no embedder
    reads (a screenshot crop on a text-only pipeline) is read with OCR (RapidOCR)
    and searched as text; ``False`` makes such queries an error.
    """

    k: int = 5
    candidates: int = 50
    fusion: str = "relative"
    fusion_k: int = 60
    weights: dict[str, float] = field(default_factory=dict)
    budgets: dict[str, int] = field(default_factory=dict)
    rerank_k: int | None = None
    image_ocr: bool = True

    def __post_init__(self) -> None:
        if self.fusion not in ("relative", "rrf", "dbsf"):
            raise ConfigError(
                f"pipeline.retrieval.fusion: {self.fusion!r} is not one of relative, rrf, dbsf"
            )
        if self.k < 1 or self.candidates < 1:
            raise ConfigError("pipeline.retrieval: k and candidates must be at least 1")


@dataclass(kw_only=True)
class IngestConfig:
    """How ingest runs.

    ``workers``: parser processes (1 parses in the calling process; more spread
    files, and page ranges of big PDFs, over that many processes; ``0`` means one
    per CPU). ``split_pages``: page-range size for spreading one big PDF.
    ``batch_size``: chunks embedded and written at a time.
    """

    workers: int = 1
    split_pages: int = 100
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError("pipeline.ingest.workers must be >= 0 (0 = one per CPU)")
        if self.split_pages < 1 or self.batch_size < 1:
            raise ConfigError("pipeline.ingest: split_pages and batch_size must be at least 1")


_PIPELINE_KEYS = [
    "parsers", "embedders", "store", "reranker", "generator", "retrieval", "ingest",
]
_TOP_KEYS = ["version", "name", "description", "components", "pipeline"]


@dataclass(kw_only=True)
class PipelineConfig:
    """A validated pipeline description (what YAML holds, as dataclasses)."""

    components: dict[str, ComponentConfig]
    parsers: list[str]
    embedders: list[str]
    store: str
    generator: str | None = None
    reranker: str | None = None
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    name: str | None = None
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The YAML-shaped dictionary (round-trips through :func:`parse_config`)."""
        out: dict[str, Any] = {"version": 1}
        if self.name:
            out["name"] = self.name
        if self.description:
            out["description"] = self.description
        out["components"] = {
            key: ({"type": c.type, "params": copy.deepcopy(c.params)} if c.params else {"type": c.type})
            for key, c in self.components.items()
        }
        pipe: dict[str, Any] = {
            "parsers": list(self.parsers),
            "embedders": list(self.embedders),
            "store": self.store,
        }
        if self.reranker:
            pipe["reranker"] = self.reranker
        if self.generator:
            pipe["generator"] = self.generator
        pipe["retrieval"] = dataclasses.asdict(self.retrieval)
        pipe["ingest"] = dataclasses.asdict(self.ingest)
        out["pipeline"] = pipe
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def interpolate(value: Any, env: Mapping[str, str], *, where: str = "") -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of a YAML tree."""
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{where or 'config'}: environment variable {name!r} is not set "
                f"(write ${{{name}:-default}} to give a default)"
            )

        full = _VAR.fullmatch(value)
        result = _VAR.sub(sub, value)
        # a whole-value "${N:-5}" becomes a YAML scalar (int, float, bool, null)
        if full is not None:
            try:
                parsed = yaml.safe_load(result) if result.strip() else result
            except yaml.YAMLError:
                return result
            if isinstance(parsed, (int, float, bool)) or parsed is None:
                return parsed
        return result
    if isinstance(value, dict):
        return {k: interpolate(v, env, where=f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, where=f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _check_secrets(params: Mapping[str, Any], where: str) -> None:
    for key, value in params.items():
        if isinstance(value, dict):
            _check_secrets(value, f"{where}.{key}")
        elif _SECRET.search(str(key)) and value not in (None, "") and not (
            isinstance(value, str) and _VAR.fullmatch(value.strip())
        ):
            raise ConfigError(
                f"{where}.{key}: secrets must come from the environment; write "
                f"'${{{str(key).upper()}}}' instead of a literal value"
            )


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``overlay`` onto ``base`` (dicts merge, everything else replaces)."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _as_name_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{where}: expected a component name or a list of names, got {value!r}")


def parse_config(
    data: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    source: str = "<config>",
    allow_import_paths: bool = False,
) -> PipelineConfig:
    """Validate a YAML-shaped mapping into a :class:`PipelineConfig`.

    Interpolation happens here (after the secret check); component parameters are
    validated against their classes when the pipeline is built.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a pipeline file must be a mapping at the top level")
    _reject_unknown(data, _TOP_KEYS, source)
    raw_components = data.get("components")
    if not isinstance(raw_components, Mapping) or not raw_components:
        raise ConfigError(f"{source}: 'components' must map names to {{type, params}}")
    for key, comp in raw_components.items():
        if not isinstance(comp, Mapping):
            raise ConfigError(f"{source}: components.{key} must be a mapping with 'type'")
        _check_secrets(comp.get("params") or {}, f"{source}: components.{key}.params")
    env = os.environ if env is None else env
    data = interpolate(dict(data), env, where=source)
    components: dict[str, ComponentConfig] = {}
    for key, comp in data["components"].items():
        _reject_unknown(comp, ["type", "params"], f"{source}: components.{key}")
        ctype = comp.get("type")
        if not isinstance(ctype, str):
            raise ConfigError(f"{source}: components.{key}.type must be a string like 'parser/pdf'")
        if ":" in ctype and not allow_import_paths:
            raise ConfigError(
                f"{source}: components.{key}.type {ctype!r} is an import path; register the "
                "component or load with allow_import_paths=True"
            )
        params = comp.get("params") or {}
        if not isinstance(params, Mapping):
            raise ConfigError(f"{source}: components.{key}.params must be a mapping")
        components[str(key)] = ComponentConfig(type=ctype, params=dict(params))

    pipe = data.get("pipeline")
    if not isinstance(pipe, Mapping):
        raise ConfigError(f"{source}: 'pipeline' section is missing")
    _reject_unknown(pipe, _PIPELINE_KEYS, f"{source}: pipeline")

    def known(name: str | None, slot: str, kind: str) -> str | None:
        if name is None:
            return None
        if name not in components:
            raise ConfigError(
                f"{source}: pipeline.{slot} names {name!r}, which is not in components"
                + _did_you_mean(name, sorted(components))
            )
        ctype = components[name].type
        if "/" in ctype and ctype.split("/", 1)[0] != kind:
            raise ConfigError(
                f"{source}: pipeline.{slot} needs a {kind}, but {name!r} is a {ctype!r}"
            )
        return name

    parsers = [known(n, "parsers", "parser") for n in _as_name_list(pipe.get("parsers"), "pipeline.parsers")]
    embedders = [
        known(n, "embedders", "embedder") for n in _as_name_list(pipe.get("embedders"), "pipeline.embedders")
    ]
    if not parsers:
        raise ConfigError(f"{source}: pipeline.parsers must name at least one parser")
    if not embedders:
        raise ConfigError(f"{source}: pipeline.embedders must name at least one embedder")
    store = known(pipe.get("store"), "store", "store")
    if store is None:
        raise ConfigError(f"{source}: pipeline.store must name a store component")
    retrieval_raw = pipe.get("retrieval") or {}
    if not isinstance(retrieval_raw, Mapping):
        raise ConfigError(f"{source}: pipeline.retrieval must be a mapping")
    known_retrieval = [f.name for f in dataclasses.fields(RetrievalConfig)]
    _reject_unknown(retrieval_raw, known_retrieval, f"{source}: pipeline.retrieval")
    retrieval = RetrievalConfig(**retrieval_raw)
    for name in retrieval.weights:
        if name not in embedders:
            raise ConfigError(
                f"{source}: pipeline.retrieval.weights names {name!r}, which is not an embedder "
                "of this pipeline" + _did_you_mean(name, embedders)
            )
    ingest_raw = pipe.get("ingest") or {}
    if not isinstance(ingest_raw, Mapping):
        raise ConfigError(f"{source}: pipeline.ingest must be a mapping")
    _reject_unknown(ingest_raw, [f.name for f in dataclasses.fields(IngestConfig)],
                    f"{source}: pipeline.ingest")
    ingest = IngestConfig(**ingest_raw)
    return PipelineConfig(
        components=components,
        parsers=[p for p in parsers if p],
        embedders=[e for e in embedders if e],
        store=store,
        generator=known(pipe.get("generator"), "generator", "generator"),
        reranker=known(pipe.get("reranker"), "reranker", "reranker"),
        retrieval=retrieval,
        ingest=ingest,
        name=data.get("name"),
        description=data.get("description"),
    )


def _resource_file(package: str, relative: str) -> Path | None:
    try:
        candidate = resources.files(package).joinpath(relative)
    except (ModuleNotFoundError, TypeError):
        return None
    return Path(str(candidate)) if candidate.is_file() else None


def find_pipeline_file(name_or_path: str | os.PathLike[str]) -> Path:
    """A pipeline file from a path, or a shipped pipeline by name (``"lite"``)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    name = p.name[:-5] if p.name.endswith(".yaml") else p.name
    # a bare name ("lite") or the default "pipelines/lite.yaml" finds the shipped file
    if len(p.parts) == 1 or (len(p.parts) == 2 and p.parts[0] == "pipelines"):
        for candidate in (
            _REPO_ROOT / "pipelines" / f"{name}.yaml",
            _resource_file("ragnest._pipelines", f"{name}.yaml"),
        ):
            if candidate is not None and candidate.is_file():
                return candidate
    raise ConfigError(f"pipeline file {str(name_or_path)!r} not found (and no shipped pipeline named {name!r})")


def find_profile_file(name_or_path: str | os.PathLike[str]) -> Path:
    """A profile overlay from a path, or a shipped profile by name (``"cpu-lite"``)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    name = p.name[:-5] if p.name.endswith(".yaml") else p.name
    for candidate in (
        _REPO_ROOT / "configs" / "profiles" / f"{name}.yaml",
        _resource_file("ragnest._configs", f"profiles/{name}.yaml"),
    ):
        if candidate is not None and candidate.is_file():
            return candidate
    raise ConfigError(f"profile {str(name_or_path)!r} not found")


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err}") from err
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from err


def load_config(
    name_or_path: str | os.PathLike[str],
    *,
    profile: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    allow_import_paths: bool = False,
) -> PipelineConfig:
    """Read a pipeline YAML (path or shipped name), overlay a profile and overrides, validate."""
    path = find_pipeline_file(name_or_path)
    data = _read_yaml(path)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a pipeline file must be a mapping at the top level")
    if profile is not None:
        ppath = find_profile_file(profile)
        overlay = _read_yaml(ppath)
        if not isinstance(overlay, Mapping):
            raise ConfigError(f"{ppath}: a profile must be a mapping")
        _reject_unknown(overlay, ["components", "pipeline", "description"], str(ppath))
        overlay = {k: v for k, v in overlay.items() if k != "description"}
        for key in (overlay.get("components") or {}):
            if key not in (data.get("components") or {}):
                raise ConfigError(
                    f"{ppath}: profile overlays component {key!r}, which {path} does not define"
                )
        data = deep_merge(data, overlay)
    if overrides:
        data = deep_merge(data, overrides)
    return parse_config(data, env=env, source=str(path), allow_import_paths=allow_import_paths)
