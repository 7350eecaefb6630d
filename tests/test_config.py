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


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_value_errors_name_the_file_and_the_key_path(tmp_path):
    data = deep_merge(MINIMAL, {"pipeline": {"retrieval": {"k": "5"}}})
    bad = _write(tmp_path, "bad.yaml", yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(bad, env={})
    assert str(info.value) == f"{bad}: pipeline.retrieval.k: expects an integer, got '5' (a string)"
    data = deep_merge(MINIMAL, {"pipeline": {"ingest": {"workers": -1, "batch_sise": 8}}})
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(bad, env={})
    assert str(info.value).splitlines() == [
        f"{bad}: pipeline.ingest: unknown key 'batch_sise' for pipeline.ingest; "
        "did you mean 'batch_size'? (known: batch_size, embed_in_workers, engine, ray, split_pages, "
        "workers)",
        f"{bad}: pipeline.ingest.workers: must be at least 0, got -1 (an integer)",
        f"{bad}: pipeline.ingest.workers: expects an integer or one of 'auto', got -1 "
        "(an integer)",
    ]


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"components": {"pdf": "parser/pdf"}},
         "src.yaml: components.pdf: expects a mapping, got 'parser/pdf' (a string)"),
        ({"components": {"pdf": {"type": 3}}},
         "src.yaml: components.pdf.type: expects a string, got 3 (an integer)"),
        ({"components": {"ocr": {"params": {}}}},
         "src.yaml: components.ocr: missing required key 'type' for a component"),
        ({"components": {"pdf": {"type": "parser/pdf", "params": ["dpi"]}}},
         "src.yaml: components.pdf.params: expects a mapping or null, got ['dpi'] (a list)"),
        ({"pipeline": {"parsers": 3}},
         "src.yaml: pipeline.parsers: expects a string or a list of strings or null, got 3 (an integer)"),
        ({"pipeline": {"retrieval": {"fusion": "rfr"}}},
         "src.yaml: pipeline.retrieval.fusion: 'rfr' is not one of 'rrf', 'dbsf', 'relative'; "
         "did you mean 'rrf'?"),
        ({"pipeline": {"retrieval": {"weights": {"bm25": "high"}}}},
         "src.yaml: pipeline.retrieval.weights.bm25: expects a number, got 'high' (a string)"),
        ({"pipeline": {"retrieval": {"image_ocr": "yes"}}},
         "src.yaml: pipeline.retrieval.image_ocr: expects true or false or one of 'auto', "
         "got 'yes' (a string)"),
        ({"pipeline": {"ingest": []}},
         "src.yaml: pipeline.ingest: expects a mapping or null, got [] (a list)"),
        ({"version": 2}, "src.yaml: version: 2 is not one of 1"),
        ({"name": 7}, "src.yaml: name: expects a string or null, got 7 (an integer)"),
    ],
)
def test_structure_errors_in_plain_words(patch, message):
    with pytest.raises(ConfigError) as info:
        parse_config(deep_merge(MINIMAL, patch), env={}, source="src.yaml")
    assert str(info.value) == message


def test_missing_sections_and_empty_components():
    with pytest.raises(ConfigError, match="^src.yaml: missing required key 'pipeline' for a pipeline file$"):
        parse_config({"components": MINIMAL["components"]}, env={}, source="src.yaml")
    with pytest.raises(ConfigError, match="'components' must map names"):
        parse_config({**MINIMAL, "components": {}}, env={}, source="src.yaml")


def test_interpolated_values_are_checked_after_interpolation():
    data = deep_merge(MINIMAL, {"pipeline": {"retrieval": {"k": "${K:-7}"}}})
    assert parse_config(data, env={}).retrieval.k == 7
    assert parse_config(data, env={"K": "3"}).retrieval.k == 3
    with pytest.raises(ConfigError, match=r"retrieval\.k: must be at least 1, got 0"):
        parse_config(data, env={"K": "0"})
    with pytest.raises(ConfigError, match=r"retrieval\.k: expects an integer, got 'many'"):
        parse_config(data, env={"K": "many"})


def test_profile_keys_are_checked_and_name_the_profile(tmp_path):
    prof = _write(tmp_path, "p.yaml", "pipelin:\n  retrieval: {k: 3}\n")
    with pytest.raises(ConfigError) as info:
        load_config("lite", profile=str(prof), env={})
    assert str(info.value).startswith(f"{prof}: unknown key 'pipelin' for a profile; did you mean 'pipeline'?")


def test_python_built_configs_use_the_same_rules():
    from ragnest.config import IngestConfig, RetrievalConfig

    assert RetrievalConfig(k=3, weights={"dense": 1}).k == 3
    with pytest.raises(ConfigError, match="^RetrievalConfig.fusion: 'magic' is not one of 'rrf', 'dbsf', 'relative'$"):
        RetrievalConfig(fusion="magic")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^RetrievalConfig.k: must be at least 1, got 0 \(an integer\)$"):
        RetrievalConfig(k=0)
    with pytest.raises(ConfigError, match=r"^RetrievalConfig.k: expects an integer, got '5'"):
        RetrievalConfig(k="5")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^IngestConfig.workers: must be at least 0"):
        IngestConfig(workers=-1)
    with pytest.raises(ConfigError, match=r"^IngestConfig.batch_size: must be at least 1"):
        IngestConfig(batch_size=0)


def test_fusion_choices_are_declared_once():
    import typing

    from ragnest.config import RetrievalConfig
    from ragnest.types import FUSIONS, Fusion, SearchRequest

    assert FUSIONS == typing.get_args(Fusion) == ("rrf", "dbsf", "relative")
    assert typing.get_type_hints(RetrievalConfig)["fusion"] == Fusion
    assert typing.get_type_hints(SearchRequest)["fusion"] == Fusion


def test_source_names_component_params_but_is_not_configuration(tmp_path):
    cfg = load_config("lite", env={"RAGNEST_STORE": str(tmp_path)})
    assert cfg.params_where("dense") == f"{cfg.source}: components.dense.params"
    assert cfg.source.endswith("lite.yaml")
    assert "source" not in cfg.to_dict()
    again = parse_config(yaml.safe_load(cfg.to_yaml()), env={}, source="elsewhere.yaml")
    assert again == cfg
