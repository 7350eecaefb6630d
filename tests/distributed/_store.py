"""Helpers: a whole store as comparable data, and a local ingest to compare against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ragnest import Pipeline

PENDING = "doc_pending"


def snapshot(store: Path, pipeline: str = "lite", *, live: bool = True,
             ) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Every stored point: id -> (payload, vectors as lists). ``live``: read the store
    itself (uncommitted points included, under the writer lock); otherwise what a reader
    sees (a copy of the committed state)."""
    with Pipeline.from_yaml(pipeline, env={"RAGNEST_STORE": str(store)}) as rag:
        rag.open(write=live)
        backend = rag.store._require()
        rows = dict(backend.payloads_where([], None))
        names = [s.name for s in rag.store._specs]
        vectors = backend.vectors(sorted(rows), names) if rows else {}

    def canonical(value: Any) -> Any:
        if hasattr(value, "indices") and hasattr(value, "values"):
            return ("sparse", [int(i) for i in value.indices], [float(v) for v in value.values])
        return np.asarray(value, dtype=np.float32).tolist()

    return {pid: (payload, {k: canonical(v) for k, v in vectors.get(pid, {}).items()})
            for pid, payload in rows.items()}


def local_ingest(paths: list[Path], store: Path) -> dict[str, Any]:
    """The lite pipeline's local ingest of ``paths`` into ``store``; its report as a dict."""
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}) as rag:
        return rag.ingest([str(p) for p in paths], progress=False).to_dict()


def comparable(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What must agree between two ingest reports of the same files (not the seconds)."""
    return sorted((d["path"], d["document_id"], d["pages"], d["added"], d["unchanged"],
                   d["status"]) for d in report["documents"])
