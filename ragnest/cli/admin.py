"""``ragnest stats``, ``demo``, ``list`` and ``validate``."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ragnest.cli._app import (
    DEFAULT_PIPELINE,
    DEFAULT_WAIT,
    JsonOpt,
    PipelineOpt,
    ProfileOpt,
    StoreOpt,
    WaitOpt,
    _config,
    _errors_exit,
    _setup_logging,
    app,
    out,
)
from ragnest.cli.ingest import _print_report, _run_ingest
from ragnest.cli.query import _print_answer
from ragnest.config import load_config
from ragnest.errors import RagnestError
from ragnest.pipeline import Pipeline

__all__ = ['demo', 'list_cmd', 'stats', 'validate']


@app.command()
def stats(
    pipeline: PipelineOpt = DEFAULT_PIPELINE,
    store: StoreOpt = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
    wait: WaitOpt = DEFAULT_WAIT,
) -> None:
    """How many chunks and documents the store holds."""
    with _errors_exit():
        with Pipeline.from_config(_config(pipeline, store, profile, read_wait=wait)) as rag:
            info = rag.stats()
    if as_json:
        out.print_json(json.dumps(info, default=str))
    else:
        table = Table(title="store", show_header=False)
        for key, value in info.items():
            table.add_row(str(key), ", ".join(value) if isinstance(value, list) else str(value))
        out.print(table)


def _examples_dir() -> Path:
    from importlib import resources

    from ragnest.config import _REPO_ROOT

    candidate = _REPO_ROOT / "examples" / "docs"
    if candidate.is_dir():
        return candidate
    try:  # an installed wheel ships them as package data
        packaged = Path(str(resources.files("ragnest._examples")))
    except ModuleNotFoundError:
        packaged = None
    if packaged is not None and packaged.is_dir():
        return packaged
    raise RagnestError("sample documents not found (examples/docs)")


DEMO_QUESTION = "How often should I descale the espresso machine?"


@app.command()
def demo(
    question: Annotated[str, typer.Option("--question", "-q")] = DEMO_QUESTION,
    keep: Annotated[Optional[Path], typer.Option("--keep", help="Keep the demo store here.")] = None,
) -> None:
    """Ingest the shipped sample documents into a temporary store and answer a question."""
    _setup_logging(False)
    tmp = Path(tempfile.mkdtemp(prefix="ragnest-demo-"))
    store_dir = str(keep) if keep else str(tmp / "store")
    try:
        with _errors_exit():
            docs = _examples_dir()
            out.print(f"[bold]ingesting[/] sample documents from {docs}")
            with Pipeline.from_config(_config(DEFAULT_PIPELINE, store_dir, None)) as rag:
                report = _run_ingest(rag, [str(docs)], quiet=False)
                _print_report(report)
                out.print(f"\n[bold]question:[/] {question}")
                _print_answer(rag.query(question))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """List the available components (nothing is imported)."""
    from ragnest.registry import list_components

    comps = list_components()
    if as_json:
        out.print_json(json.dumps({k: {"target": v.target, "extra": v.extra, "summary": v.summary}
                                   for k, v in comps.items()}))
        return
    table = Table(title="components")
    for col in ("type", "extra", "what it is"):
        table.add_column(col)
    for name, entry in comps.items():
        table.add_row(name, entry.extra or "-", entry.summary)
    out.print(table)


@app.command()
def validate(
    file: Annotated[str, typer.Argument(help="Pipeline YAML to check.")],
    profile: ProfileOpt = None,
) -> None:
    """Check a pipeline YAML: keys, component types and parameters (loads no model)."""
    from ragnest import registry

    with _errors_exit():
        cfg = load_config(file, profile=profile)
        for name, comp in cfg.components.items():
            registry.create(comp.type, comp.params, where=cfg.params_where(name))
    out.print(f"[green]ok[/] {file}: {len(cfg.components)} components, "
              f"embedders {', '.join(cfg.embedders)}, store {cfg.store}")
