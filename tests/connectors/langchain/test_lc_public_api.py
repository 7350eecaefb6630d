"""The package's surface: what it exports, and that it uses only ragnest's public API."""

from __future__ import annotations

import ast
from pathlib import Path

import langchain_ragnest

PACKAGE = Path(langchain_ragnest.__file__).resolve().parent


def test_exports_are_declared_and_importable():
    assert set(langchain_ragnest.__all__) >= {
        "RagnestRetriever", "RagnestVectorStore", "RagnestLoader", "RagnestReranker",
        "ChatModelGenerator", "LangChainEmbedder", "to_content_blocks", "image_blocks"}
    for name in langchain_ragnest.__all__:
        assert getattr(langchain_ragnest, name) is not None
    for module in PACKAGE.glob("*.py"):
        tree = ast.parse(module.read_text())
        assert any(isinstance(n, ast.Assign) and any(
            getattr(t, "id", None) == "__all__" for t in n.targets) for n in tree.body), module


def test_only_public_ragnest_modules_and_names_are_imported():
    for module in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ragnest"):
                parts = (node.module or "").split(".")
                assert not any(p.startswith("_") for p in parts), f"{module.name}: {node.module}"
                names = [a.name for a in node.names]
                assert not any(n.startswith("_") for n in names), f"{module.name}: {names}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("ragnest"):
                        assert not any(p.startswith("_") for p in alias.name.split("."))
