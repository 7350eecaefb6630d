"""Bm25Embedder: Qdrant Edge's built-in BM25 as ragnest sparse vectors."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("qdrant_edge")

from ragnest.embedders.bm25 import Bm25Embedder
from ragnest.errors import ConfigError
from ragnest.protocols import Embedder
from ragnest.types import Chunk, ImageRef, Query, SparseVector


def _chunk(text: str) -> Chunk:
    return Chunk(id="c", document_id="d", kind="page", text=text, page=1)


def test_spec_identity_and_contract() -> None:
    emb = Bm25Embedder(k=1.5)
    assert emb._model is None
    assert isinstance(emb, Embedder)
    (spec,) = emb.vector_specs()
    assert (spec.name, spec.kind, spec.modifier) == ("sparse", "sparse", "idf")
    ident = emb.identity()
    assert ident["k"] == 1.5 and ident["language"] == "english" and ident["b"] == 0.75
    assert type(emb)(**dataclasses.asdict(emb)).identity() == ident


def test_documents_and_queries_share_terms() -> None:
    emb = Bm25Embedder()
    (doc,) = emb.embed_documents([_chunk("Descaling the espresso machine: descale it monthly.")])
    vec = doc["sparse"]
    assert isinstance(vec, SparseVector)
    assert len(vec.indices) == len(vec.values) > 0
    assert list(vec.indices) == sorted(vec.indices)
    assert all(v > 0 for v in vec.values)
    q = emb.embed_query(Query(text="descale the espresso"))["sparse"]
    assert set(q.indices) <= set(vec.indices)  # stemming: descaling / descale match
    assert len(q.indices) == 2


def test_repeated_term_weighs_more() -> None:
    emb = Bm25Embedder()
    (doc,) = emb.embed_documents([_chunk("pump pump pump valve")])
    weights = dict(zip(doc["sparse"].indices, doc["sparse"].values))
    pump = emb.embed_query(Query(text="pump"))["sparse"].indices[0]
    valve = emb.embed_query(Query(text="valve"))["sparse"].indices[0]
    assert weights[pump] > weights[valve]


def test_empty_and_image_only() -> None:
    emb = Bm25Embedder()
    (doc,) = emb.embed_documents([_chunk("")])
    assert doc["sparse"].indices == ()
    assert emb.embed_query(Query(image=ImageRef(source="a.pdf", page=1))) is None


def test_bad_config() -> None:
    with pytest.raises(ConfigError):
        Bm25Embedder(b=2.0)
    with pytest.raises(ConfigError, match="klingon"):
        Bm25Embedder(language="klingon").warm_up()
