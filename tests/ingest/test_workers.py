"""``workers: auto``: how many parser processes an ingest uses, and that it changes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ragnest import Pipeline
from ragnest.config import IngestConfig
from ragnest.embedders.bm25 import Bm25Embedder
from ragnest.errors import ConfigError
from ragnest.ingest import pool as pool_module
from ragnest.ingest.pool import (
    AUTO_MIN_BYTES,
    AUTO_MIN_BYTES_FORK,
    ParsePool,
    auto_workers,
    resolve_workers,
)
from ragnest.parsers import PdfParser, TextParser
from ragnest.stores import QdrantStore
from ragnest.types import Source
from tests._long_pdf import make_long_pdf

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "docs"


def _sized(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


@pytest.mark.parametrize("method,least", [("spawn", AUTO_MIN_BYTES),
                                          ("fork", AUTO_MIN_BYTES_FORK)])
def test_auto_workers_follow_cpus_and_corpus_size(tmp_path: Path, monkeypatch, method: str,
                                                  least: int) -> None:
    monkeypatch.setenv("RAGNEST_WORKER_START", method)
    small = [_sized(tmp_path / "a.pdf", 10_000), _sized(tmp_path / "b.pdf", 20_000)]
    assert auto_workers(small, cpus=8) == 1  # a worker's start-up costs more than it saves
    assert auto_workers([_sized(tmp_path / "c.pdf", least - 1)], cpus=8) == 1
    big = [_sized(tmp_path / f"big{i}.pdf", 3 * least) for i in range(4)]
    assert auto_workers(big, cpus=1) == 1
    assert auto_workers(big, cpus=2) == 2
    assert auto_workers(big[:2], cpus=64) == 6  # one per `least` bytes of input
    assert auto_workers(big[:1], cpus=4) == 3
    assert auto_workers(big, cpus=64) == 8  # at most 8
    assert auto_workers([tmp_path / "gone.pdf"], cpus=4) == 1


def test_forked_workers_start_on_less_input_than_spawned_ones() -> None:
    assert AUTO_MIN_BYTES_FORK < AUTO_MIN_BYTES


def test_resolve_workers(tmp_path: Path) -> None:
    assert resolve_workers(3, []) == 3
    assert resolve_workers("auto", [_sized(tmp_path / "a.pdf", 100)]) == 1
    assert resolve_workers(0, []) >= 1
    with pytest.raises(ConfigError, match="workers must be 'auto' or an integer"):
        resolve_workers("many", [])
    with pytest.raises(ConfigError, match="ParsePool workers"):
        ParsePool(workers=-2)


def test_auto_is_the_default_and_parses_in_process_for_small_corpora() -> None:
    assert IngestConfig().workers == "auto"
    with ParsePool(workers="auto", files=sorted(EXAMPLES.iterdir())) as pool:
        assert pool.workers == 1
        jobs = [(Source.from_path(EXAMPLES / "lab_safety_guide.pdf"), PdfParser(ocr="never"))]
        [(_, chunks, error)] = list(pool.map(jobs))
        assert error is None and chunks
        assert pool._executor is None  # no process was started


def _stored(rag: Pipeline, path: Path) -> set[str]:
    return set(rag.store.chunk_ids(Source.from_path(path).document_id))


def test_auto_workers_give_the_same_chunk_ids_as_one(tmp_path: Path, monkeypatch) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(EXAMPLES, docs)
    make_long_pdf(docs / "long.pdf", 30, text="Page of a longer manual.")
    results = {}
    for workers in (1, "auto"):
        if workers == "auto":  # make this small corpus count as big, on 2 CPUs
            monkeypatch.setattr(pool_module, "AUTO_MIN_BYTES", 1)
            monkeypatch.setattr(pool_module, "AUTO_MIN_BYTES_FORK", 1)
            monkeypatch.setattr(pool_module, "_cpus", lambda: 2)
        rag = Pipeline(parsers=[PdfParser(ocr="never"), TextParser()],
                       embedders={"bm25": Bm25Embedder()},
                       store=QdrantStore(path=str(tmp_path / f"store{workers}")),
                       ingest=IngestConfig(split_pages=7, workers=workers))
        with rag:
            report = rag.ingest([docs], progress=False)
            assert not report.skipped
            results[workers] = (
                [(Path(d.path).name, d.pages, d.added) for d in report.documents],
                {p.name: _stored(rag, p) for p in sorted(docs.iterdir())},
            )
    assert auto_workers([docs / "long.pdf"]) == 2
    assert results[1] == results["auto"]
    assert len(results["auto"][1]["long.pdf"]) == 30
