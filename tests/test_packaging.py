"""pyproject lists every subpackage, and the shipped data is where the code looks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def test_every_subpackage_is_listed():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(data["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "ragnest").rglob("__init__.py")
    }
    assert found <= listed, found - listed
    for name, folder in data["tool"]["setuptools"]["package-dir"].items():
        assert name in listed and (ROOT / folder).is_dir()


def test_required_top_level():
    for name in ("pyproject.toml", "ragnest", "connectors", "pipelines", "examples", "tests", "configs"):
        assert (ROOT / name).exists(), name


def test_torch_only_in_extras():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    core = " ".join(data["project"]["dependencies"])
    lite = " ".join(data["project"]["optional-dependencies"]["lite"])
    for heavy in ("torch", "transformers", "unstructured"):
        assert heavy not in core and heavy not in lite
