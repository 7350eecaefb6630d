"""The corpus-fitted PCA rotation (ragnest.ladder.rotation)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ragnest.ladder import maxsim
from ragnest.ladder.pooling import l2_normalize
from ragnest.ladder.rotation import PcaRotation


class TestRotation:
    def test_orthonormal_and_ordered(self) -> None:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(2000, 12)) * np.linspace(3, 0.1, 12)
        rot = PcaRotation.fit(x)
        c = rot.components
        assert np.allclose(c @ c.T, np.eye(12), atol=1e-5)
        assert np.all(np.diff(rot.explained) <= 1e-7) and rot.explained.sum() == pytest.approx(1)
        a, b = x[:3].astype(np.float32), x[3:6].astype(np.float32)
        # dot products are unchanged at full dimension
        assert np.allclose(rot.apply(a) @ rot.apply(b).T, a @ b.T, atol=1e-3)

    def test_state_round_trips_through_json(self) -> None:
        rot = PcaRotation.fit(np.random.default_rng(1).normal(size=(100, 8)))
        state = json.loads(json.dumps(rot.to_state()))
        back = PcaRotation.from_state(state)
        assert np.array_equal(back.components, rot.components) and back.sample_rows == 100
        with pytest.raises(ValueError, match="invalid stored rotation"):
            PcaRotation.from_state({**state, "components": state["components"][:-8]})

    def test_prefixes_keep_more_of_maxsim_after_pca(self) -> None:
        """A model not trained for Matryoshka: variance sits in arbitrary coordinates."""
        rng = np.random.default_rng(2)
        d, k = 64, 8
        basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
        latent = rng.normal(size=(4000, d)) * np.r_[np.full(k, 3.0), np.full(d - k, 0.2)]
        x = l2_normalize(latent @ basis.T)  # signal spread over all coordinates
        rot = PcaRotation.fit(x[:2000])
        docs, queries = x[2000:2600].reshape(200, 3, d), x[2600:2640].reshape(20, 2, d)

        def ranks(transform: object, dim: int) -> np.ndarray:
            f = transform if callable(transform) else (lambda v: v)
            dd = l2_normalize(f(docs)[..., :dim])
            qq = l2_normalize(f(queries)[..., :dim])
            return np.array([[maxsim(q, doc) for doc in dd] for q in qq]).argmax(axis=1)

        exact = ranks(None, d)
        plain = (ranks(None, k) == exact).mean()
        rotated = (ranks(rot.apply, k) == exact).mean()
        assert rotated > plain and rotated >= 0.8
