"""``ragnest sync`` and ``ragnest delete``: the rest of a document's life in the store.

    ragnest sync manuals/ --dry-run     # what would be added, updated, moved, removed
    ragnest sync manuals/               # do it
    ragnest delete manuals/old.pdf 6f1c3a52-...   # by path (present or gone), folder or id
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

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
    out,
)
from ragnest.cli.ingest import _run_ingest, _show_report
from ragnest.config import PipelineConfig
from ragnest.errors import RagnestError, StoreError
from ragnest.ingest import IngestReport, delete_documents
from ragnest.pipeline import Pipeline

__all__ = ["delete", "sync"]

DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", "-n", help="Report what would be done; change nothing.")
]


def _existing_store(cfg: PipelineConfig) -> None:
    """Refuse an embedded store that does not exist (only ingest and sync create one)."""
    path = cfg.components[cfg.store].params.get("path")
    if isinstance(path, str) and not Path(path).expanduser().exists():
        raise RagnestError(f"no store at {path}; run `ragnest ingest` first")


@app.command()
def sync(
    roots: Annotated[list[str], typer.Argument(help="Folders (or files) to sync.")],
    pipeline: PipelineOpt = DEFAULT_PIPELINE,
    store: StoreOpt = None,
    profile: ProfileOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Make the store match folders: ingest new and changed files, follow moved files
    (nothing re-embedded), remove documents whose files are gone. Only documents under
    these roots are ever removed."""
    _setup_logging(verbose)
    with _errors_exit():
        with Pipeline.from_config(_config(pipeline, store, profile)) as rag:
            try:
                report = _run_ingest(rag, roots, quiet=as_json, workers=workers, sync=True,
                                     dry_run=dry_run)
            except StoreError as e:  # the store broke: say what was committed, then exit 2
                if isinstance(e.report, IngestReport):
                    _show_report(e.report, as_json, "sync")
                raise
    _show_report(report, as_json, "sync")
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def delete(
    targets: Annotated[
        list[str],
        typer.Argument(metavar="PATH|DOCUMENT_ID...",
                       help="Stored file paths (also of files already gone), folders, or "
                            "document ids."),
    ],
    pipeline: PipelineOpt = DEFAULT_PIPELINE,
    store: StoreOpt = None,
    profile: ProfileOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Remove documents from the store. A target that names nothing stored is an error
    (exit 2), and then nothing is removed."""
    _setup_logging(verbose)
    with _errors_exit():
        cfg = _config(pipeline, store, profile)
        _existing_store(cfg)
        with Pipeline.from_config(cfg) as rag:
            rag.open(write=True)  # the writer lock first: targets resolve on the live store
            report = delete_documents(rag.store, targets, dry_run=dry_run)
    if as_json:
        _show_report(report, as_json)
        return
    would = "would remove" if dry_run else "removed"
    for d in report.removed:
        out.print(f"[red]{would}[/] {escape(d.path or d.document_id)} ({d.removed} chunks)")
    out.print(f"{would} {report.documents_removed} document(s), {report.chunks_removed} chunks"
              + (" (dry run: nothing was changed)" if dry_run else ""))
