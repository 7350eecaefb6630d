"""The ``ragnest`` command's shared parts: the typer app, consoles, options, error exits."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Optional

import typer
from rich.console import Console

from ragnest.config import PipelineConfig, load_config
from ragnest.errors import RagnestError

__all__ = ['DEFAULT_PIPELINE', 'DEFAULT_STORE', 'JsonOpt', 'PipelineOpt', 'ProfileOpt', 'StoreOpt', 'app', 'err', 'out']


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
