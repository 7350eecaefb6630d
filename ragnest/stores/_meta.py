"""What a collection records about itself, and how a reopen is checked against it.

The record holds the vector specs (the ladder), the embedder identity and the
ragnest version that wrote it::

    >>> from ragnest.types import VectorSpec
    >>> meta = build_metadata([VectorSpec(name="coarse", kind="dense", dim=64)], {"model": "m"})
    >>> now = [VectorSpec(name="coarse", kind="dense", dim=32)]
    >>> reasons = mismatch_reasons(meta, now, {"model": "other"})
    >>> reasons[0].split(" (index")[0]
    "vector 'coarse' was dense 64-d"
    >>> reasons[1]
    "embedder identity differs: model 'm' (stored) vs 'other' (now)"
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ragnest._version import __version__
from ragnest.errors import ConfigError
from ragnest.types import VectorSpec

__all__ = [
    "FORMAT",
    "build_metadata",
    "describe_spec",
    "edge_vector_config",
    "jsonable",
    "mismatch_reasons",
    "ragnest_version",
    "read_json",
    "validate_specs",
    "write_json_atomic",
]

#: Version of the metadata layout itself.
FORMAT = 1


def ragnest_version() -> str:
    """The version of ragnest writing the record."""
    return __version__


def jsonable(value: Any) -> Any:
    """A JSON round trip (tuples become lists, keys become strings) for stable comparison."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def build_metadata(specs: Sequence[VectorSpec], identity: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-basic record stored with a collection."""
    return {
        "format": FORMAT,
        "ragnest_version": ragnest_version(),
        "specs": [s.to_dict() for s in specs],
        "identity": jsonable(dict(identity)),
    }


def describe_spec(d: Mapping[str, Any]) -> str:
    """Short human description of a stored spec dict: ``multi 128-d (index none, ...)``."""
    if d.get("kind") == "sparse":
        return f"sparse (modifier {d.get('modifier') or 'none'})"
    quant = f", {d['quantization']}" if d.get("quantization") else ""
    return (
        f"{d.get('kind')} {d.get('dim')}-d (index {d.get('index')}{quant}, "
        f"{d.get('datatype')}, {d.get('distance')})"
    )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        if not value and prefix:
            out[prefix] = {}
        return out
    return {prefix or "<identity>": value}


def mismatch_reasons(
    stored: Mapping[str, Any], specs: Sequence[VectorSpec], identity: Mapping[str, Any]
) -> list[str]:
    """Every difference between a stored record and the specs/identity given now."""
    reasons: list[str] = []
    old_specs = {d["name"]: jsonable(d) for d in stored.get("specs", [])}
    new_specs = {s.name: jsonable(s.to_dict()) for s in specs}
    for name, old in old_specs.items():
        if name not in new_specs:
            reasons.append(f"vector {name!r} ({describe_spec(old)}) is stored but no longer given")
    for name, new in new_specs.items():
        old = old_specs.get(name)
        if old is None:
            reasons.append(f"vector {name!r} ({describe_spec(new)}) is new")
        elif old != new:
            reasons.append(f"vector {name!r} was {describe_spec(old)}, now {describe_spec(new)}")
    old_id = _flatten(jsonable(stored.get("identity", {})))
    new_id = _flatten(jsonable(dict(identity)))
    diffs = []
    for key in sorted(set(old_id) | set(new_id)):
        a, b = old_id.get(key, "<absent>"), new_id.get(key, "<absent>")
        if a != b:
            diffs.append(f"{key} {a!r} (stored) vs {b!r} (now)")
    if diffs:
        reasons.append("embedder identity differs: " + "; ".join(diffs))
    return reasons


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write JSON via a temporary file in the same directory and ``os.replace``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def validate_specs(specs: Sequence[VectorSpec], where: str) -> None:
    """A ladder a collection can be opened with: named, unique, known kinds, dims > 0."""
    if not specs:
        raise ConfigError(f"{where}: open() needs at least one VectorSpec")
    seen: set[str] = set()
    for s in specs:
        if not s.name:
            raise ConfigError(f"{where}: a VectorSpec has an empty name")
        if s.name in seen:
            raise ConfigError(f"{where}: vector name {s.name!r} appears twice")
        seen.add(s.name)
        if s.kind not in ("dense", "multi", "sparse"):
            raise ConfigError(f"{where}: vector {s.name!r} has unknown kind {s.kind!r}")
        if s.kind != "sparse" and (not isinstance(s.dim, int) or s.dim <= 0):
            raise ConfigError(f"{where}: vector {s.name!r} ({s.kind}) needs dim > 0, got {s.dim!r}")
        if s.distance not in ("dot", "cosine"):
            raise ConfigError(f"{where}: vector {s.name!r} has unknown distance {s.distance!r}")


def edge_vector_config(raw: Mapping[str, Any], default_m: int) -> dict[str, dict[str, Any]]:
    """The engine's own view of each named vector, from Qdrant Edge's ``edge_config.json``."""
    out: dict[str, dict[str, Any]] = {}
    for name, v in (raw.get("vectors") or {}).items():
        out[name] = {
            "kind": "multi" if v.get("multivector_config") else "dense",
            "dim": v.get("size"),
            "distance": str(v.get("distance", "")).lower(),
            "hnsw_m": (v.get("hnsw_config") or {}).get("m", default_m),
            "quantization": next(iter(v.get("quantization_config") or {}), None),
            "datatype": v.get("datatype") or "float32",
        }
    for name, v in (raw.get("sparse_vectors") or {}).items():
        out[name] = {"kind": "sparse", "modifier": v.get("modifier")}
    return out
