"""The usage examples in the connectors' docstrings run (the root configuration collects
doctests under ragnest/ only)."""

from __future__ import annotations

import doctest
import importlib

import pytest

from .conftest import ROOT

MODULES = [
    "llama_index.retrievers.ragnest.nodes",
    "llama_index.retrievers.ragnest.base",
    "llama_index.readers.ragnest.base",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples read examples/docs
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result
