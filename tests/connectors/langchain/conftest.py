"""Shared fixtures of langchain-ragnest's tests: offline (sockets disabled), the real
embedded store, the sample documents of the repository's ``examples/docs``.

Every test here runs with Python sockets disabled (pytest-socket); Unix sockets stay
allowed (asyncio's event loop and the notebook kernel's local channels use them).
Async tests (the standard suites' ``async def`` tests included) run under pytest-asyncio
whatever the root configuration's ``asyncio_mode`` is.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_socket

from ragnest import Pipeline

from .langchain_ragnest_testing import DOCS, REPO, close_sample_pipeline, sample_pipeline

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Mark this folder's ``async def`` tests (inherited standard tests included) for
    pytest-asyncio before it looks for the mark, so they run in its strict mode too."""
    if not inspect.iscoroutinefunction(obj) or HERE not in Path(str(collector.path)).parents:
        return
    if not any(m.name == "asyncio" for m in getattr(obj, "pytestmark", ())):
        pytest.mark.asyncio(obj)


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    """No test of this package reaches the network."""
    pytest_socket.disable_socket(allow_unix_socket=True)
    try:
        yield
    finally:
        pytest_socket.enable_socket()


@pytest.fixture(scope="session", autouse=True)
def _close_sample_pipeline() -> Iterator[None]:
    yield
    close_sample_pipeline()


@pytest.fixture
def pipeline() -> Pipeline:
    """The shared sample pipeline (read-only: tests must not ingest into it)."""
    return sample_pipeline()


@pytest.fixture
def docs_dir() -> Path:
    return DOCS


@pytest.fixture
def repo_root() -> Path:
    return REPO
