"""ragnest._validate: one strict validation of parameter mappings, in plain words.

This module has ``from __future__ import annotations``: every class below has string
annotations, which the validator must resolve.
"""

from __future__ import annotations

import dataclasses
from dataclasses import InitVar, dataclass, field
from typing import Annotated, Any, ClassVar, Literal

import pytest

from ragnest import _validate
from ragnest._validate import AtLeast, describe, did_you_mean, validate_params
from ragnest.embedders.wordllama import WordLlamaEmbedder
from ragnest.errors import ConfigError
from ragnest.parsers.pdf import PdfParser
from ragnest.stores.qdrant import QdrantStore

W = "pipelines/x.yaml: components.c.params"


@dataclass(kw_only=True)
class Toy:
    model: str
    size: int = 3
    ratio: float = 0.5
    mode: Literal["fast", "exact"] = "fast"
    tags: list[str] | None = None
    names: str | list[str] | None = None
    weights: dict[str, float] = field(default_factory=dict)
    box: tuple[float, float] | None = None
    levels: list[dict[str, Any]] = field(default_factory=list)
    k: Annotated[int, AtLeast(1)] = 5
    kind: ClassVar[str] = "toy"
    seed: InitVar[int] = 0
    cache: dict[str, Any] = field(default_factory=dict, init=False)

    def __post_init__(self, seed: int) -> None:
        Toy.built += 1


Toy.built = 0  # type: ignore[attr-defined]


def problem(params: dict[str, Any], target: Any = Toy, where: str = W) -> str:
    with pytest.raises(ConfigError) as info:
        validate_params(target, params, where=where)
    return str(info.value)


def test_valid_params_pass_without_building_or_changing_anything():
    params = {"model": "m", "size": 4, "ratio": 1, "mode": "exact", "tags": ["a"],
              "names": "n", "weights": {"a": 1}, "box": [1, 2.5], "seed": 3,
              "levels": [{"name": "coarse", "dim": 64}], "k": 1}
    before = dict(params)
    built = Toy.built  # type: ignore[attr-defined]
    validate_params(Toy, params, where=W)
    assert Toy.built == built  # type: ignore[attr-defined]
    assert params == before and type(params["ratio"]) is int and type(params["box"]) is list


@pytest.mark.parametrize(
    "params, message",
    [
        ({"size": "5"}, f"{W}.size: expects an integer, got '5' (a string)"),
        ({"size": True}, f"{W}.size: expects an integer, got True (a boolean)"),
        ({"size": 5.0}, f"{W}.size: expects an integer, got 5.0 (a number)"),
        ({"ratio": "0.5"}, f"{W}.ratio: expects a number, got '0.5' (a string)"),
        ({"model": 3}, f"{W}.model: expects a string, got 3 (an integer)"),
        ({"tags": "a"}, f"{W}.tags: expects a list of strings or null, got 'a' (a string)"),
        ({"tags": ["a", 1]}, f"{W}.tags[1]: expects a string, got 1 (an integer)"),
        ({"box": [1, "2"]}, f"{W}.box[1]: expects a number, got '2' (a string)"),
        ({"weights": {"a": "x"}}, f"{W}.weights.a: expects a number, got 'x' (a string)"),
        ({"weights": {1: 1.0}}, f"{W}.weights: keys must be strings, got 1 (an integer)"),
        ({"k": 0}, f"{W}.k: must be at least 1, got 0 (an integer)"),
    ],
)
def test_wrong_types_are_named_in_plain_words(params, message):
    assert problem({"model": "m", **params}) == message


def test_unknown_key_suggests_the_close_name_and_lists_the_known():
    text = problem({"model": "m", "sise": 4})
    assert text.startswith(f"{W}: unknown parameter 'sise' for Toy; did you mean 'size' or 'seed'?")
    assert "(known: box, k, levels, mode, model, names, ratio, seed, size, tags, weights)" in text
    assert "did you mean" not in problem({"model": "m", "zzzzzz": 1})


def test_class_vars_and_non_init_fields_are_not_parameters():
    assert "unknown parameter 'kind'" in problem({"model": "m", "kind": "x"})
    assert "unknown parameter 'cache'" in problem({"model": "m", "cache": {}})


def test_literal_choices_are_listed_with_a_suggestion():
    assert problem({"model": "m", "mode": "fats"}) == (
        f"{W}.mode: 'fats' is not one of 'fast', 'exact'; did you mean 'fast'?"
    )
    assert problem({"model": "m", "mode": 1}) == f"{W}.mode: 1 is not one of 'fast', 'exact'"
    assert problem({"quality": "hi"}, Choice, "c") == (
        "c.quality: 'hi' is not one of 'low', 'high', null; did you mean 'high'?"
    )


@dataclass(kw_only=True)
class Choice:
    quality: Literal["low", "high"] | None = None


def test_missing_required_parameter():
    assert problem({}) == f"{W}: missing required parameter 'model' for Toy"


def test_a_union_is_reported_once_as_a_whole():
    assert problem({"model": "m", "names": ["a", 3]}) == (
        f"{W}.names: expects a string or a list of strings or null, got ['a', 3] (a list)"
    )


def test_every_problem_gets_a_line_unknown_keys_first():
    lines = problem({"size": "5", "sise": 1}).splitlines()
    assert lines[0].startswith(f"{W}: unknown parameter 'sise'")
    assert lines[1] == f"{W}: missing required parameter 'model' for Toy"
    assert lines[2] == f"{W}.size: expects an integer, got '5' (a string)"


def test_nested_ladder_list_of_mappings_on_a_real_embedder():
    where = "pipelines/x.yaml: components.dense.params"
    validate_params(WordLlamaEmbedder, {"ladder": [{"name": "c", "dim": 64}]}, where=where)
    assert problem({"ladder": "coarse"}, WordLlamaEmbedder, where) == (
        f"{where}.ladder: expects a list of mappings, got 'coarse' (a string)"
    )
    assert problem({"ladder": [{"name": "c", "dim": 64}, "fine"]}, WordLlamaEmbedder, where) == (
        f"{where}.ladder[1]: expects a mapping, got 'fine' (a string)"
    )
    assert problem({"batch_size": "64"}, WordLlamaEmbedder, where) == (
        f"{where}.batch_size: expects an integer, got '64' (a string)"
    )


def test_real_parser_and_store_parameters():
    validate_params(PdfParser, {"chunking": "interleaved", "dpi": 150, "max_pages": None},
                    where="pdf")
    assert "did you mean 'chunking'" in problem({"chunkng": "page"}, PdfParser, "pdf")
    assert problem({"max_pages": "10"}, PdfParser, "pdf") == (
        "pdf.max_pages: expects an integer or null, got '10' (a string)"
    )
    validate_params(QdrantStore, {"path": "/tmp/s", "hnsw_m": 0}, where="store")
    assert problem({"hnsw_ef": 1.5}, QdrantStore, "store") == (
        "store.hnsw_ef: expects an integer, got 1.5 (a number)"
    )


@dataclass
class Unresolvable:
    x: NotDefinedAnywhere = None  # type: ignore[name-defined]  # noqa: F821


def test_unresolvable_annotations_raise_instead_of_skipping():
    text = problem({"x": 1}, Unresolvable, "components.u.params")
    assert text.startswith("components.u.params: Unresolvable: its parameter annotations")
    assert "NotDefinedAnywhere" in text


class Plain:
    """Not a dataclass: checked against ``__init__``'s keyword parameters."""

    def __init__(self, size: int, label: str = "x", *, flag: bool = False) -> None:
        self.size = size


class Open:
    def __init__(self, size: int = 1, **extra: Any) -> None:
        self.size = size


def test_plain_classes_are_checked_by_their_signature():
    validate_params(Plain, {"size": 1, "flag": True}, where="p")
    assert problem({}, Plain, "p") == "p: missing required parameter 'size' for Plain"
    assert problem({"size": 1, "flag": "yes"}, Plain, "p") == (
        "p.flag: expects true or false, got 'yes' (a string)"
    )
    assert "did you mean 'label'" in problem({"size": 1, "labl": "y"}, Plain, "p")
    validate_params(Open, {"anything": object()}, where="o")  # **extra takes any key
    assert problem({"size": "1"}, Open, "o") == "o.size: expects an integer, got '1' (a string)"


def test_a_file_root_is_followed_by_a_space():
    assert problem({"model": 3}, where="x.yaml:") == "x.yaml: model: expects a string, got 3 (an integer)"
    assert problem({}, where="x.yaml:") == "x.yaml: missing required parameter 'model' for Toy"


def test_owner_and_noun_in_messages():
    with pytest.raises(ConfigError, match=r"^f.yaml: unknown key 'sise' for a section; did you mean"):
        validate_params(Toy, {"model": "m", "sise": 1}, where="f.yaml", noun="key", owner="a section")


def test_not_a_mapping():
    assert problem(["model"]) == f"{W}: expects a mapping of parameters to values, got ['model'] (a list)"  # type: ignore[arg-type]


def test_one_validator_per_class_is_cached():
    assert _validate._spec(Toy, "a") is _validate._spec(Toy, "b")


def test_dataclass_fields_are_read_not_instances():
    # a frozen, slotted dataclass works the same (nothing is instantiated)
    @dataclass(frozen=True, slots=True, kw_only=True)
    class Frozen:
        n: int = 1

    validate_params(Frozen, {"n": 2}, where="f")
    assert "expects an integer" in problem({"n": "2"}, Frozen, "f")
    assert dataclasses.is_dataclass(Frozen)


def test_did_you_mean_and_describe():
    assert did_you_mean("retreival", ["retrieval", "ingest"]) == "; did you mean 'retrieval'?"
    assert did_you_mean("x", []) == ""
    assert describe(list[dict[str, Any]]) == "a list of mappings"
    assert describe(dict[str, float]) == "a mapping to numbers"
    assert describe(Literal["a", "b"] | None) == "one of 'a', 'b' or null"
    assert describe(Annotated[int, AtLeast(1)]) == "an integer"
    assert describe(PdfParser) == "a PdfParser"
