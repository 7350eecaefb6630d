"""The pipeline run one step at a time (notebooks): parse, embed, write, search, rerank,
answer, on the sample PDFs, the real embedded Qdrant store and the lite models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from ragnest import ConfigError, ParseError, Pipeline, RagnestError
from ragnest.types import Chunks, EmbeddedChunks, Hit, Hits, Query

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"
HANDBOOK = EXAMPLES / "nimbus3_handbook.pdf"
QUESTION = "How often should I descale the machine?"


class ReverseReranker:
    """A reranker that puts the last hit first (and says so in ``scores_by_stage``)."""

    def warm_up(self) -> None: ...

    def close(self) -> None: ...

    def rerank(self, query: Query, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        out = [replace(h, score=float(i), scores_by_stage={**h.scores_by_stage, "rerank": float(i)})
               for i, h in enumerate(hits)]
        return list(reversed(out))[:top_k]


@pytest.fixture
def rag(tmp_path):
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(tmp_path)}) as pipe:
        yield pipe


def test_step_by_step_equals_ingest_then_query(rag):
    chunks = rag.parse(HANDBOOK)
    assert isinstance(chunks, Chunks) and chunks.source.name == "nimbus3_handbook.pdf"
    assert [c.page for c in chunks] == list(range(1, 9))
    points = rag.embed(chunks)
    assert isinstance(points, EmbeddedChunks) and len(points) == len(chunks)
    assert {"dense-coarse", "dense-mid", "dense-fine", "bm25-sparse"} <= set(points[0].vectors)
    report = rag.write(points)
    assert (report.status, report.added, report.pages) == ("added", 8, 8)
    assert rag.write(points).status == "unchanged"
    # the document is stored as an ingest stores it: ingesting it again is a no-op
    assert rag.ingest([HANDBOOK], progress=False).documents[0].status == "unchanged"

    hits = rag.search(QUESTION, k=3)
    assert isinstance(hits, Hits) and len(hits) == 3 and hits.query.text == QUESTION
    assert hits[0].chunk.page == 5 and {"embed", "search"} <= set(hits.timings)
    assert [h.chunk.id for h in hits] == [h.chunk.id for h in rag.retrieve(QUESTION, k=3)]

    answer = rag.answer(QUESTION, hits)
    assert answer.found and answer.citations[0].page == 5
    assert {"search", "generate"} <= set(answer.timings)


def test_rerank_step(rag):
    rag.write(rag.embed(rag.parse(HANDBOOK)))
    hits = rag.search(QUESTION, k=4)
    with pytest.raises(ConfigError, match="no reranker"):
        rag.rerank(QUESTION, hits)
    reranked = rag.rerank(QUESTION, hits, reranker=ReverseReranker(), top_k=2)
    assert isinstance(reranked, Hits) and "rerank" in reranked.timings
    assert [h.chunk.id for h in reranked] == [hits[3].chunk.id, hits[2].chunk.id]
    assert "rerank" in reranked[0].scores_by_stage


def test_search_keeps_the_rerank_pool_when_a_reranker_follows(tmp_path):
    rag = Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(tmp_path)},
                             overrides={"pipeline": {"retrieval": {"k": 2, "rerank_k": 6}}})
    rag.reranker = ReverseReranker()
    with rag:
        rag.ingest([EXAMPLES], progress=False)
        assert len(rag.search(QUESTION)) == 6
        assert len(rag.search(QUESTION, k=3)) == 3


def test_step_errors_say_what_to_do(rag, tmp_path):
    with pytest.raises(ParseError, match="no such file"):
        rag.parse(tmp_path / "missing.pdf")
    (tmp_path / "data.xyz").write_bytes(b"\x00\x01binary")
    with pytest.raises(ParseError, match="unsupported file type '.xyz'"):
        rag.parse(tmp_path / "data.xyz")
    with pytest.raises(RagnestError, match="one parsed document"):
        rag.write(EmbeddedChunks())
    rag.generator = None
    with pytest.raises(ConfigError, match="no generator"):
        rag.answer(QUESTION, [])


def test_long_documents_show_a_progress_bar(rag, capsys, monkeypatch):
    from ragnest import steps

    monkeypatch.setattr(steps, "PROGRESS_PAGES", 3)
    chunks = rag.parse(HANDBOOK)
    assert len(chunks) == 8 and "parse nimbus3_handbook.pdf" in capsys.readouterr().err
    assert rag.parse(HANDBOOK, progress=False) == chunks
    assert capsys.readouterr().err == ""


def test_search_takes_the_keywords_of_retrieve(rag, tmp_path):
    rag.ingest([EXAMPLES], progress=False)
    lab = str((EXAMPLES / "lab_safety_guide.pdf").absolute())
    hits = rag.search("Who is the laboratory supervisor?", k=3, filters={"source": lab},
                      using=["bm25"], fusion="rrf", budgets={"coarse": 10})
    assert hits and {h.chunk.source for h in hits} == {lab}
    assert all(set(h.scores_by_stage) <= {"bm25", "final"} for h in hits)
    (tmp_path / "empty.pdf").write_bytes(b"")
    with pytest.raises(ParseError, match="empty"):
        rag.parse(tmp_path / "empty.pdf")
