from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest

from ragnest import registry
from ragnest.errors import ComponentNotFoundError, ConfigError, MissingDependencyError


def test_listing_imports_nothing():
    before = set(sys.modules)
    comps = registry.list_components()
    assert "embedder/wordllama" in comps and "store/qdrant" in comps
    assert comps["embedder/wordllama"].extra == "lite"
    new = set(sys.modules) - before
    assert not any(m.startswith(("ragnest.embedders", "ragnest.stores", "wordllama")) for m in new)


def test_list_by_kind():
    assert set(registry.list_components("parser")) >= {"parser/pdf", "parser/text"}
    assert all(k.startswith("store/") for k in registry.list_components("store"))


def test_unknown_type_suggests_close_names():
    with pytest.raises(ComponentNotFoundError, match="did you mean 'embedder/wordllama'"):
        registry.resolve("embedder/wordlama")


def test_bad_type_name():
    with pytest.raises(ConfigError, match="kind/name"):
        registry.resolve("wordllama")


def test_import_paths_need_opt_in():
    with pytest.raises(ConfigError, match="not allowed"):
        registry.resolve("ragnest.stores.qdrant:QdrantStore")
    cls = registry.resolve("ragnest.stores.qdrant:QdrantStore", allow_import_paths=True)
    assert cls.__name__ == "QdrantStore"


def test_missing_dependency_names_the_extra(tmp_path, monkeypatch):
    mod = tmp_path / "needs_missing_pkg.py"
    mod.write_text("import definitely_not_installed_pkg_xyz\nclass C: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.register("embedder/needs-missing", "needs_missing_pkg:C", extra="hf")
    try:
        with pytest.raises(MissingDependencyError, match=r"ragnest\[hf\]") as info:
            registry.resolve("embedder/needs-missing")
        assert isinstance(info.value.__cause__, ModuleNotFoundError)
    finally:
        registry._registry.pop("embedder/needs-missing", None)


def test_missing_module_is_not_found():
    registry.register("parser/ghost", "ragnest.parsers.ghost_module:Ghost")
    try:
        with pytest.raises(ComponentNotFoundError, match="does not exist"):
            registry.resolve("parser/ghost")
    finally:
        registry._registry.pop("parser/ghost", None)


@dataclass(kw_only=True)
class _Toy:
    size: int = 3
    name: str = "x"
    ratio: float = 0.5
    tags: list[str] | None = None

    def warm_up(self) -> None: ...
    def close(self) -> None: ...


def test_param_validation(monkeypatch):
    registry.register("generator/toy", f"{__name__}:_Toy")
    try:
        obj = registry.create("generator/toy", {"size": 4, "ratio": 1})
        assert obj.size == 4 and obj.ratio == 1
        with pytest.raises(ConfigError, match="did you mean 'size'"):
            registry.create("generator/toy", {"sise": 4})
        with pytest.raises(ConfigError, match="expects"):
            registry.create("generator/toy", {"size": "big"})
        with pytest.raises(ConfigError, match="expects"):
            registry.create("generator/toy", {"size": True})
    finally:
        registry._registry.pop("generator/toy", None)


def test_entry_point_plugins(monkeypatch):
    class EP:
        name = "reranker/plugin-toy"
        value = f"{__name__}:_Toy"

    monkeypatch.setattr(registry.importlib_metadata, "entry_points", lambda group: [EP()])
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    try:
        assert "reranker/plugin-toy" in registry.list_components("reranker")
        assert registry.resolve("reranker/plugin-toy") is _Toy
    finally:
        registry._registry.pop("reranker/plugin-toy", None)


def test_type_name_of_round_trips():
    cls = registry.resolve("store/qdrant")
    assert registry.type_name_of(cls(path="/nonexistent/ragnest-test")) == "store/qdrant"


def test_create_names_where_the_params_come_from():
    where = "pipelines/x.yaml: components.pdf.params"
    with pytest.raises(ConfigError) as info:
        registry.create("parser/pdf", {"dpi": "96"}, where=where)
    assert str(info.value) == f"{where}.dpi: expects an integer, got '96' (a string)"
    with pytest.raises(ConfigError, match=r"^parser/pdf params: unknown parameter 'chunkng' for "
                                          r"PdfParser; did you mean 'chunking'\?"):
        registry.create("parser/pdf", {"chunkng": "page"})


@dataclass(kw_only=True)
class _Picky:
    size: int = 3

    def __post_init__(self) -> None:
        if self.size % 2 == 0:
            raise ValueError("size must be odd")


def test_constructor_errors_become_config_errors_with_where():
    registry.register("generator/picky", f"{__name__}:_Picky")
    try:
        where = "pipelines/x.yaml: components.picky.params"
        with pytest.raises(ConfigError) as info:
            registry.create("generator/picky", {"size": 4}, where=where)
        assert str(info.value) == f"{where}: size must be odd"
        assert isinstance(info.value.__cause__, ValueError)
    finally:
        registry._registry.pop("generator/picky", None)


def test_validate_params_with_the_nested_ladder():
    cls = registry.resolve("embedder/wordllama")
    with pytest.raises(ConfigError, match=r"^d\.ladder\[0\]: expects a mapping, got 'coarse'"):
        registry.validate_params(cls, {"ladder": ["coarse"]}, where="d")


@dataclass(kw_only=True)
class _Unresolvable:
    size: "MissingName" = 3  # type: ignore[name-defined]  # noqa: F821, UP037


def test_unresolvable_hints_are_an_error_not_a_skip():
    registry.register("generator/unresolvable", f"{__name__}:_Unresolvable")
    try:
        with pytest.raises(ConfigError, match="annotations do not resolve"):
            registry.create("generator/unresolvable", {"size": 4})
    finally:
        registry._registry.pop("generator/unresolvable", None)
