"""How parser worker processes are started: ``fork`` where it is safe, else ``spawn``.

A spawned worker starts a fresh interpreter and imports ragnest, PyMuPDF and the
parsers (about 0.5 s of CPU each, before it parses a page); on a 2-CPU machine that
start-up alone ate most of what a second worker gained. A forked worker starts with
everything the parent imported, in a few milliseconds (figure manuals, 507 pages, on 2
CPUs, ``-w 2`` against ``-w 1``: 1.08x spawned and 1.22x forked in
``tests/benchmarks/bench_targets.py``; 1.27x and 1.36-1.50x timed in one process).

Forking a process that runs threads is safe only if the child never touches what those
threads held. The child runs the parsers only: PyMuPDF on documents it opens itself,
from parsers it receives pickled. :func:`start_method` therefore forks only on Linux,
and only while no runtime whose thread pools or device state do not survive a fork is
loaded in the parent (torch, onnxruntime, TensorFlow, JAX: a pipeline that OCRs or runs
a transformers model in the parent spawns its workers, as before).
:func:`reset_after_fork` runs first in every forked worker: it drops the module-level
defaults (the OCR engine, the renderer with its open documents) and unhooks stdout and
stderr from whatever progress display the parent had wrapped them in.

``RAGNEST_WORKER_START=spawn`` (or ``fork``, ``forkserver``) overrides the choice::

    >>> start_method({"RAGNEST_WORKER_START": "spawn"})
    'spawn'
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Mapping

from ragnest.errors import ConfigError

__all__ = ["FORK_UNSAFE_MODULES", "reset_after_fork", "start_method"]

#: Modules whose presence in the parent rules ``fork`` out: their thread pools (and for
#: torch, a CUDA context) are not usable in a forked child.
FORK_UNSAFE_MODULES = ("torch", "onnxruntime", "tensorflow", "jax")
_ENV = "RAGNEST_WORKER_START"


def start_method(environ: Mapping[str, str] | None = None) -> str:
    """The start method for parser workers now: ``$RAGNEST_WORKER_START`` when set,
    else ``"fork"`` on Linux while none of :data:`FORK_UNSAFE_MODULES` is imported,
    else ``"spawn"``."""
    env = os.environ if environ is None else environ
    wanted = env.get(_ENV, "").strip().lower()
    if wanted:
        if wanted not in multiprocessing.get_all_start_methods():
            raise ConfigError(f"{_ENV}={wanted!r} is not a start method here; use one of "
                              f"{', '.join(multiprocessing.get_all_start_methods())}")
        return wanted
    if not sys.platform.startswith("linux"):
        return "spawn"
    if any(name in sys.modules for name in FORK_UNSAFE_MODULES):
        return "spawn"
    return "fork"


def reset_after_fork() -> None:
    """In a freshly forked worker: drop state the parent's threads or files may hold.

    The module-level OCR engine and renderer are forgotten (each worker makes its own on
    first use; a renderer's open documents share file offsets with the parent's), SIGTERM
    gets its default action back (the parent's handler raises ``SystemExit`` to unwind an
    ingest), and ``sys.stdout``/``sys.stderr`` are the process's own streams again (a
    progress display may have wrapped them in objects guarded by its thread's lock).
    """
    from ragnest.media import ocr, render

    ocr.forget_default()
    render.forget_default()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.__stderr__ is not None:
        sys.stderr = sys.__stderr__
    if sys.__stdout__ is not None:
        sys.stdout = sys.__stdout__
