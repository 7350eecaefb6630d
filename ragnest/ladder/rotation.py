"""PCA rotation: Matryoshka-like prefixes for models not trained for them (pure numpy).

A rotation is fitted once on a corpus sample (the rows of the first chunks ingested),
stored with the collection (:meth:`PcaRotation.to_state` is JSON) and applied to every
document and query vector before prefix truncation, so a ``dim: 64`` level keeps the 64
directions of most variance instead of 64 arbitrary coordinates::

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(500, 8)) * np.arange(8, 0, -1)
    >>> rot = PcaRotation.fit(x)
    >>> [round(float(v), 2) for v in rot.explained[:2]]
    [0.29, 0.23]
    >>> PcaRotation.from_state(rot.to_state()).apply(x[:2]).shape
    (2, 8)

The rotation is orthonormal and the mean is *not* subtracted when applying, so dot
products (and MaxSim) between full-dimension vectors are unchanged; only the order of
dimensions changes. Centering is used while fitting, to find the directions.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PcaRotation", "apply_pca", "fit_pca"]

logger = logging.getLogger(__name__)


def fit_pca(sample: np.ndarray, *, center: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Fit a PCA rotation on sample rows: returns ``(mean, components)``.

    ``components`` is ``(d, d)`` with rows ordered by explained variance, so after
    :func:`apply_pca` prefixes carry the most variance. With fewer rows than
    dimensions the basis is completed with orthonormal directions of no sample variance.

    >>> x = np.random.default_rng(0).normal(size=(50, 8)) * np.arange(1, 9)
    >>> mean, comps = fit_pca(x)
    >>> apply_pca(x, mean, comps).shape
    (50, 8)
    """
    x = np.asarray(sample, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError("fit_pca needs a 2-d sample with at least 2 rows")
    mean = x.mean(axis=0) if center else np.zeros(x.shape[1])
    _, _, vt = np.linalg.svd(x - mean, full_matrices=True)
    return mean.astype(np.float32), vt.astype(np.float32)


def apply_pca(
    x: np.ndarray, mean: np.ndarray, components: np.ndarray, *, normalize: bool = True
) -> np.ndarray:
    """Rotate rows (1-d or 2-d) into the PCA basis; re-normalise unless ``normalize=False``.

    The mean is subtracted before rotating, as at fit time.
    """
    y = (np.asarray(x, dtype=np.float32) - mean) @ components.T
    if not normalize:
        return y
    norm = np.linalg.norm(y, axis=-1, keepdims=True)
    return (y / np.maximum(norm, 1e-12)).astype(np.float32)


def _encode(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def _decode(s: str, shape: Sequence[int]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype="<f4").reshape(tuple(shape)).copy()


@dataclass(frozen=True)
class PcaRotation:
    """An orthonormal ``(d, d)`` rotation whose rows are ordered by explained variance.

    ``explained`` is each direction's share of the sample's variance; ``sample_rows``
    how many rows it was fitted on.
    """

    components: np.ndarray
    explained: np.ndarray
    sample_rows: int

    @property
    def dim(self) -> int:
        return int(self.components.shape[1])

    @classmethod
    def fit(cls, sample: np.ndarray) -> PcaRotation:
        """Fit on ``(n, d)`` rows (centred while fitting)."""
        x = np.asarray(sample, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2 or not np.isfinite(x).all():
            raise ValueError("a PCA rotation needs a finite 2-d sample with at least 2 rows")
        if x.shape[0] < 2 * x.shape[1]:
            logger.warning(
                "PCA rotation fitted on %d rows of %d-d vectors: fewer than 2 per dimension, "
                "so the trailing directions are poorly estimated",
                x.shape[0],
                x.shape[1],
            )
        centred = x - x.mean(axis=0)
        _, s, vt = np.linalg.svd(centred, full_matrices=True)
        var = np.zeros(x.shape[1])
        var[: s.size] = s**2
        total = float(var.sum())
        explained = var / total if total > 0 else var
        return cls(vt.astype(np.float32), explained.astype(np.float32), int(x.shape[0]))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Rotate rows (1-d or 2-d); norms and dot products are preserved."""
        x = np.asarray(x, dtype=np.float32)
        if x.shape[-1] != self.dim:
            raise ValueError(f"rotation is {self.dim}-d, vectors are {x.shape[-1]}-d")
        return (x @ self.components.T).astype(np.float32)

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state (float32 arrays as base64) to store with the collection."""
        return {
            "kind": "pca",
            "dim": self.dim,
            "sample_rows": self.sample_rows,
            "components": _encode(self.components),
            "explained": _encode(self.explained),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> PcaRotation:
        """Rebuild from :meth:`to_state` output; raises ``ValueError`` on a bad record."""
        try:
            if state.get("kind") != "pca":
                raise ValueError(f"not a PCA rotation: kind={state.get('kind')!r}")
            d = int(state["dim"])
            comps = _decode(state["components"], (d, d))
            explained = _decode(state["explained"], (d,))
            return cls(comps, explained, int(state["sample_rows"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"invalid stored rotation: {err}") from err
