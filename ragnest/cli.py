"""The ``ragnest`` command (typer + rich).

    ragnest fit manuals/            # only for ladders with rotation: pca
    ragnest ingest manuals/ --store ./.ragnest
    ragnest query "how do I reset the device?" --k 5 --json
    ragnest stats
    ragnest demo
    ragnest list
    ragnest validate pipelines/lite.yaml
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ragnest.collection import fitted_embedders
from ragnest.config import PipelineConfig, load_config
from ragnest.errors import RagnestError, StoreError
from ragnest.ingest import IngestReport, discover
from ragnest.pipeline import Pipeline
from ragnest.types import Answer, AnswerDelta, Query

__all__ = ["app", "main"]

app = typer.Typer(
    name="ragnest",
    help="Multimodal RAG over real documents: ingest files, ask questions, get cited pages.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)

DEFAULT_PIPELINE = "pipelines/lite.yaml"
DEFAULT_STORE = ".ragnest"

PipelineOpt = Annotated[
    str, typer.Option("--pipeline", "-p", help="Pipeline YAML (path, or a shipped name like 'lite').")
]
StoreOpt = Annotated[
    Optional[str], typer.Option("--store", "-s", help="Store directory (embedded Qdrant Edge).")
]
ProfileOpt = Annotated[
    Optional[str], typer.Option("--profile", help="Profile overlay (configs/profiles/<name>.yaml or a path).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _config(pipeline: str, store: str | None, profile: str | None) -> PipelineConfig:
    cfg = load_config(pipeline, profile=profile)
    if store is not None:
        params = cfg.components[cfg.store].params
        params.pop("url", None)
        params.pop("location", None)
        params["path"] = store
    return cfg


@contextmanager
def _errors_exit() -> Iterator[None]:
    try:
        yield
    except RagnestError as e:
        err.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(2) from None


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _print_report(report: IngestReport) -> None:
    table = Table(title="ingest", show_header=False)
    table.add_row("files ingested", str(report.files))
    table.add_row("pages", str(report.pages))
    table.add_row("chunks added", str(report.chunks_added))
    table.add_row("chunks unchanged", str(report.chunks_unchanged))
    table.add_row("chunks removed", str(report.chunks_removed))
    table.add_row("skipped files", str(len(report.skipped)))
    table.add_row("seconds", f"{report.seconds:.1f}")
    out.print(table)
    for s in report.skipped:
        out.print(f"[yellow]skipped[/] {s.path}: {s.reason}")


def _run_ingest(rag: Pipeline, paths: list[str], *, quiet: bool,
                workers: int | None = None) -> IngestReport:
    files, _ = discover(paths)
    if quiet or not files:
        return rag.ingest(paths, progress=False, workers=workers)
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
            progress.update(task, advance=1, description=f"{Path(path).name}: {status}")

        return rag.ingest(paths, on_file=on_file, workers=workers)


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files and folders to ingest.")],
    pipeline: PipelineOpt = DEFAULT_PIPELINE,
    store: StoreOpt = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
    workers: Annotated[
        Optional[int],
        typer.Option("--workers", "-w", min=0,
                     help="Parser processes (0 = one per CPU; default: the pipeline's "
                          "ingest.workers)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Parse, embed and store files and folders (re-ingesting unchanged files adds nothing)."""
    _setup_logging(verbose)
    with _errors_exit():
        with Pipeline.from_config(_config(pipeline, store, profile)) as rag:
            try:
                report = _run_ingest(rag, paths, quiet=as_json, workers=workers)
            except StoreError as e:  # the store broke: say what was committed, then exit 2
                if isinstance(e.report, IngestReport):
                    _show_report(e.report, as_json)
                raise
    _show_report(report, as_json)
    raise typer.Exit(0 if report.ok else 1)


def _show_report(report: IngestReport, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        _print_report(report)


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


def _answer_dict(answer: Answer) -> dict[str, Any]:
    return {
        "answer": answer.text,
        "found": answer.found,
        "citations": [
            {"n": i + 1, "tag": c.tag, "source": c.source, "page": c.page,
             "chunk_id": c.chunk_id, "quote": c.quote, "bbox": list(c.bbox) if c.bbox else None}
            for i, c in enumerate(answer.citations)
        ],
        "hits": [
            {
                "source": h.chunk.source,
                "page": h.chunk.page,
                "score": h.score,
                "chunk_id": h.chunk.id,
                "text": h.chunk.text,
                "bbox": list(h.chunk.bbox) if h.chunk.bbox else None,
                "scores_by_stage": dict(h.scores_by_stage),
            }
            for h in answer.hits
        ],
        "usage": dict(answer.usage),
        "timings": {k: round(v, 4) for k, v in answer.timings.items()},
    }


def _print_citations(answer: Answer) -> None:
    if answer.citations:
        out.print("[bold]cited pages:[/]")
        for i, c in enumerate(answer.citations, 1):
            region = f", region {tuple(round(v) for v in c.bbox)}" if c.bbox else ""
            out.print(f"  [{c.tag or i}] {c.source}" + (f", page {c.page}" if c.page else "")
                      + region, highlight=False)


def _print_hits(answer: Answer) -> None:
    if answer.hits:
        table = Table(title="top hits")
        for col in ("#", "source", "page", "score", "text"):
            table.add_column(col)
        for i, h in enumerate(answer.hits, 1):
            snippet = " ".join(h.chunk.text.split())[:90]
            table.add_row(str(i), Path(h.chunk.source).name, str(h.chunk.page or ""),
                          f"{h.score:.3f}", snippet)
        out.print(table)


def _print_answer(answer: Answer) -> None:
    out.print(f"[bold]answer:[/] {answer.text}")
    _print_citations(answer)
    _print_hits(answer)


def _stream_answer(deltas: Iterator[AnswerDelta]) -> Answer:
    """Print the answer as it is generated; return the final :class:`Answer`."""
    out.print("[bold]answer:[/] ", end="")
    final: Answer | None = None
    for delta in deltas:
        if delta.text:
            out.print(delta.text, end="", markup=False, highlight=False, soft_wrap=True)
        if delta.done:
            final = delta.answer
    out.print()
    if final is None:  # pragma: no cover - a generator that never finished its stream
        raise RagnestError("the generator's stream ended without a final answer")
    _print_citations(final)
    _print_hits(final)
    return final


def _parse_filters(items: list[str] | None) -> dict[str, Any] | None:
    if not items:
        return None
    filters: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--filter {item!r}: use key=value")
        filters[key] = int(value) if value.isdigit() else value
    return filters


@app.command()
def query(
    text: Annotated[Optional[str], typer.Argument(help="The question.")] = None,
    image: Annotated[Optional[Path], typer.Option("--image", help="An image to query with.")] = None,
    k: Annotated[Optional[int], typer.Option("--k", "-k", help="How many hits.")] = None,
    filter_: Annotated[
        Optional[list[str]], typer.Option("--filter", help="Payload filter key=value (repeatable).")
    ] = None,
    budget: Annotated[
        Optional[list[str]],
        typer.Option("--budget", help="Candidates kept at a funnel stage, e.g. coarse=2000 or "
                                      "dense-mid=300 (repeatable; overrides the YAML budgets)."),
    ] = None,
    pipeline: PipelineOpt = DEFAULT_PIPELINE,
    store: StoreOpt = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Answer a question from the store, citing file and page."""
    _setup_logging(verbose)
    if not text and image is None:
        raise typer.BadParameter("give a question, --image PATH, or both")
    filters = _parse_filters(filter_)
    budgets = _parse_budgets(budget)
    with _errors_exit():
        with Pipeline.from_config(_config(pipeline, store, profile)) as rag:
            q = Pipeline.image_query(image, text) if image is not None else Query(text=text)
            if as_json:
                answer = rag.query(q, k=k, filters=filters, budgets=budgets)
                out.print_json(json.dumps(_answer_dict(answer)))
            elif rag.generator is None:
                _print_answer(rag.query(q, k=k, filters=filters, budgets=budgets))
            else:
                _stream_answer(rag.stream(q, k=k, filters=filters, budgets=budgets))


def _parse_budgets(items: Optional[list[str]]) -> dict[str, int] | None:
    if not items:
        return None
    budgets: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip().isdigit() or int(value) < 1:
            raise typer.BadParameter(f"--budget {item!r}: use STAGE=N with N >= 1, "
                                     "e.g. coarse=2000")
        budgets[name.strip()] = int(value)
    return budgets


@app.command()
def stats(
    pipeline: PipelineOpt = DEFAULT_PIPELINE,
    store: StoreOpt = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How many chunks and documents the store holds."""
    with _errors_exit():
        with Pipeline.from_config(_config(pipeline, store, profile)) as rag:
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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
