"""configs/models/*.yaml presets parse and name real families and transformers classes.

Nothing is downloaded: presets are checked against the embedder classes (their
``transformers_classes``) and, when transformers is installed, against its exported classes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ragnest import registry
from ragnest.ladder import Ladder, parse_ladder

ALL_PRESETS = sorted((Path(__file__).resolve().parents[2] / "configs" / "models").glob("*.yaml"))
# embedder presets (reranker and generator presets: tests/test_vlm_presets.py)
PRESETS = [p for p in ALL_PRESETS
           if yaml.safe_load(p.read_text()).get("type", "").startswith("embedder/")]
FAMILIES = ("colqwen2", "colpali", "dse", "clip", "siglip")
CLASSES = {f"embedder/{f}": registry.resolve(f"embedder/{f}") for f in FAMILIES}
EXPECTED_MODELS = {
    "vidore/colqwen2-v1.0-hf",
    "vidore/colpali-v1.3-hf",
    "MrLight/dse-qwen2-2b-mrl-v1",
    "google/siglip-so400m-patch14-384",
    "openai/clip-vit-base-patch32",
}


def _load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict) and set(data) <= {"type", "params"}, path.name
    return data


def test_every_expected_checkpoint_has_a_preset() -> None:
    assert {_load(p)["params"]["model"] for p in PRESETS} >= EXPECTED_MODELS


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_builds_its_component(path: Path) -> None:
    data = _load(path)
    cls = CLASSES[data["type"]]  # a known family
    emb = cls(**data["params"])  # cheap: nothing loaded
    assert emb._loaded is None
    assert f"embedder/{emb.family}" == data["type"] and emb.transformers_classes
    levels = parse_ladder(data["params"]["ladder"])
    assert levels[0].index == "hnsw"
    assert [s.name for s in emb.vector_specs()] == [lv.name for lv in levels]
    assert emb.parsed_ladder == Ladder(levels)


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_family_classes_exist_in_transformers(path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    for name in CLASSES[_load(path)["type"]].transformers_classes:
        assert hasattr(transformers, name), name
