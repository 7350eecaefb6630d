"""Collect ``bench_*.py`` files when benchmarks are selected (``pytest -m benchmark``).

The default run (``-m 'not ... and not benchmark'`` in pyproject) does not even import
them, so a benchmark's heavy or optional imports cannot break ordinary test runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

# the "before" generator of bench_answers.py, kept verbatim: its doctests are not ours to run
collect_ignore = ["_extractive_before.py"]


def _benchmarks_selected(config: pytest.Config) -> bool:
    expr = config.getoption("markexpr") or ""
    return "benchmark" in expr and not re.search(r"\bnot\s+benchmark\b", expr)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("bench_")
        and _benchmarks_selected(parent.config)
    ):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
