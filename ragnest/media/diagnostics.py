"""What the libraries below the parsers say about one document, collected for its report.

A third-party library's warnings (MuPDF's "repairing broken xref", "exception stack
overflow!" on a PDF with absurdly nested objects) belong in the log and in the report
entry of the file they are about, never on stdout. Adapters call :func:`warn`; the
ingest wraps each document's parse in :func:`collect_warnings` and reads them back.
Outside a collection :func:`warn` does nothing (the adapter has logged the message)::

    >>> from ragnest.media.diagnostics import collect_warnings, warn
    >>> with collect_warnings() as notes:
    ...     warn("MuPDF: repairing broken xref")
    ...     warn("MuPDF: repairing broken xref")
    ...     warn("MuPDF: cannot find object 12")
    >>> notes.messages()
    ('MuPDF: repairing broken xref (2 times)', 'MuPDF: cannot find object 12')

Each collection keeps at most :data:`MAX_DISTINCT` distinct messages (the rest are
counted), so a 10,000-page file that warns on every page stays small.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["MAX_DISTINCT", "Warnings", "collect_warnings", "warn"]

#: Distinct messages one collection keeps.
MAX_DISTINCT = 20
_MAX_CHARS = 300


class Warnings:
    """Distinct messages in first-seen order, with how often each came."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.dropped = 0

    def add(self, message: str) -> None:
        message = " ".join(str(message).split())[:_MAX_CHARS]
        if not message:
            return
        if message in self.counts:
            self.counts[message] += 1
        elif len(self.counts) < MAX_DISTINCT:
            self.counts[message] = 1
        else:
            self.dropped += 1

    def extend(self, messages: tuple[str, ...] | list[str]) -> None:
        for m in messages:
            self.add(m)

    def messages(self) -> tuple[str, ...]:
        """``"message"`` or ``"message (n times)"`` each, plus a line for what was left out."""
        out = [m if n == 1 else f"{m} ({n} times)" for m, n in self.counts.items()]
        if self.dropped:
            out.append(f"... and {self.dropped} more messages")
        return tuple(out)

    def __bool__(self) -> bool:
        return bool(self.counts)


_ACTIVE: ContextVar[Warnings | None] = ContextVar("ragnest_warnings", default=None)


@contextmanager
def collect_warnings() -> Iterator[Warnings]:
    """Collect what :func:`warn` receives inside the block (nested blocks collect their
    own; the outer one is restored afterwards)."""
    notes = Warnings()
    token = _ACTIVE.set(notes)
    try:
        yield notes
    finally:
        _ACTIVE.reset(token)


def warn(message: str) -> None:
    """Note ``message`` for the document being parsed (no-op outside a collection)."""
    notes = _ACTIVE.get()
    if notes is not None:
        notes.add(message)
