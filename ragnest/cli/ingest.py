"""``ragnest ingest`` and ``ragnest fit``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ragnest.cli._app import (
    DEFAULT_PIPELINE,
    JsonOpt,
    PipelineOpt,
    ProfileOpt,
    StoreOpt,
    WorkersOpt,
    _config,
    _errors_exit,
    _setup_logging,
    app,
    err,
    out,
)
from ragnest.collection import fitted_embedders
from ragnest.errors import ConfigError, StoreError
from ragnest.ingest import IngestReport, discover
from ragnest.ingest.signals import sigterm_unwinds
from ragnest.pipeline import Pipeline

__all__ = ['fit', 'ingest']


def _print_report(report: IngestReport, title: str = "ingest") -> None:
    if report.dry_run:
        title += " (dry run: nothing was changed)"
    table = Table(title=title, show_header=False)
    table.add_row("files ingested", str(report.files))
    table.add_row("pages", str(report.pages))
    table.add_row("chunks added", str(report.chunks_added))
    table.add_row("chunks unchanged", str(report.chunks_unchanged))
    table.add_row("chunks removed", str(report.chunks_removed))
    table.add_row("documents moved", str(report.documents_moved))
    table.add_row("documents removed", str(report.documents_removed))
    table.add_row("skipped files", str(len(report.skipped)))
    table.add_row("seconds", f"{report.seconds:.1f}")
    out.print(table)
    would = "would be " if report.dry_run else ""
    for d in report.documents:
        if d.status == "moved":
            out.print(f"[cyan]{would}moved[/] {escape(str(d.previous_path))} -> {escape(d.path)}")
        elif report.dry_run and d.status in ("added", "updated"):
            out.print(f"[green]{would}{d.status}[/] {escape(d.path)}")
    for d in report.removed:
        out.print(f"[red]{would}removed[/] {escape(d.path or d.document_id)} "
                  f"({d.removed} chunks)")
    for s in report.skipped:
        out.print(f"[yellow]skipped[/] {escape(s.path)}: {escape(s.reason)}")


def _run_ingest(rag: Pipeline, paths: list[str], *, quiet: bool,
                workers: int | str | None = None, sync: bool = False,
                dry_run: bool = False) -> IngestReport:
    """``rag.ingest`` (or ``rag.sync`` when ``sync``) with a progress bar on stderr."""

    def run(**kw: Any) -> IngestReport:
        if sync:
            return rag.sync(paths, workers=workers, dry_run=dry_run, **kw)
        return rag.ingest(paths, workers=workers, **kw)

    files, _ = discover(paths)
    if quiet or not files:
        return run(progress=False)
    with Progress(
        TextColumn("[bold]ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=len(files))

        def on_file(path: str, status: str) -> None:
            progress.update(task, advance=0 if status == "removed" else 1,
                            description=f"{Path(path).name}: {status}")

        return run(on_file=on_file)


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files and folders to ingest.")],
    pipeline: PipelineOpt = DEFAULT_PIPELINE,
    store: StoreOpt = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    engine: Annotated[
        Optional[str],
        typer.Option("--engine", help="local or ray (default: the pipeline's ingest.engine; "
                                      "--profile ray sets ray)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Parse, embed and store files and folders (re-ingesting unchanged files adds nothing;
    a moved file keeps its stored document, re-pointed at the new path)."""
    _setup_logging(verbose)
    # SIGTERM unwinds (the store is flushed and unlocked) and exits 143, also after parsing
    with _errors_exit(), sigterm_unwinds():
        cfg = _config(pipeline, store, profile)
        if (engine or cfg.ingest.engine) not in ("local", "ray"):
            raise ConfigError(f"--engine {engine!r}: use 'local' or 'ray'")
        try:
            if (engine or cfg.ingest.engine) == "ray":
                from ragnest.distributed import ray_ingest

                report = ray_ingest(paths, cfg, progress=not as_json)
            else:
                with Pipeline.from_config(cfg) as rag:
                    report = _run_ingest(rag, paths, quiet=as_json, workers=workers)
        except StoreError as e:  # the store broke: say what was committed, then exit 2
            if isinstance(e.report, IngestReport):
                _show_report(e.report, as_json)
            raise
    _show_report(report, as_json)
    raise typer.Exit(0 if report.ok else 1)


def _show_report(report: IngestReport, as_json: bool, title: str = "ingest") -> None:
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        _print_report(report, title)


@app.command()
def fit(
    paths: Annotated[list[str], typer.Argument(help="Files and folders to sample from.")],
    max_chunks: Annotated[
        int, typer.Option("--max-chunks", min=1, help="Chunks drawn from them to fit on.")
    ] = 2000,
    pipeline: PipelineOpt = DEFAULT_PIPELINE,
    store: StoreOpt = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Fit corpus state (a ladder's PCA rotation) on a sample, once, before ingesting.

    The state is stored with the collection; every later ingest, process or worker
    loads it instead of fitting its own. Embedders already fitted are left as they are.
    """
    _setup_logging(verbose)
    with _errors_exit():
        with Pipeline.from_config(_config(pipeline, store, profile)) as rag:
            fitted = rag.fit(paths, max_chunks=max_chunks)
            kept = [k for k in fitted_embedders(rag.embedders) if k not in fitted]
    if as_json:
        out.print_json(json.dumps({"fitted": fitted, "already_fitted": kept}))
        return
    if fitted:
        out.print(f"fitted and stored: {', '.join(fitted)}")
    if kept:
        out.print(f"already fitted (kept as stored): {', '.join(kept)}")
    if not fitted and not kept:
        out.print("no embedder of this pipeline fits corpus state; nothing to do")
