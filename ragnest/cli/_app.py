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

__all__ = ['DEFAULT_PIPELINE', 'DEFAULT_STORE', 'DEFAULT_WAIT', 'JsonOpt', 'PipelineOpt', 'ProfileOpt', 'StoreOpt',
           'WaitOpt', 'WorkersOpt', 'app', 'err', 'out', 'workers_value']


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
DEFAULT_WAIT = 5.0
WaitOpt = Annotated[
    float, typer.Option("--wait", min=0.0, metavar="SECONDS",
                        help="How long to wait for an ingest's change in progress to commit.")
]



def workers_value(value: str | None) -> int | str | None:
    """``--workers``: ``auto`` or a process count (0 = one per CPU)."""
    if value is None or value == "auto":
        return value
    if not value.isdigit():
        raise typer.BadParameter(f"expected 'auto' or an integer >= 0, not {value!r}")
    return int(value)


WorkersOpt = Annotated[
    Optional[str],
    typer.Option("--workers", "-w", metavar="N|auto", parser=workers_value,
                 help="Parser processes (auto: by CPUs and corpus size; 0 = one per CPU; "
                      "default: the pipeline's ingest.workers)."),
]


def _config(pipeline: str, store: str | None, profile: str | None,
            *, read_wait: float | None = None) -> PipelineConfig:
    """The pipeline config, ``--store`` applied; ``read_wait``: open the store only to
    read (a missing store is an error, never created), waiting that long for a writer."""
    cfg = load_config(pipeline, profile=profile)
    params = cfg.components[cfg.store].params
    if store is not None:
        params.pop("url", None)
        params.pop("location", None)
        params["path"] = store
    if read_wait is not None and cfg.components[cfg.store].type == "store/qdrant":
        params.update(mode="read", wait=float(read_wait))
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
