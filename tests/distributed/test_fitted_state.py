"""The fitted state (a PCA rotation) is fitted once on the driver and shipped: an
embedding actor built from the pipeline config and the shipped state makes exactly the
driver's vectors, and an actor without the state refuses to embed (it never fits its own).
A tiny random ColQwen2 with ``rotation: pca``; the actor class is built in-process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragnest import Pipeline
from ragnest.config import parse_config
from ragnest.distributed import run
from ragnest.distributed.stages import embed_task, parse_task, plan_tasks, unpack
from ragnest.errors import EmbeddingError
from ragnest.ingest.report import IngestReport

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("ray", reason="the Ray engine needs the ray extra: pip install 'ragnest[ray]'")
from ragnest.distributed._ray import _Embed, _parsers, _rows  # noqa: E402
from ragnest.testing.tiny_models import build_colqwen2  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "docs"


def _config(model: Path, store: Path):  # noqa: ANN202
    return parse_config({
        "version": 1,
        "components": {
            "pdf": {"type": "parser/pdf", "params": {"ocr": "never", "dpi": 48}},
            "pages": {"type": "embedder/colqwen2", "params": {
                "model": str(model), "batch_size": 4, "rotation": "pca",
                "ladder": [{"name": "coarse", "dim": 32, "vectors": 1, "index": "hnsw"},
                           {"name": "fine", "dim": 64, "vectors": "all"}]}},
            "store": {"type": "store/qdrant", "params": {"path": str(store),
                                                         "collection": "pages"}},
        },
        "pipeline": {"parsers": ["pdf"], "embedders": ["pages"], "store": "store",
                     "ingest": {"engine": "ray"}},
    }, env={})


def test_state_is_fitted_once_and_shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = build_colqwen2(tmp_path / "tiny-colqwen2")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.pdf").write_bytes((EXAMPLES / "nimbus3_handbook.pdf").read_bytes())
    cfg = _config(model, tmp_path / "store")
    tasks, job = run._prepare([str(docs)], cfg, IngestReport())  # fits on the driver
    state = job["states"]["pages"]
    assert state is not None and state["kind"] == "pca"

    actor = _Embed(cfg, job["states"])
    out = actor(_rows([parse_task(t, _parsers(cfg)) for t in tasks]))
    shipped = unpack(out["task"][0])
    with Pipeline.from_config(cfg) as rag:  # the driver's side: the stored state
        rag.warm_up()
        (task,) = plan_tasks([str(docs)], rag.parsers, rag.store, IngestReport())
        here = embed_task(parse_task(task, rag.parsers), rag.embedders)
    assert [p.chunk.id for p in shipped.points] == [p.chunk.id for p in here.points]
    for a, b in zip(shipped.points, here.points):
        for name in ("pages-coarse", "pages-fine"):
            np.testing.assert_allclose(a.vectors[name], b.vectors[name], rtol=1e-5, atol=1e-6)

    with pytest.raises(EmbeddingError, match="ragnest fit"):
        _Embed(cfg, {})  # no state shipped: the actor refuses, it does not fit its own
