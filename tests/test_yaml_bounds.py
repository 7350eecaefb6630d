"""YAML alias expansion is bounded: an alias bomb is refused at once with a clear message."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ragnest._yaml import safe_load
from ragnest.config import load_config
from ragnest.errors import ConfigError

from .reliability._procs import start_ragnest


def alias_bomb(levels: int = 9, fan: int = 12) -> str:
    """A pipeline file whose store parameters hide fan**levels repetitions (~2.6 KB)."""
    rows = ["  laugh_level_0: &laugh_level_0 [" + ", ".join(["ha ha ha ha"] * fan) + "]"]
    for i in range(1, levels + 1):
        rows.append(f"  laugh_level_{i}: &laugh_level_{i} [" + ", ".join([f"*laugh_level_{i - 1}"] * fan) + "]")
    return ("components:\n"
            "  store:\n    type: store/qdrant\n    params:\n      path: /tmp/s\n      extra:\n"
            + "\n".join("    " + r for r in rows) + "\n"
            "pipeline: {parsers: [], embedders: [], store: store}\n")


def test_the_bomb_is_small() -> None:
    assert 2000 < len(alias_bomb()) < 3500


def test_alias_bomb_refused_fast(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"bomb.yaml: the YAML expands to more than 100,000 "
                                          r"nodes through its aliases"):
        load_config(path)
    assert time.perf_counter() - start < 1.0


def test_recursive_alias_refused() -> None:
    with pytest.raises(ConfigError, match="recursive"):
        safe_load("a: &a [1, *a]\n", where="x.yaml")


def test_ordinary_anchors_still_work() -> None:
    text = "base: &b {k: 5, fusion: rrf}\nmine: *b\nlist: [*b, *b]\n"
    assert safe_load(text) == {"base": {"k": 5, "fusion": "rrf"}, "mine": {"k": 5, "fusion": "rrf"},
                               "list": [{"k": 5, "fusion": "rrf"}] * 2}
    assert safe_load("") is None


def test_cli_refuses_the_bomb_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    proc = start_ragnest(["validate", str(path)])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert b"alias bomb" in err and b"Traceback" not in err
