"""RagnestReranker: a ragnest reranker as a LangChain document compressor."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pytest
from langchain_core.documents import Document
from langchain_core.documents.compressor import BaseDocumentCompressor
from langchain_ragnest import RagnestReranker, RagnestRetriever

from ragnest import Pipeline, registry
from ragnest.protocols import Reranker
from ragnest.types import Hit, Query

_WORD = re.compile(r"[a-z0-9]+")


@dataclass(kw_only=True)
class OverlapReranker:
    """A ragnest reranker for tests: the share of the query's words a chunk holds;
    it records whether it saw the chunks' images (a vision model would read them)."""

    warmed: int = 0

    def warm_up(self) -> None:
        self.warmed += 1

    def close(self) -> None:
        self.warmed = 0

    def rerank(self, query: Query, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        words = set(_WORD.findall((query.text or "").lower()))
        scored = []
        for hit in hits:
            text = set(_WORD.findall(hit.chunk.text.lower()))
            score = len(words & text) / max(1, len(words))
            stages = {**hit.scores_by_stage, "rerank": score,
                      "saw_image": float(hit.chunk.image is not None)}
            scored.append(replace(hit, score=score, scores_by_stage=stages))
        scored.sort(key=lambda h: -h.score)
        return scored[:top_k] if top_k else scored


QUESTION = "How long should I rinse my eyes at the eyewash station?"


def test_reranks_ragnest_documents_with_their_images(pipeline: Pipeline):
    docs = RagnestRetriever(pipeline=pipeline, k=5).invoke("eyes rinse descale warranty")
    inner = OverlapReranker()
    assert isinstance(inner, Reranker)
    reranker = RagnestReranker(reranker=inner, top_n=2)
    assert isinstance(reranker, BaseDocumentCompressor)
    best = reranker.compress_documents(docs, QUESTION)
    assert len(best) == 2 and inner.warmed == 1
    assert best[0].metadata["source"].endswith("lab_safety_guide.pdf")
    meta = best[0].metadata
    assert meta["relevance_score"] == meta["score"] == meta["scores_by_stage"]["rerank"]
    assert meta["scores_by_stage"]["saw_image"] == 1.0  # the page image reached the reranker
    assert "bm25" in meta["scores_by_stage"]  # the retrieval stages are kept
    assert best[0].id in {d.id for d in docs}
    assert all("relevance_score" not in d.metadata for d in docs)  # inputs unchanged
    reranker.compress_documents(docs, QUESTION)
    assert inner.warmed == 1  # warmed once


async def test_any_documents_async_and_all_kept():
    docs = [Document(page_content="Warranty: two years."),
            Document(page_content="Rinse your eyes for 15 minutes at the eyewash station.",
                     metadata={"source": "lab.pdf"})]
    out = await RagnestReranker(reranker=OverlapReranker()).acompress_documents(docs, QUESTION)
    assert [d.page_content for d in out] == [docs[1].page_content, docs[0].page_content]
    assert out[0].metadata["source"] == "lab.pdf"
    assert await RagnestReranker(reranker=OverlapReranker()).acompress_documents([], QUESTION) == []


def test_from_type_and_bad_rerankers():
    registry.register("reranker/lc-test-overlap", f"{__name__}:OverlapReranker")
    reranker = RagnestReranker.from_type("reranker/lc-test-overlap", {}, top_n=1)
    assert isinstance(reranker.reranker, OverlapReranker) and reranker.top_n == 1
    with pytest.raises(ValueError, match="expected a 'reranker/...' component"):
        RagnestReranker.from_type("generator/extractive")
    with pytest.raises(ValueError, match="has no rerank"):
        RagnestReranker(reranker=object())
