"""Bytes per page: what each stored vector costs, measured on a sample of the corpus.

A vector's bytes follow from its spec: rows x dim x bytes per element of its
``datatype`` (TurboQuant ``turbo4`` = half a byte), plus the quantized copy Qdrant keeps
beside it (``binary``: dim/8 bytes a row, ``scalar``: one byte an element); a sparse
vector costs 8 bytes per non-zero. A setting's bytes per page sum the vectors its
routes read::

    >>> import numpy as np
    >>> from ragnest.types import VectorSpec
    >>> vector_bytes(np.zeros((16, 64)), VectorSpec(name="dense-mid", kind="multi", dim=64,
    ...                                              datatype="float16"))
    2048.0
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragnest.errors import RagnestError
from ragnest.ladder import vector_name
from ragnest.types import SparseVector, Vector, VectorSpec

__all__ = ["ELEMENT_BYTES", "bytes_per_page", "sample_vector_bytes", "setting_vectors", "vector_bytes"]

logger = logging.getLogger(__name__)

ELEMENT_BYTES = {"float32": 4.0, "float16": 2.0, "turbo4": 0.5, "turbo8": 1.0, "turbo16": 2.0}


def vector_bytes(value: Vector, spec: VectorSpec) -> float:
    """Stored bytes of one vector (see the module docs)."""
    if isinstance(value, SparseVector):
        return 8.0 * len(value.indices)
    arr = np.asarray(value)
    rows = 1 if arr.ndim == 1 else arr.shape[0]
    dim = arr.shape[-1] if arr.ndim else spec.dim
    size = rows * dim * ELEMENT_BYTES.get(spec.datatype, 4.0)
    if spec.quantization == "binary":
        size += rows * dim / 8
    elif spec.quantization == "scalar":
        size += rows * dim
    return float(size)


def sample_vector_bytes(pipeline: Any, files: Sequence[Path], *, pages: int = 24) -> dict[str, float]:
    """``{vector name: mean bytes per page}`` over the chunks of the smallest files of
    ``files`` until ``pages`` pages are seen (parsed and embedded here, nothing stored)."""
    specs = {s.name: s for s in pipeline.vector_specs()}
    totals: dict[str, float] = {}
    seen: set[tuple[str, int]] = set()
    for f in sorted(files, key=lambda p: p.stat().st_size):
        try:
            chunks = pipeline.parse(f, progress=False)
        except RagnestError as e:  # a bad file is left out of the sample
            logger.info("bytes per page: %s left out of the sample (%s)", f, e)
            continue
        points = pipeline.embed(list(chunks), progress=False)
        for point in points:
            seen.add((point.chunk.source, point.chunk.page or 1))
            for name, value in point.vectors.items():
                if name in specs:
                    totals[name] = totals.get(name, 0.0) + vector_bytes(value, specs[name])
        if len(seen) >= pages:
            break
    n = max(1, len(seen))
    return {name: total / n for name, total in totals.items()}


def setting_vectors(embedders: Mapping[str, Any], using: Sequence[str] | None,
                    levels: Sequence[str] | None) -> list[str]:
    """The vector names a setting's routes read."""
    names = []
    for key, emb in embedders.items():
        if using is not None and key not in using:
            continue
        specs = [s.name for s in emb.vector_specs()]
        named = [s for s in specs if levels and (s in levels or vector_name(key, s) in levels)]
        names += [vector_name(key, s) for s in (named or specs)]
    return names


def bytes_per_page(per_vector: Mapping[str, float], vectors: Sequence[str]) -> float:
    """The sum of ``per_vector`` over ``vectors``."""
    return float(sum(per_vector.get(v, 0.0) for v in vectors))
