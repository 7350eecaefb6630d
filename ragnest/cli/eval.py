"""``ragnest eval``: measure a pipeline on a dataset, sweeping settings on one ingest.

    ragnest eval beir/scifact --sweep budget.coarse=100,1000 --sweep levels=coarse,coarse+mid+fine
    ragnest eval vidore_v3/ --metric nDCG@5 --metric R@5
    ragnest eval manuals/ --make known-item --n 300 --sweep using=bm25,dense,dense+bm25

Writes ``OUT/eval.json`` and two PNG plots (recall vs latency, quality vs bytes per
page); the store defaults to ``OUT/store`` so the dataset never mixes with your own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ragnest.cli._app import (
    DEFAULT_PIPELINE,
    JsonOpt,
    PipelineOpt,
    ProfileOpt,
    StoreOpt,
    _config,
    _errors_exit,
    _setup_logging,
    app,
    err,
    out,
)
from ragnest.errors import ConfigError
from ragnest.pipeline import Pipeline

__all__ = ["eval_command"]

MAKERS = ("known-item", "crops", "generated")


def _dataset(path: str, split: str, queries: Optional[str], make: Optional[str], n: int,
             rag: Pipeline, exclude: list[str]) -> Any:
    from ragnest import eval as rev

    if make is None:
        return rev.load_dataset(path, split=split, queries=queries, exclude=exclude)
    if make not in MAKERS:
        raise ConfigError(f"--make {make!r}: one of {', '.join(MAKERS)}")
    root = Path(path)
    files = rev.loaders.pdf_files(root, exclude) if root.is_dir() else [root]
    if not files:
        raise ConfigError(f"{root}: no PDF files to make an eval set from")
    if make == "known-item":
        return rev.known_item_set(files, n)
    if make == "crops":
        return rev.crop_set(files, n)
    return rev.generated_set(files, n, rag.generator)


@app.command("eval")
def eval_command(
    dataset: Annotated[str, typer.Argument(
        help="A BEIR folder, ViDoRe parquet file(s), or a folder of PDFs (with queries.jsonl, "
             "or --make).")],
    pipeline: PipelineOpt = DEFAULT_PIPELINE,
    store: StoreOpt = None,
    profile: ProfileOpt = None,
    sweep: Annotated[Optional[list[str]], typer.Option(
        "--sweep", help="KEY=V1,V2 (repeat for a grid): budget.STAGE, budgets, levels, using, "
                        "fusion, weight.NAME, k, retrieval.FIELD, rerank.PARAM.")] = None,
    metric: Annotated[Optional[list[str]], typer.Option(
        "--metric", "-m", help="ir-measures name (repeat): nDCG@10, R@5, RR, AP, ...")] = None,
    k: Annotated[Optional[int], typer.Option("--k", min=1, help="Hits per query "
                                             "(default: the largest @k of the metrics).")] = None,
    split: Annotated[str, typer.Option("--split", help="BEIR qrels split / ViDoRe split.")] = "test",
    queries: Annotated[Optional[str], typer.Option(
        "--queries", help="Queries file of a PDF folder (default: DATASET/queries.jsonl).")] = None,
    make: Annotated[Optional[str], typer.Option(
        "--make", help="Make an eval set from the PDFs: known-item, crops, generated.")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Queries to make with --make.")] = 200,
    exclude: Annotated[Optional[list[str]], typer.Option(
        "--exclude", help="Leave out PDFs whose name matches this glob (repeat): '*refman*'.")]
    = None,
    save_queries: Annotated[Optional[str], typer.Option(
        "--save-queries", help="Write the made eval set here (queries.jsonl).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1,
                                                 help="Use the first N queries only.")] = None,
    answers: Annotated[Optional[bool], typer.Option(
        "--answers/--no-answers", help="Generate and score answers (default: when the "
        "pipeline has a generator and the dataset gold answers or boxes).")] = None,
    out_dir: Annotated[str, typer.Option("--out", "-o", help="Folder for eval.json, the "
                                         "plots, the corpus files and the default store.")]
    = "eval-results",
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw the PNG plots.")] = True,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Evaluate a pipeline on a dataset: ranking metrics, latency, bytes per page and
    answer metrics, for every setting of a sweep, on one ingest."""
    from ragnest import eval as rev

    _setup_logging(verbose)
    folder = Path(out_dir)
    with _errors_exit():
        settings = rev.parse_sweeps(sweep or [])
        measures = list(metric or rev.DEFAULT_MEASURES)
        rev.metrics.parse_measures(measures)  # a bad name fails before any work
        cfg = _config(pipeline, store or str(folder / "store"), profile)
        with Pipeline.from_config(cfg) as rag:
            ds = _dataset(dataset, split, queries, make, n, rag, exclude or [])
            if save_queries:
                rev.save_queries(ds, save_queries)
            if limit:
                ds = ds.subset(limit)
            evaluator = rev.Evaluator(rag, ds, measures=measures, k=k, answers=answers,
                                      workdir=folder)
            with err.status(f"ingest {ds.name} ({ds.summary()['corpus']} files)"):
                evaluator.ingest()
            with Progress(TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), TextColumn("{task.description}"),
                          console=err, transient=True, disable=as_json) as progress:
                task = progress.add_task("", total=len(settings) * len(ds))

                def tick(done: int, total: int, what: str) -> None:
                    if done >= 0:
                        progress.update(task, completed=done, description=what)

                results = evaluator.run(settings, progress=tick)
        if plots:
            results.plot(folder)
        path = results.write_json(folder / "eval.json")
    if as_json:
        data = results.to_dict()
        data.pop("per_query")
        out.print_json(json.dumps(data, default=str))
        return
    out.print(results.table())
    out.print(f"wrote {path}" + "".join(f", {p}" for p in results.plots.values()), highlight=False)
