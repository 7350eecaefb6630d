"""The boundary between ragnest and its connectors: ragnest never imports a connector or
an app framework; connectors import only ragnest's public modules (no ``_private`` ones).
The LlamaIndex packages follow LlamaIndex's namespace convention."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONNECTORS = ROOT / "connectors"
FRAMEWORKS = ("llama_index", "langchain", "langchain_core", "langchain_ragnest")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
            out += [f"{node.module}.{a.name}" for a in node.names if node.module == "ragnest"]
    return out


def test_ragnest_imports_no_connector_or_framework():
    bad = {
        f"{p.relative_to(ROOT)}: {m}"
        for p in (ROOT / "ragnest").rglob("*.py")
        for m in imported_modules(p)
        if m.split(".")[0] in FRAMEWORKS
    }
    assert not bad, bad


def test_connectors_import_only_public_ragnest_modules():
    bad = {
        f"{p.relative_to(ROOT)}: {m}"
        for p in CONNECTORS.rglob("*.py")
        for m in imported_modules(p)
        if m.split(".")[0] == "ragnest" and any(part.startswith("_") for part in m.split("."))
    }
    assert not bad, f"connectors must use ragnest's public API: {sorted(bad)}"


LLAMA_PACKAGES = sorted(CONNECTORS.glob("llama-index-*"))


def test_there_are_llama_index_packages():
    names = {p.name for p in LLAMA_PACKAGES}
    assert {"llama-index-retrievers-ragnest", "llama-index-readers-ragnest",
            "llama-index-postprocessor-ragnest-rerank"} <= names


@pytest.mark.parametrize("package", LLAMA_PACKAGES, ids=lambda p: p.name)
def test_llama_index_namespace_convention(package: Path):
    meta = tomllib.loads((package / "pyproject.toml").read_text())
    assert meta["project"]["name"] == package.name
    assert (package / meta["project"]["readme"]).is_file()
    import_path = meta["tool"]["llamahub"]["import_path"]
    parts = import_path.split(".")
    assert parts[0] == "llama_index" and len(parts) == 3, import_path
    # no __init__.py at the namespace levels (llama_index/, llama_index/<kind>/) ...
    assert not (package / "llama_index" / "__init__.py").exists()
    assert not (package / "llama_index" / parts[1] / "__init__.py").exists()
    # ... and a regular package with an explicit __all__ at the leaf
    leaf = package.joinpath(*parts)
    init = leaf / "__init__.py"
    assert init.is_file() and "__all__" in init.read_text()
    assert (leaf / "py.typed").is_file()
    assert meta["tool"]["hatch"]["build"]["targets"]["wheel"]["include"] == ["llama_index/"]
    deps = " ".join(meta["project"]["dependencies"])
    assert "ragnest" in deps and "llama-index-core" in deps
