"""ThumbnailEmbedder: appearance fingerprints of visuals, matched across zoom and margins."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pymupdf
import pytest

from ragnest.embedders.thumbnail import ThumbnailEmbedder, fingerprint
from ragnest.errors import ConfigError
from ragnest.parsers.pdf import PdfParser
from ragnest.protocols import Embedder
from ragnest.types import ImageRef, Query, Source

HANDBOOK = Path(__file__).resolve().parents[2] / "examples" / "docs" / "nimbus3_handbook.pdf"


@pytest.fixture(scope="module")
def pages():
    return list(PdfParser(ocr="never").parse(Source.from_path(HANDBOOK)))


def test_contract() -> None:
    emb = ThumbnailEmbedder(grid=16)
    assert isinstance(emb, Embedder)
    assert ThumbnailEmbedder(**dataclasses.asdict(emb)) == emb
    (spec,) = emb.vector_specs()
    assert (spec.name, spec.kind, spec.dim) == ("crops", "multi", 256)
    assert emb.identity()["grid"] == 16
    with pytest.raises(ConfigError):
        ThumbnailEmbedder(grid=4)


def test_fingerprint_ignores_margins_and_zoom() -> None:
    rng = np.random.default_rng(0)
    art = (rng.random((12, 18)) * 200).astype(np.uint8).repeat(15, axis=0).repeat(15, axis=1)
    img = np.stack([art] * 3, axis=-1)
    padded = np.pad(img, ((30, 5), (12, 40), (0, 0)), constant_values=255)
    half = img[::2, ::2]
    a, b, c = fingerprint(img), fingerprint(padded), fingerprint(half)
    assert a.shape == (1024,) and abs(float(np.linalg.norm(a)) - 1) < 1e-5
    assert float(a @ b) > 0.999 and float(a @ c) > 0.95
    other = fingerprint(np.stack([np.flipud(art)] * 3, axis=-1))
    assert float(a @ other) < 0.5
    assert fingerprint(np.full((40, 40, 3), 255, np.uint8)) is None  # blank
    assert fingerprint(np.zeros((40, 40, 3), np.uint8)) is None  # one flat box


def test_documents_and_queries(pages, tmp_path: Path) -> None:
    emb = ThumbnailEmbedder()
    out = emb.embed_documents(pages)
    with_visuals = [c.page for c, v in zip(pages, out) if v]
    assert with_visuals == [3, 6, 7]  # the figure and the two tables
    # Page 3: the figure with the labels it absorbed, and its drawing alone (a region
    # the parser lists in the chunk's metadata), since a screenshot may show either.
    assert pages[2].metadata["visual_regions"]
    assert out[2]["crops"].shape == (2, 1024) and out[5]["crops"].dtype == np.float32
    assert out[5]["crops"].shape == (1, 1024)
    assert emb.embed_query(Query(text="descaling")) is None
    # A screenshot of the figure, at another zoom and with extra margin, matches page 3.
    figure = next(s for s in pages[2].segments if s.role == "figure")
    x0, y0, x1, y1 = figure.bbox
    shot = tmp_path / "shot.png"
    with pymupdf.open(HANDBOOK) as doc:
        doc[2].get_pixmap(dpi=100, clip=(x0 - 15, y0 - 10, x1 + 8, y1 + 12)).save(shot)
    q = emb.embed_query(Query(image=ImageRef(blob=str(shot))))["crops"]
    scores = {c.page: float((v["crops"] @ q.T).max()) for c, v in zip(pages, out) if v}
    assert max(scores, key=scores.get) == 3 and scores[3] > 0.9


def test_owns_its_renderer_and_pickles_without_open_documents(pages) -> None:
    """The embedder renders through its own Renderer (made in warm_up, closed in close);
    a used embedder pickles for a worker process without its open documents."""
    import pickle

    emb = ThumbnailEmbedder()
    emb.warm_up()
    first = emb.embed_documents(pages[2:3])
    assert emb._renderer is not None and emb._renderer.open_documents == 1
    clone = pickle.loads(pickle.dumps(emb))
    assert clone == emb and clone._renderer.open_documents == 0
    assert np.array_equal(clone.embed_documents(pages[2:3])[0]["crops"], first[0]["crops"])
    emb.close()
    assert emb._renderer is None
    assert np.array_equal(emb.embed_documents(pages[2:3])[0]["crops"], first[0]["crops"])
