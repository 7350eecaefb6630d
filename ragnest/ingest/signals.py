"""SIGTERM unwinds an ingest the way Ctrl-C does, instead of killing it mid-write.

By default SIGTERM (``kill PID``, a container stop, a job scheduler's timeout) ends a
Python process at once: no ``finally`` runs, parser workers are left to notice their
parent is gone, the document being written is rolled back only by the next open. Inside
:func:`sigterm_unwinds` a SIGTERM raises ``SystemExit(143)`` instead, so the ingest
unwinds: the write in progress is undone, the pool stops its workers, the store is
flushed and unlocked, and the exit status still says "terminated" (128 + 15)::

    >>> with sigterm_unwinds():
    ...     pass  # the ingest

It changes nothing outside the main thread or where SIGTERM already has a handler
(:class:`~ragnest.ingest.pool.ParsePool` holds it while its workers run, for callers
that parse without :func:`~ragnest.ingest.run.run_ingest`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["sigterm_unwinds", "takes_sigterm", "terminated"]


def terminated(signum: int, frame: Any) -> None:
    """The SIGTERM handler: raise ``SystemExit(128 + signum)``."""
    raise SystemExit(128 + signum)


def takes_sigterm() -> bool:
    """Whether :func:`terminated` may be installed here: the main thread, and SIGTERM
    still has its default action (nobody else handles it)."""
    return (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Within the block, a SIGTERM raises ``SystemExit(143)`` (see the module docs)."""
    if not takes_sigterm():
        yield
        return
    old = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():  # else it cannot
            signal.signal(signal.SIGTERM, old)
