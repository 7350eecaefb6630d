"""How parser workers start (``fork`` where safe, else ``spawn``) and that it changes
nothing in what an ingest stores."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from ragnest.errors import ConfigError
from ragnest.ingest import start
from ragnest.ingest.pool import ParsePool
from ragnest.ingest.start import FORK_UNSAFE_MODULES, start_method
from ragnest.media import ocr, render
from ragnest.parsers import PdfParser, TextParser
from ragnest.types import Source
from tests._long_pdf import make_long_pdf

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "docs"
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork is Linux-only")


@pytest.fixture
def no_unsafe_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a lite ingest: none of the runtimes that rule fork out is imported."""
    for name in FORK_UNSAFE_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.delenv("RAGNEST_WORKER_START", raising=False)


@linux
def test_fork_on_linux_when_no_unsafe_runtime_is_loaded(no_unsafe_runtime) -> None:
    assert start_method() == "fork"


@linux
@pytest.mark.parametrize("name", FORK_UNSAFE_MODULES)
def test_spawn_when_the_parent_holds_a_runtime_that_does_not_survive_fork(
        no_unsafe_runtime, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setitem(sys.modules, name, type(sys)(name))
    assert start_method() == "spawn"


def test_the_environment_overrides_and_is_checked() -> None:
    assert start_method({"RAGNEST_WORKER_START": " Spawn "}) == "spawn"
    with pytest.raises(ConfigError, match="RAGNEST_WORKER_START='threads' is not a start"):
        start_method({"RAGNEST_WORKER_START": "threads"})


def _state(_: int) -> dict:
    """What a worker sees after its initializer ran (a task for the pool)."""
    return {"pid": os.getpid(), "ppid": os.getppid(),
            "ocr": ocr._default is None, "render": render._default is None,
            "sigterm": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
            "sigint": signal.getsignal(signal.SIGINT) == signal.SIG_IGN,
            "stdout": sys.stdout is sys.stderr is sys.__stderr__}


@linux
def test_a_forked_worker_drops_the_parents_defaults_and_handlers(no_unsafe_runtime) -> None:
    render.default_renderer()  # the parent's, with its lock and open documents
    ocr.get_engine()
    with ParsePool(workers=2) as pool:
        executor = pool._pool()
        old = signal.getsignal(signal.SIGTERM)
        assert old is not signal.SIG_DFL  # the pool's own handler, in the parent
        seen = list(executor.map(_state, range(4)))
    assert render._default is not None and ocr._default is not None  # the parent keeps its
    for state in seen:
        assert state["ppid"] == os.getpid() and state["pid"] != os.getpid()
        assert all(state[k] for k in ("ocr", "render", "sigterm", "sigint", "stdout")), state


def test_reset_after_fork_in_this_process_restores_what_it_touches(monkeypatch) -> None:
    """The reset itself, run here: defaults forgotten, SIGTERM default, streams the
    process's own (the test puts everything back)."""
    monkeypatch.setattr(ocr, "_default", ocr.get_engine())
    monkeypatch.setattr(render, "_default", render.default_renderer())
    monkeypatch.setattr(ocr, "_default_lock", ocr._default_lock)
    monkeypatch.setattr(ocr, "_inherited", [])
    monkeypatch.setattr(render, "_inherited", [])
    monkeypatch.setattr(render, "_default_lock", render._default_lock)
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    old = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        start.reset_after_fork()
        assert ocr._default is None and render._default is None
        # kept, not freed: an inherited ONNX session must not be destroyed in the child
        assert len(ocr._inherited) == 1 and len(render._inherited) == 1
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        assert sys.stderr is sys.__stderr__
    finally:
        signal.signal(signal.SIGTERM, old)


def _chunks(method: str | None, docs: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    if method:
        monkeypatch.setenv("RAGNEST_WORKER_START", method)
    jobs = [(Source.from_path(p), PdfParser(ocr="never") if p.suffix == ".pdf" else TextParser())
            for p in sorted(docs.iterdir())]
    with ParsePool(workers=1 if method is None else 2, split_pages=7) as pool:
        out = [(s.name, [(c.id, c.page, c.text) for c in chunks], err)
               for s, chunks, err in pool.map(jobs)]
        if method:
            assert pool._executor is not None
            assert pool._executor._mp_context.get_start_method() == method
    return out


@linux
def test_forked_spawned_and_in_process_parses_are_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_unsafe_runtime) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for p in EXAMPLES.iterdir():
        (docs / p.name).write_bytes(p.read_bytes())
    make_long_pdf(docs / "long.pdf", 30, text="Page of a longer manual.")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 not really")
    here = _chunks(None, docs, monkeypatch)
    errors = {name: str(err) for name, _, err in here if err is not None}
    assert list(errors) == ["broken.pdf"] and "not a valid PDF" in errors["broken.pdf"]
    for method in ("fork", "spawn"):
        there = _chunks(method, docs, monkeypatch)
        assert [(n, c) for n, c, _ in there] == [(n, c) for n, c, _ in here], method
        assert [str(e) for _, _, e in there] == [str(e) for _, _, e in here], method
    assert sum(len(c) for n, c, _ in here if n == "long.pdf") == 30
