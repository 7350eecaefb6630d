"""The vision-language presets (configs/models) and pipelines/vlm.yaml: they parse, build
their components without loading anything, and name real checkpoints whose families map
to transformers classes ragnest knows. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ragnest import registry
from ragnest._hf.vlm import FAMILIES
from ragnest.config import load_config

ROOT = Path(__file__).resolve().parent.parent
PRESETS = [p for p in sorted((ROOT / "configs" / "models").glob("*.yaml"))
           if yaml.safe_load(p.read_text())["type"] in ("reranker/vlm", "generator/vlm")]
#: The family (config.model_type) of each real checkpoint named in a preset or pipeline.
CHECKPOINTS = {
    "Qwen/Qwen2.5-VL-3B-Instruct": "qwen2_5_vl",
    "Qwen/Qwen2-VL-2B-Instruct": "qwen2_vl",
    "HuggingFaceTB/SmolVLM-500M-Instruct": "idefics3",
    "Qwen/Qwen3-VL-Reranker-2B": "qwen3_vl",
}


def test_every_named_checkpoint_has_a_preset() -> None:
    models = {yaml.safe_load(p.read_text())["params"]["model"] for p in PRESETS}
    assert models == set(CHECKPOINTS)
    adapters = {yaml.safe_load(p.read_text())["params"].get("adapter") for p in PRESETS}
    assert "lightonai/MonoQwen2-VL-v0.1" in adapters


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_builds_its_component_without_loading(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    assert set(data) <= {"type", "params"}
    comp = registry.create(data["type"], data["params"], where=path.name)
    assert comp._vlm is None and registry.type_name_of(comp) == data["type"]


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_maps_to_an_existing_transformers_class(path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    family = CHECKPOINTS[yaml.safe_load(path.read_text())["params"]["model"]]
    assert family in FAMILIES  # ragnest knows how the family reads pixels and answers
    cls = MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES[family]
    assert hasattr(transformers, cls), cls
    assert hasattr(transformers, "AutoModelForImageTextToText")
    assert hasattr(transformers, "AutoProcessor") and hasattr(transformers, "TextIteratorStreamer")


def test_the_vlm_pipeline_validates_and_names_real_checkpoints() -> None:
    cfg = load_config(ROOT / "pipelines" / "vlm.yaml", env={})
    for name, comp in cfg.components.items():
        registry.create(comp.type, comp.params, where=f"vlm.yaml: components.{name}")
    assert cfg.reranker == "rerank" and cfg.generator == "answer"
    assert cfg.components["pages"].params["model"] == "vidore/colqwen2-v1.0-hf"
    for slot in (cfg.reranker, cfg.generator):
        assert cfg.components[slot].params["model"] in CHECKPOINTS
    assert cfg.retrieval.rerank_k and cfg.retrieval.rerank_k >= cfg.retrieval.k


def test_ragnest_validate_passes_on_the_vlm_pipeline() -> None:
    from typer.testing import CliRunner

    from ragnest.cli import app

    result = CliRunner().invoke(app, ["validate", str(ROOT / "pipelines" / "vlm.yaml")])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output
