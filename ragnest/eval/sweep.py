"""Settings to sweep: stage limits, the ladder levels used, the embedders used, fusion,
retrieval fields, and reranker parameters, all on one ingest.

``--sweep KEY=V1,V2`` options combine as a grid (every combination is one setting):

==========================  ==========================================================
``budget.STAGE=100,1000``   candidates the stage keeps (``coarse``, ``dense-mid``, ...)
``budgets=coarse:100+mid:20,coarse:1000``  whole budget sets, ``+`` between stages
``levels=coarse,coarse+mid``  ladder levels used (an embedder none of whose levels is
                            named keeps all of its own, so BM25 stays in)
``using=bm25,dense,dense+bm25``  embedders used
``fusion=relative,rrf``     how routes are fused
``weight.NAME=0.5,1``       one embedder's fusion weight
``k=5,10`` / ``retrieval.FIELD=...``  hits returned / any ``RetrievalConfig`` field
                            (``retrieval.rerank_k=10,30``: the reranker's pool)
``rerank.PARAM=1,3,8``      a reranker parameter (``rerank.max_k``: rerank depth kept)
==========================  ==========================================================

    >>> [s.label for s in parse_sweeps(["budget.coarse=100,1000", "levels=coarse,coarse+mid"])]
    ['budget.coarse=100 levels=coarse', 'budget.coarse=100 levels=coarse+mid', 'budget.coarse=1000 levels=coarse', 'budget.coarse=1000 levels=coarse+mid']
    >>> parse_sweeps([])[0].label
    'default'
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ragnest.errors import ConfigError
from ragnest.ladder import vector_name
from ragnest.protocols import Embedder
from ragnest.types import FUSIONS, Query, Vector, VectorSpec

__all__ = ["LevelSubset", "Setting", "parse_sweeps", "restrict_levels"]


@dataclass(frozen=True)
class Setting:
    """One point of a sweep: what changes from the pipeline's own retrieval settings."""

    label: str = "default"
    budgets: Mapping[str, int] = field(default_factory=dict)
    levels: tuple[str, ...] | None = None
    using: tuple[str, ...] | None = None
    fusion: str | None = None
    k: int | None = None
    retrieval: Mapping[str, Any] = field(default_factory=dict)
    rerank: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (only what the setting changes)."""
        out: dict[str, Any] = {"label": self.label}
        for key in ("budgets", "levels", "using", "fusion", "k", "retrieval", "rerank"):
            value = getattr(self, key)
            if value:
                out[key] = list(value) if isinstance(value, tuple) else (
                    dict(value) if isinstance(value, Mapping) else value)
        return out


def _number(text: str, where: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.lower() in ("none", "null"):
        return None
    return text


def _int(text: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"--sweep {where}: {text!r} is not an integer") from None
    if value < 1:
        raise ConfigError(f"--sweep {where}: {value} must be >= 1")
    return value


def _apply(fields: dict[str, Any], key: str, raw: str) -> None:
    """Set one value of a sweep key on a setting's fields."""
    if key.startswith(("budget.", "budgets.")):
        stage = key.split(".", 1)[1]
        fields["budgets"] = {**fields["budgets"], stage: _int(raw, key)}
    elif key == "budgets":
        pairs = {}
        for part in raw.split("+"):
            stage, sep, value = part.partition(":")
            if not sep:
                raise ConfigError(f"--sweep budgets: {part!r}: write STAGE:LIMIT (coarse:100)")
            pairs[stage.strip()] = _int(value, f"budgets {stage}")
        fields["budgets"] = {**fields["budgets"], **pairs}
    elif key in ("levels", "using"):
        fields[key] = tuple(p.strip() for p in raw.split("+") if p.strip())
    elif key == "fusion":
        if raw not in FUSIONS:
            raise ConfigError(f"--sweep fusion: {raw!r} is not one of {', '.join(FUSIONS)}")
        fields["fusion"] = raw
    elif key == "k":
        fields["k"] = _int(raw, key)
    elif key.startswith("weight."):
        weights = dict(fields["retrieval"].get("weights", {}))
        weights[key.split(".", 1)[1]] = float(_number(raw, key))
        fields["retrieval"] = {**fields["retrieval"], "weights": weights}
    elif key.startswith("retrieval."):
        fields["retrieval"] = {**fields["retrieval"], key.split(".", 1)[1]: _number(raw, key)}
    elif key.startswith("rerank."):
        fields["rerank"] = {**fields["rerank"], key.split(".", 1)[1]: _number(raw, key)}
    else:
        raise ConfigError(f"--sweep {key}: unknown key (budget.STAGE, budgets, levels, using, "
                          "fusion, weight.NAME, k, retrieval.FIELD, rerank.PARAM)")


def parse_sweeps(specs: Sequence[str]) -> list[Setting]:
    """Every combination of the ``KEY=V1,V2`` specs, in order (see the module docs)."""
    axes: list[tuple[str, list[str]]] = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not vals:
            raise ConfigError(f"--sweep {spec!r}: write KEY=V1,V2 (e.g. budget.coarse=100,1000)")
        axes.append((key, vals))
    settings = []
    for combo in itertools.product(*(vals for _, vals in axes)):
        fields: dict[str, Any] = {"budgets": {}, "retrieval": {}, "rerank": {}}
        for (key, _), raw in zip(axes, combo):
            _apply(fields, key, raw)
        label = " ".join(f"{key}={raw}" for (key, _), raw in zip(axes, combo)) or "default"
        settings.append(Setting(label=label, **fields))
    return settings


class LevelSubset:
    """An embedder whose queries use only some of its ladder levels: the query planner
    builds each route from the levels a query vector exists for."""

    def __init__(self, key: str, inner: Embedder, levels: Sequence[str]) -> None:
        self.key = key
        self.inner = inner
        names = {s.name for s in inner.vector_specs()}
        self.keep = {n for n in names if n in levels or vector_name(key, n) in levels}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def vector_specs(self) -> list[VectorSpec]:
        return self.inner.vector_specs()

    def embed_queries(self, queries: Sequence[Query]) -> list[dict[str, Vector] | None]:
        out = []
        for vecs in self.inner.embed_queries(queries):
            kept = {n: v for n, v in (vecs or {}).items() if n in self.keep}
            out.append(kept or None)
        return out


def restrict_levels(embedders: Mapping[str, Embedder],
                    levels: Sequence[str] | None) -> dict[str, Any]:
    """``embedders`` with only ``levels`` used at query time (by level or vector name);
    an embedder none of whose levels is named is left whole. A name no embedder has is
    a :class:`ConfigError`."""
    if not levels:
        return dict(embedders)
    known = {n for k, e in embedders.items() for s in e.vector_specs()
             for n in (s.name, vector_name(k, s.name))}
    unknown = [lv for lv in levels if lv not in known]
    if unknown:
        raise ConfigError(f"levels: unknown level {unknown[0]!r} (levels: {', '.join(sorted(known))})")
    out: dict[str, Any] = {}
    for key, emb in embedders.items():
        sub = LevelSubset(key, emb, levels)
        out[key] = sub if sub.keep else emb
    return out
