"""langchain-tests' standard suites, offline, on the embedded Qdrant store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_ragnest import RagnestRetriever, RagnestVectorStore
from langchain_tests.integration_tests import (
    RetrieversIntegrationTests,
    VectorStoreIntegrationTests,
)

from .langchain_ragnest_testing import sample_pipeline


class TestRagnestRetrieverStandard(RetrieversIntegrationTests):
    """``RagnestRetriever`` over the ``lite`` pipeline with ``examples/docs`` ingested."""

    @property
    def retriever_constructor(self) -> type[RagnestRetriever]:
        return RagnestRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"pipeline": sample_pipeline()}

    @property
    def retriever_query_example(self) -> str:
        return "How often should the espresso machine be descaled?"


class TestRagnestVectorStoreStandard(VectorStoreIntegrationTests):
    """``RagnestVectorStore`` on an empty embedded (Qdrant Edge) store per test."""

    @pytest.fixture()
    def vectorstore(self, tmp_path: Path) -> Iterator[VectorStore]:  # type: ignore[override]
        store = RagnestVectorStore(self.get_embeddings(), path=str(tmp_path / "store"))
        try:
            yield store
        finally:
            store.close()
