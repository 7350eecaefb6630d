from __future__ import annotations

import pytest
import yaml

from ragnest.config import deep_merge, interpolate, load_config, parse_config
from ragnest.errors import ConfigError

MINIMAL = {
    "components": {
        "pdf": {"type": "parser/pdf"},
        "bm25": {"type": "embedder/bm25"},
        "store": {"type": "store/qdrant", "params": {"path": "${STORE_DIR:-/tmp/x}"}},
    },
    "pipeline": {"parsers": ["pdf"], "embedders": ["bm25"], "store": "store"},
}


def test_interpolation_with_defaults_and_types():
    env = {"A": "1", "NAME": "docs"}
    assert interpolate("${NAME}", env) == "docs"
    assert interpolate("x-${NAME}-${B:-y}", env) == "x-docs-y"
    assert interpolate("${A}", env) == 1
    assert interpolate("${FLAG:-true}", env) is True
    assert interpolate({"a": ["${NAME}"]}, env) == {"a": ["docs"]}
    with pytest.raises(ConfigError, match="'MISSING' is not set"):
        interpolate("${MISSING}", env)


def test_parse_minimal_and_env():
    cfg = parse_config(MINIMAL, env={"STORE_DIR": "/data/s"})
    assert cfg.components["store"].params["path"] == "/data/s"
    assert cfg.parsers == ["pdf"] and cfg.embedders == ["bm25"] and cfg.store == "store"


def test_round_trip_to_dict():
    cfg = parse_config(MINIMAL, env={})
    again = parse_config(yaml.safe_load(cfg.to_yaml()), env={})
    assert again == cfg


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"pipline": {}}, "did you mean 'pipeline'"),
        ({"pipeline": {"parsers": ["pdf"], "embedders": ["bm25"], "store": "store", "retreival": {}}},
         "did you mean 'retrieval'"),
        ({"pipeline": {"parsers": ["pfd"], "embedders": ["bm25"], "store": "store"}},
         "did you mean 'pdf'"),
        ({"pipeline": {"parsers": ["pdf"], "embedders": ["pdf"], "store": "store"}},
         "needs a embedder"),
        ({"pipeline": {"parsers": ["pdf"], "embedders": ["bm25"], "store": "store",
                       "retrieval": {"fusion": "magic"}}}, "not one of"),
        ({"pipeline": {"parsers": ["pdf"], "embedders": ["bm25"], "store": "store",
                       "retrieval": {"weights": {"dense": 1}}}}, "not an embedder"),
        ({"pipeline": {"parsers": ["pdf"], "embedders": [], "store": "store"}}, "at least one embedder"),
    ],
)
def test_errors_are_clear(patch, message):
    data = deep_merge(MINIMAL, patch)
    if "pipline" in patch:
        data.pop("pipeline")
    with pytest.raises(ConfigError, match=message):
        parse_config(data, env={})


def test_component_keys_rejected():
    data = deep_merge(MINIMAL, {"components": {"pdf": {"type": "parser/pdf", "parms": {}}}})
    with pytest.raises(ConfigError, match="did you mean 'params'"):
        parse_config(data, env={})


def test_secrets_only_from_env():
    data = deep_merge(MINIMAL, {"components": {"store": {"params": {"api_key": "hunter2"}}}})
    with pytest.raises(ConfigError, match="secrets must come from the environment"):
        parse_config(data, env={})
    data = deep_merge(MINIMAL, {"components": {"store": {"params": {"api_key": "${QDRANT_API_KEY}"}}}})
    assert parse_config(data, env={"QDRANT_API_KEY": "k"}).components["store"].params["api_key"] == "k"


def test_import_paths_need_opt_in():
    data = deep_merge(MINIMAL, {"components": {"pdf": {"type": "ragnest.parsers.pdf:PdfParser"}}})
    with pytest.raises(ConfigError, match="import path"):
        parse_config(data, env={})
    assert parse_config(data, env={}, allow_import_paths=True).components["pdf"].type.endswith("PdfParser")


def test_shipped_lite_pipeline_and_profiles(tmp_path):
    cfg = load_config("lite", env={"RAGNEST_STORE": str(tmp_path)})
    assert cfg.components["store"].params["path"] == str(tmp_path)
    mem = load_config("pipelines/lite.yaml", profile="memory", env={})
    assert mem.components["store"].params["location"] == ":memory:"
    assert mem.components["store"].params["path"] is None
    with pytest.raises(ConfigError, match="QDRANT_URL"):
        load_config("lite", profile="server", env={})
    srv = load_config("lite", profile="server", env={"QDRANT_URL": "http://q:6333"})
    assert srv.components["store"].params["url"] == "http://q:6333"


def test_profile_cannot_invent_components(tmp_path):
    prof = tmp_path / "p.yaml"
    prof.write_text("components:\n  ghost: {type: parser/pdf}\n")
    with pytest.raises(ConfigError, match="ghost"):
        load_config("lite", profile=str(prof), env={})


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("components: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("components: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(unsafe)
