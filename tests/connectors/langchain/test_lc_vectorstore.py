"""RagnestVectorStore: a LangChain app's vector store, swapped; its Embeddings kept."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.vectorstores import InMemoryVectorStore, VectorStore
from langchain_ragnest import LangChainEmbedder, RagnestVectorStore

from ragnest import Pipeline, RetrievalConfig, StoreMismatchError
from ragnest.embedders.bm25 import Bm25Embedder
from ragnest.parsers.pdf import PdfParser
from ragnest.protocols import Embedder
from ragnest.stores import QdrantStore

TEXTS = [
    "Descale the espresso machine every 8 weeks with one DS-20 sachet.",
    "The warranty lasts two years from the date of purchase.",
    "Wear safety goggles in the laboratory at all times.",
    "Rinse your eyes at the eyewash station for 15 minutes.",
]
METAS = [
    {"source": "nimbus.pdf", "topic": "care", "page": 5},
    {"source": "nimbus.pdf", "topic": "warranty", "page": 8},
    {"source": "lab.pdf", "topic": "safety", "page": 1},
    {"source": "lab.pdf", "topic": "safety", "page": 3},
]


def embeddings() -> Embeddings:
    return DeterministicFakeEmbedding(size=16)


def existing_app(store: VectorStore) -> dict[str, object]:
    """An app written against InMemoryVectorStore, used as it was written."""
    ids = store.add_texts(TEXTS, metadatas=METAS, ids=["care", "warranty", "goggles", "eyes"])
    out: dict[str, object] = {"ids": ids}
    out["exact"] = [d.id for d in store.similarity_search(TEXTS[1], k=1)]
    out["scored"] = [(d.id, round(s, 4)) for d, s in store.similarity_search_with_score(TEXTS[2], k=1)]
    out["filtered"] = sorted(d.id for d in store.similarity_search(
        TEXTS[3], k=4, filter=lambda d: d.metadata["topic"] == "safety"))
    store.delete(["warranty"])
    out["after_delete"] = sorted(d.id for d in store.similarity_search(TEXTS[0], k=4))
    out["by_id"] = [d.page_content for d in store.get_by_ids(["care", "missing"])]
    retriever = store.as_retriever(search_kwargs={"k": 1})
    out["retriever"] = [d.id for d in retriever.invoke(TEXTS[3])]
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 3})
    out["mmr"] = len(mmr.invoke(TEXTS[0]))
    return out


def test_an_in_memory_app_works_unchanged(tmp_path: Path):
    before = existing_app(InMemoryVectorStore(embeddings()))
    with RagnestVectorStore(embeddings(), path=str(tmp_path / "s")) as store:
        after = existing_app(store)
    assert after == before
    assert before["after_delete"] == ["care", "eyes", "goggles"]
    assert before["scored"] == [("goggles", 1.0)]


def test_bm25_fusion_finds_what_fake_embeddings_cannot():
    """The embeddings are random; BM25 on the same text still finds the right document."""
    query = "how often to descale the espresso machine"
    with RagnestVectorStore(embeddings(), bm25=True) as fused:
        fused.add_texts(TEXTS, METAS, ids=["care", "warranty", "goggles", "eyes"])
        assert fused.similarity_search(query, k=1)[0].id == "care"
        hit = fused.search_hits(query, k=1, explain=True)[0]
        assert hit.chunk.document_id == "care"
        assert {"final", "embedding", "bm25", "embedding-dense"} <= set(hit.scores_by_stage)
        plain = fused.search_hits(query, k=1)[0]  # by default no per-stage recomputation
        assert plain.chunk.id == hit.chunk.id and "embedding-dense" not in plain.scores_by_stage
    with RagnestVectorStore(embeddings(), bm25=False) as plain:
        plain.add_texts(TEXTS, METAS)
        hit = plain.search_hits(query, k=1)[0]
        assert "bm25" not in hit.scores_by_stage


def test_metadata_filters_run_in_the_engine():
    with RagnestVectorStore(embeddings()) as store:
        store.add_texts(TEXTS, METAS, ids=["care", "warranty", "goggles", "eyes"])
        q = "safety goggles"
        assert {d.id for d in store.similarity_search(q, k=4, filter={"topic": "safety"})} == {
            "goggles", "eyes"}
        assert {d.id for d in store.similarity_search(q, k=4, filter={"page": {"gte": 5}})} == {
            "care", "warranty"}
        got = store.similarity_search(q, k=4, filter={"topic": ["care", "warranty"]})
        assert {d.id for d in got} == {"care", "warranty"}
        with pytest.raises(ValueError, match="filter must be a mapping"):
            store.similarity_search(q, filter="topic = safety")


def test_scores_relevance_and_search_by_vector():
    emb = embeddings()
    with RagnestVectorStore(emb) as store:
        store.add_texts(TEXTS, ids=["care", "warranty", "goggles", "eyes"])
        scored = store.similarity_search_with_relevance_scores(TEXTS[0], k=4)
        assert scored[0][0].id == "care" and scored[0][1] == pytest.approx(1.0)
        assert all(0.0 <= s <= 1.0 for _, s in scored)
        strict = store.as_retriever(search_type="similarity_score_threshold",
                                    search_kwargs={"score_threshold": 0.99, "k": 4})
        assert [d.id for d in strict.invoke(TEXTS[0])] == ["care"]
        docs = store.similarity_search_by_vector(emb.embed_query(TEXTS[3]), k=2)
        assert docs[0].id == "eyes" and len(docs) == 2
        assert store.max_marginal_relevance_search_by_vector(emb.embed_query(TEXTS[3]), k=1)[0].id == "eyes"
        with pytest.raises(ValueError, match="mapping filter"):
            store.similarity_search_by_vector([0.0] * 16, filter=lambda d: True)


def test_upsert_rewrites_only_changes(tmp_path: Path):
    with RagnestVectorStore(embeddings(), path=str(tmp_path / "s")) as store:
        store.add_texts(TEXTS[:2], METAS[:2], ids=["a", "b"])
        assert store.store.stats()["chunks"] == 2
        store.add_texts(TEXTS[:2], METAS[:2], ids=["a", "b"])  # unchanged: nothing written
        store.add_texts([TEXTS[0]], [{"topic": "new"}], ids=["a"])  # metadata alone changed
        assert store.store.stats()["chunks"] == 2
        assert store.get_by_ids(["a"])[0].metadata == {"topic": "new"}
        with pytest.raises(ValueError, match="ids must be as long as texts"):
            store.add_texts(TEXTS[:2], ids=["only-one"])
        with pytest.raises(ValueError, match="ids must be as long as documents"):
            store.add_documents([Document(page_content="x")], ids=["a", "b"])
        with pytest.raises(ValueError, match="metadatas must be as long as texts"):
            store.add_texts(TEXTS[:2], [{}])
        with pytest.raises(ValueError, match="'bad'.*JSON-basic"):
            store.add_texts(["x"], [{"when": dt.date(2026, 1, 1)}], ids=["bad"])
        assert store.get_by_ids(["bad"]) == []
        assert store.delete(None) is True


def test_persistent_store_reopens_and_refuses_another_model(tmp_path: Path):
    path = str(tmp_path / "s")
    with RagnestVectorStore(embeddings(), path=path, collection_name="docs") as store:
        store.add_texts(TEXTS, ids=["a", "b", "c", "d"])
    with RagnestVectorStore.from_existing_collection(
            embeddings(), path=path, collection_name="docs") as again:
        assert [d.id for d in again.get_by_ids(["c"])] == ["c"]
    with pytest.raises(StoreMismatchError):
        with RagnestVectorStore(DeterministicFakeEmbedding(size=8), path=path,
                                collection_name="docs") as other:
            other.similarity_search("x")


def test_from_documents_and_other_backends(tmp_path: Path):
    docs = [Document(page_content=t, metadata=m) for t, m in zip(TEXTS, METAS)]
    store = RagnestVectorStore.from_documents(docs, embeddings(), location=":memory:")
    try:
        assert store.similarity_search(TEXTS[2], k=1)[0].page_content == TEXTS[2]
    finally:
        store.close()
    own = QdrantStore(path=str(tmp_path / "own"), collection="mine")
    with RagnestVectorStore(embeddings(), store=own) as store:
        store.add_documents(docs)
        assert store.store is own and own.stats()["chunks"] == 4
    with pytest.raises(Exception, match="at most one of path=, location=, url=, store="):
        RagnestVectorStore(embeddings(), path=str(tmp_path), location=":memory:")


def test_temporary_store_is_removed_on_close():
    store = RagnestVectorStore(embeddings())
    store.add_texts(["x"])
    folder = Path(store.store.path)  # type: ignore[attr-defined]
    assert folder.exists()
    store.close()
    assert not folder.exists()
    store.close()  # idempotent


async def test_async_methods():
    with RagnestVectorStore(embeddings()) as store:
        ids = await store.aadd_texts(TEXTS, METAS)
        docs = await store.asimilarity_search(TEXTS[1], k=1)
        assert docs[0].id == ids[1]
        assert len(await store.aget_by_ids(ids)) == 4
        await store.adelete(ids[:2])
        assert len(await store.aget_by_ids(ids)) == 2
        found = await asyncio.gather(*(store.asimilarity_search(t, k=1) for t in TEXTS * 3))
        assert [docs[0].page_content for docs in found[2:4]] == TEXTS[2:4]


def test_langchain_embeddings_as_a_ragnest_ladder_embedder(tmp_path: Path, docs_dir: Path):
    """Any LangChain Embeddings, in a ragnest pipeline, next to BM25."""
    emb = LangChainEmbedder(embeddings=DeterministicFakeEmbedding(size=32))
    assert isinstance(emb, Embedder)
    # the fake embeddings are noise: weigh BM25 up (weights are per embedder name)
    with Pipeline(parsers=[PdfParser()], embedders={"lc": emb, "bm25": Bm25Embedder()},
                  store=QdrantStore(path=str(tmp_path)),
                  retrieval=RetrievalConfig(weights={"lc": 0.1, "bm25": 1.0})) as rag:
        rag.ingest([docs_dir / "nimbus3_handbook.pdf"], progress=False)
        assert rag.vector_specs()[0].name == "lc-dense"
        hits = rag.retrieve("How often should the machine be descaled?", k=1, explain=True)
        assert hits[0].chunk.page == 5
        assert {"lc", "bm25", "lc-dense"} <= set(hits[0].scores_by_stage)
    assert emb.identity()["embeddings"].endswith(":DeterministicFakeEmbedding")
    with pytest.raises(Exception, match="lacks embed_documents, embed_query"):
        LangChainEmbedder(embeddings=object())
