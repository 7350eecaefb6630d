"""The LangChain examples run offline: examples/langchain_app.py and the notebook
examples/langchain_lcel.ipynb (executed headless with nbclient and an ipykernel kernel)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import FakeListChatModel
from langchain_ragnest import RagnestRetriever
from nbclient import NotebookClient

from ragnest import Pipeline

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
NOTEBOOK = EXAMPLES / "langchain_lcel.ipynb"


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("langchain_app", EXAMPLES / "langchain_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("langchain_app", module)
    spec.loader.exec_module(module)
    return module


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.messages: list[Any] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.messages.extend(messages)


def test_langchain_app_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    load_app().main(str(tmp_path / "store"))
    out = capsys.readouterr().out
    assert "ingested 3 files, 12 pages" in out
    assert out.count("answer: Descale the machine every 8 weeks [P1].") == 2
    assert "nimbus3_handbook.pdf p. 5  score" in out and "#page=5" in out
    second = out.split("2. RagnestVectorStore")[1]
    assert "nimbus3_handbook.pdf p. 5" in second


def test_the_chain_sends_the_retrieved_pages_to_the_model(pipeline: Pipeline):
    app = load_app()
    recorder = Recorder()
    llm = FakeListChatModel(responses=["Every 8 weeks [P1]."], callbacks=[recorder])
    chain = app.build_chain(RagnestRetriever(pipeline=pipeline, k=2), llm)
    assert chain.invoke(app.QUESTION) == "Every 8 weeks [P1]."
    prompt = recorder.messages[0][-1].text
    assert "[P1] nimbus3_handbook.pdf p. 5\n" in prompt
    assert "Descale the machine every 8 weeks" in prompt
    assert prompt.endswith(f"Question: {app.QUESTION}")


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def test_notebook_runs_headless_offline(tmp_path: Path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # ipc transport: the kernel's channels are Unix sockets (no TCP port is opened); an
    # absolute prefix, since the kernel runs in examples/ and the client here
    km = KernelManager(kernel_name="python3", transport="ipc", ip=str(tmp_path / "kernel"))
    client = NotebookClient(nb, km=km, timeout=180, allow_errors=False,
                            resources={"metadata": {"path": str(EXAMPLES)}})
    client.execute()
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "ingested 3 files, 12 pages" in text
    assert "Descale the machine every 8 weeks [P1]." in text
    assert "nimbus3_handbook.pdf p. 5" in text
    assert "Every 8 weeks [P1]. ['nimbus3_handbook.pdf p. 5']" in text
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/jpeg" in o.get("data", {})]
    assert len(images) == 1  # the page screenshot, shown inline
