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
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from ragnest._validate import did_you_mean, validate_params
from ragnest._yaml import safe_load
from ragnest.errors import ConfigError
from ragnest.settings import IngestConfig, RetrievalConfig

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


@dataclass(kw_only=True)
class ComponentConfig:
    """One named component instance: a registered ``type`` and its ``params``."""

    type: str
    params: dict[str, Any] = field(default_factory=dict)


# The shapes of a pipeline file, a component entry, the pipeline section and a profile,
# validated by the same mechanism as component parameters (unknown keys, types).
@dataclass(kw_only=True)
class _FileShape:
    version: Literal[1] = 1
    name: str | None = None
    description: str | None = None
    components: dict[str, dict[str, Any]]
    pipeline: dict[str, Any]


@dataclass(kw_only=True)
class _ComponentShape:
    type: str
    params: dict[str, Any] | None = None


@dataclass(kw_only=True)
class _PipelineShape:
    parsers: str | list[str] | None = None
    embedders: str | list[str] | None = None
    store: str | None = None
    reranker: str | None = None
    generator: str | None = None
    retrieval: dict[str, Any] | None = None
    ingest: dict[str, Any] | None = None


@dataclass(kw_only=True)
class _ProfileShape:
    description: str | None = None
    components: dict[str, dict[str, Any]] | None = None
    pipeline: dict[str, Any] | None = None


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
    source: str = field(default="<config>", compare=False, repr=False)

    def params_where(self, name: str) -> str:
        """Where component ``name``'s parameters come from, for error messages.

        >>> cfg = load_config("lite", env={})
        >>> cfg.params_where("dense").endswith("lite.yaml: components.dense.params")
        True
        """
        return f"{self.source}: components.{name}.params"

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


def _as_name_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def parse_config(
    data: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    source: str = "<config>",
    allow_import_paths: bool = False,
) -> PipelineConfig:
    """Validate a YAML-shaped mapping into a :class:`PipelineConfig`.

    Interpolation happens here (after the secret check); every error names ``source``
    and the key path. Component parameters are validated against their classes when
    the pipeline is built (:meth:`PipelineConfig.params_where` names them).

    >>> cfg = parse_config({"components": {"pdf": {"type": "parser/pdf"},
    ...                                    "bm25": {"type": "embedder/bm25"},
    ...                                    "db": {"type": "store/qdrant"}},
    ...                     "pipeline": {"parsers": "pdf", "embedders": ["bm25"], "store": "db"}})
    >>> cfg.parsers, cfg.retrieval.k
    (['pdf'], 5)
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a pipeline file must be a mapping at the top level")
    raw_components = data.get("components")
    for key, comp in (raw_components.items() if isinstance(raw_components, Mapping) else ()):
        params = comp.get("params") if isinstance(comp, Mapping) else None
        if isinstance(params, Mapping):
            _check_secrets(params, f"{source}: components.{key}.params")
    env = os.environ if env is None else env
    data = interpolate(dict(data), env, where=source)
    validate_params(_FileShape, data, where=f"{source}:", noun="key", owner="a pipeline file")
    if not data["components"]:
        raise ConfigError(f"{source}: 'components' must map names to {{type, params}}")
    components: dict[str, ComponentConfig] = {}
    for key, comp in data["components"].items():
        where = f"{source}: components.{key}"
        validate_params(_ComponentShape, comp, where=where, noun="key", owner="a component")
        ctype = comp["type"]
        if ":" in ctype and not allow_import_paths:
            raise ConfigError(
                f"{where}.type {ctype!r} is an import path; register the "
                "component or load with allow_import_paths=True"
            )
        components[str(key)] = ComponentConfig(type=ctype, params=dict(comp.get("params") or {}))

    pipe = data["pipeline"]
    validate_params(_PipelineShape, pipe, where=f"{source}: pipeline", noun="key",
                    owner="the pipeline section")

    def known(name: str | None, slot: str, kind: str) -> str | None:
        if name is None:
            return None
        if name not in components:
            raise ConfigError(
                f"{source}: pipeline.{slot} names {name!r}, which is not in components"
                + did_you_mean(name, sorted(components))
            )
        ctype = components[name].type
        if "/" in ctype and ctype.split("/", 1)[0] != kind:
            raise ConfigError(
                f"{source}: pipeline.{slot} needs a {kind}, but {name!r} is a {ctype!r}"
            )
        return name

    parsers = [known(n, "parsers", "parser") for n in _as_name_list(pipe.get("parsers"))]
    embedders = [known(n, "embedders", "embedder") for n in _as_name_list(pipe.get("embedders"))]
    if not parsers:
        raise ConfigError(f"{source}: pipeline.parsers must name at least one parser")
    if not embedders:
        raise ConfigError(f"{source}: pipeline.embedders must name at least one embedder")
    store = known(pipe.get("store"), "store", "store")
    if store is None:
        raise ConfigError(f"{source}: pipeline.store must name a store component")
    retrieval_raw = pipe.get("retrieval") or {}
    validate_params(RetrievalConfig, retrieval_raw, where=f"{source}: pipeline.retrieval",
                    noun="key", owner="pipeline.retrieval")
    retrieval = RetrievalConfig(**retrieval_raw)
    for name in retrieval.weights:
        if name not in embedders:
            raise ConfigError(
                f"{source}: pipeline.retrieval.weights names {name!r}, which is not an embedder "
                "of this pipeline" + did_you_mean(name, [e for e in embedders if e])
            )
    ingest_raw = pipe.get("ingest") or {}
    validate_params(IngestConfig, ingest_raw, where=f"{source}: pipeline.ingest", noun="key",
                    owner="pipeline.ingest")
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
        source=source,
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
        return safe_load(text, where=str(path))  # yaml.safe_load with alias expansion bounded
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
        validate_params(_ProfileShape, overlay, where=f"{ppath}:", noun="key", owner="a profile")
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
