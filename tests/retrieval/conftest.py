"""Fixtures shared by the retrieval tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragnest import Pipeline

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples" / "docs"


@pytest.fixture(scope="package")
def rag(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """The lite pipeline over examples/docs, ingested once for the retrieval tests."""
    store = tmp_path_factory.mktemp("retrieval") / "db"
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}) as pipe:
        pipe.ingest([EXAMPLES], progress=False)
        yield pipe
