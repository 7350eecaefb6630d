"""``ragnest query``: stream the answer, then cite page and region (``--json``: all of it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ragnest._paths import readable_path
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
from ragnest.errors import RagnestError
from ragnest.pipeline import Pipeline
from ragnest.types import Answer, AnswerDelta, Query

__all__ = ['query']


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


def _print_hits(answer: Answer, explain: bool = False) -> None:
    if answer.hits:
        table = Table(title="top hits")
        stages = [s for s in dict.fromkeys(n for h in answer.hits for n in h.scores_by_stage)
                  if s != "final"] if explain else []
        for col in ("#", "source", "page", "score", *stages):
            table.add_column(col, no_wrap=col in stages)
        table.add_column("text")
        for i, h in enumerate(answer.hits, 1):
            snippet = " ".join(h.chunk.text.split())[:90]
            per_stage = [f"{h.scores_by_stage[s]:.3f}" if s in h.scores_by_stage else "-"
                         for s in stages]
            table.add_row(str(i), Path(h.chunk.source).name, str(h.chunk.page or ""),
                          f"{h.score:.3f}", *per_stage, snippet)
        out.print(table)


def _print_answer(answer: Answer, explain: bool = False) -> None:
    out.print(f"[bold]answer:[/] {answer.text}")
    _print_citations(answer)
    _print_hits(answer, explain)


def _stream_answer(deltas: Iterator[AnswerDelta], explain: bool = False) -> Answer:
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
    _print_hits(final, explain)
    return final


def _parse_filters(items: list[str] | None) -> dict[str, Any] | None:
    if not items:
        return None
    filters: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--filter {item!r}: use key=value")
        # the store holds non-UTF-8 file names in their readable \xNN form
        filters[key] = int(value) if value.isdigit() else readable_path(value)
    return filters


@app.command()
def query(
    text: Annotated[Optional[str], typer.Argument(help="The question.")] = None,
    image: Annotated[Optional[Path], typer.Option("--image", help="An image to query with.")] = None,
    k: Annotated[Optional[int], typer.Option("--k", "-k", min=1, help="How many hits (>= 1).")] = None,
    filter_: Annotated[
        Optional[list[str]], typer.Option("--filter", help="Payload filter key=value (repeatable).")
    ] = None,
    budget: Annotated[
        Optional[list[str]],
        typer.Option("--budget", help="Candidates kept at a funnel stage, e.g. coarse=2000 or "
                                      "dense-mid=300 (repeatable; overrides the YAML budgets)."),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Also give every hit's score at each funnel stage "
                                       "(--json: scores_by_stage; costs a fetch of the hits' "
                                       "vectors)."),
    ] = False,
    pipeline: PipelineOpt = DEFAULT_PIPELINE,
    store: StoreOpt = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    wait: WaitOpt = DEFAULT_WAIT,
) -> None:
    """Answer a question from the store, citing file and page."""
    _setup_logging(verbose)
    if not text and image is None:
        raise typer.BadParameter("give a question, --image PATH, or both")
    filters = _parse_filters(filter_)
    budgets = _parse_budgets(budget)
    with _errors_exit():
        with Pipeline.from_config(_config(pipeline, store, profile, read_wait=wait)) as rag:
            rag.open()  # a missing or busy store fails here, before any answer is printed
            q = Pipeline.image_query(image, text) if image is not None else Query(text=text)
            opts: dict[str, Any] = {"k": k, "filters": filters, "budgets": budgets,
                                    "explain": explain}
            if as_json:
                out.print_json(json.dumps(_answer_dict(rag.query(q, **opts))))
            elif rag.generator is None:
                _print_answer(rag.query(q, **opts), explain)
            else:
                _stream_answer(rag.stream(q, **opts), explain)


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
