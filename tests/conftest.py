"""Shared fixtures. Model hubs are blocked: tests must never download anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "docs"


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory):
    """``tiny_vlm(family)``: the path of a tiny random-weight image-text-to-text checkpoint
    (qwen2_vl, qwen2_5_vl, qwen3_vl, idefics3), built once per session."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from ragnest.testing.tiny_models import VLM_BUILDERS

    built: dict[str, str] = {}

    def get(family: str) -> str:
        if family not in built:
            built[family] = str(VLM_BUILDERS[family](tmp_path_factory.mktemp(f"vlm-{family}")))
        return built[family]

    return get
