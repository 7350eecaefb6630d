"""The example notebooks: committed without outputs, executed headless (nbclient + an
ipykernel kernel, offline, with a time limit per notebook), and the quickstart's HTML
shows page thumbnails and the score at every stage.

Every ``examples/*.ipynb`` is picked up. The kernel runs this checkout's ``ragnest``
(and the connectors' source folders where they are not installed). A notebook whose
third-party imports are missing (a LlamaIndex or LangChain notebook without those
packages) is skipped, naming them.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
#: Seconds one notebook may take, all cells together (they take a few seconds each here).
NOTEBOOK_TIMEOUT = 300
JPEG = "data:image/jpeg;base64,"

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")


def _source_paths() -> list[str]:
    """The checkout, and each connector folder (its package at the top, or under src/)."""
    paths = [str(ROOT)]
    for folder in sorted((ROOT / "connectors").iterdir()):
        if (folder / "pyproject.toml").is_file():
            paths.append(str(folder / "src" if (folder / "src").is_dir() else folder))
    return paths


def _imports(nb: Any) -> set[str]:
    """Top-level modules the notebook's code cells import (magics and shell lines skipped)."""
    found: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        code = "\n".join(line for line in cell.source.splitlines()
                         if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
    return found


def _missing(modules: set[str]) -> list[str]:
    saved = list(sys.path)
    sys.path[:0] = _source_paths()
    try:
        missing = []
        for name in sorted(modules):
            try:
                if importlib.util.find_spec(name) is None:
                    missing.append(name)
            except ImportError:  # a parent package is missing or broken
                missing.append(name)
        # name each missing package once: llama_index.core, not also llama_index.core.llms
        return [m for m in missing if not any(m.startswith(o + ".") for o in missing)]
    finally:
        sys.path[:] = saved


def read(path: Path) -> Any:
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path) -> None:
    nb = read(path)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, (f"{path.name}: cells {dirty} hold outputs; clear them before committing "
                       "(jupyter nbconvert --clear-output --inplace)")


_executed: dict[Path, Any] = {}


def execute(path: Path) -> Any:
    """``path`` executed in a fresh kernel in its own folder (once per test session)."""
    if path in _executed:
        return _executed[path]
    pytest.importorskip("nbclient", reason="nbclient is not installed (pip install nbclient)")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install ipykernel)")
    from nbclient import NotebookClient

    nb = read(path)
    missing = _missing(_imports(nb))
    if missing:
        pytest.skip(f"{path.name} needs {', '.join(missing)}, which is not installed")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*_source_paths(), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    deadline = time.monotonic() + NOTEBOOK_TIMEOUT
    client = NotebookClient(nb, timeout=NOTEBOOK_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})

    def before_cell(**_: Any) -> None:  # the time limit is per notebook, not per cell
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{path.name} ran past {NOTEBOOK_TIMEOUT} s")
        client.timeout = max(1, int(left))

    client.on_cell_execute = before_cell
    client.execute(env=env)
    _executed[path] = nb
    return nb


def outputs(nb: Any, mime: str) -> list[str]:
    return [out["data"][mime] for cell in nb.cells if cell.cell_type == "code"
            for out in cell.outputs if mime in out.get("data", {})]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path) -> None:
    nb = execute(path)
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out.output_type == "error"]
    assert not errors
    for html in outputs(nb, "text/html"):
        assert "<script" not in html.lower()


def test_quickstart_shows_thumbnails_and_stage_scores() -> None:
    nb = execute(EXAMPLES / "quickstart.ipynb")
    html = "\n".join(outputs(nb, "text/html"))
    assert html.count(JPEG) >= 10  # ingest report, chunks, hits, citations
    for stage in ("dense-coarse", "dense-mid", "dense-fine", "bm25", "final", "rerank"):
        assert f">{stage}<" in html, f"no {stage} score column in the quickstart's output"
    assert re.search(r"position:absolute;left:[\d.]+%", html), "no cited region drawn"
    rich = [out["data"] for cell in nb.cells if cell.cell_type == "code"
            for out in cell.outputs if "text/html" in out.get("data", {})]
    assert all("text/plain" in data for data in rich)  # the plain repr stays alongside


@pytest.mark.parametrize("name", ["quickstart.ipynb", "llamaindex.ipynb",
                                  "custom_component.ipynb"])
def test_expected_notebooks_exist(name: str) -> None:
    assert (EXAMPLES / name).is_file()
