"""Shared fixtures of the LlamaIndex connector tests: the lite pipeline on the sample
documents (real parsers, real embedded Qdrant store, offline models), and a small
term-overlap reranker that follows ragnest's Reranker protocol.

The connectors are used as installed (``pip install -e connectors/llama-index-...``);
a checkout where they are not installed tests their source folders instead.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("llama_index.core", reason="llama-index-core is not installed "
                                               "(pip install 'llama-index-core==0.14.*')")

from ragnest import Pipeline  # noqa: E402
from ragnest.types import Hit, Query  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
CONNECTORS = sorted(ROOT.glob("connectors/llama-index-*"))
EXAMPLES = ROOT / "examples" / "docs"
QUESTION = "How often should I descale the machine?"

if importlib.util.find_spec("llama_index.retrievers.ragnest") is None:  # not installed
    sys.path[:0] = [str(p) for p in CONNECTORS]


class TermReranker:
    """Scores a hit by the share of the query's words its text holds (a ragnest Reranker)."""

    def warm_up(self) -> None: ...

    def close(self) -> None: ...

    def rerank(self, query: Query, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        words = set(re.findall(r"[a-z]{3,}", (query.text or "").lower()))
        out = []
        for hit in hits:
            have = set(re.findall(r"[a-z]{3,}", hit.chunk.text.lower()))
            score = len(words & have) / max(1, len(words))
            out.append(replace(hit, score=score,
                               scores_by_stage={**hit.scores_by_stage, "rerank": score}))
        out.sort(key=lambda h: -h.score)
        return out[:top_k] if top_k else out


@pytest.fixture(scope="session")
def rag(tmp_path_factory):
    """The lite pipeline with the sample documents ingested (shared: read only)."""
    pipe = Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(tmp_path_factory.mktemp("li"))})
    pipe.ingest([EXAMPLES], progress=False)
    yield pipe
    pipe.close()


@pytest.fixture
def reranker() -> TermReranker:
    return TermReranker()
