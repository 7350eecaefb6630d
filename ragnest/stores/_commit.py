"""When a store directory's files may be copied: the writer's exclusive sections and the
readers' shared ones, and the generation that says whether a copy is still current.

Qdrant Edge cannot have two openers of one shard (a second ``EdgeShard.load``, even one
that fails on the write-ahead-log lock, rewrites files under the first opener and breaks
it). Readers therefore never open the live shard: they copy it (see
:mod:`ragnest.stores._replica`) while no file is changing. Two ``flock`` files next to the
shard arrange that:

* ``.ragnest.commit``: the writer holds it **exclusively** around every call that changes
  files (an upsert, a flush, an optimize, the load itself), and around a document's commit
  as a whole; a reader holds it **shared** while it copies. Between the writer's calls the
  files are a crash image the engine recovers (its write-ahead log), so a copy taken then
  loads, and holds every acknowledged write.
* ``.ragnest.turn``: a turnstile. The writer holds it while it waits for the readers'
  copies to finish; a reader passes through it first, so a stream of readers cannot
  starve the writer.

The commit file also holds the **generation**: two tokens the writer renews at the start of
every exclusive section, before any file changes: ``logical`` when the data changes (an
upsert, a delete, fitted state), ``physical`` for every change of files (an optimize or a
flush renews only this one). A copy is current while both tokens match; one whose
logical token still matches holds the same data::

    >>> import tempfile
    >>> lock = CommitLock(tempfile.mkdtemp())
    >>> with lock.exclusive(logical=True):
    ...     pass
    >>> with lock.shared(timeout=1.0) as gen:
    ...     gen == lock.peek()
    True
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ragnest.errors import StoreLockedError, StoreUnavailableError
from ragnest.stores._lock import lock_file, read_pid, unlock_file

__all__ = ["COMMIT_NAME", "TURN_NAME", "WRITER_PATIENCE_S", "CommitLock", "Generation"]

#: Lock files next to the shard (see the module docs).
COMMIT_NAME = ".ragnest.commit"
TURN_NAME = ".ragnest.turn"
#: How long the writer waits for readers' copies before it reports the store unavailable.
WRITER_PATIENCE_S = 120.0


@dataclass(frozen=True)
class Generation:
    """Which state of the files a copy was made from (see the module docs)."""

    logical: str
    physical: str

    def __str__(self) -> str:
        return f"{self.logical} {self.physical}"

    @classmethod
    def parse(cls, text: str) -> Generation | None:
        parts = text.split()
        return cls(parts[0], parts[1]) if len(parts) == 2 else None


def _token() -> str:
    return uuid.uuid4().hex[:16]


class CommitLock:
    """The commit and turnstile locks of one store directory, for its writer and readers.

    One object per opener. The writer's sections are re-entrant (a commit holds the lock
    across the calls it makes) and serialised across its threads.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / COMMIT_NAME
        self.turn_path = self.directory / TURN_NAME
        self._mutex = threading.RLock()
        self._depth = 0
        self._fh: IO[str] | None = None

    # ------------------------------------------------------------------ files
    def _open(self, path: Path) -> IO[str] | None:
        """The lock file opened for locking (created when the directory allows it)."""
        try:
            return open(path, "a+", encoding="utf-8")  # noqa: SIM115 - closed by the caller
        except FileNotFoundError:
            return None
        except PermissionError:  # a read-only store: nobody can be writing it
            try:
                return open(path, encoding="utf-8")  # noqa: SIM115
            except OSError:
                return None

    def peek(self) -> Generation | None:
        """The current generation, read without a lock (a hint: confirm under :meth:`shared`)."""
        try:
            return Generation.parse(self.path.read_text(encoding="utf-8"))
        except OSError:
            return None

    def _write(self, fh: IO[str], gen: Generation) -> None:
        fh.seek(0)
        fh.truncate()
        fh.write(f"{gen}\n")
        fh.flush()

    # ------------------------------------------------------------------ writer
    @contextlib.contextmanager
    def exclusive(self, *, logical: bool) -> Iterator[None]:
        """Hold the commit lock exclusively; renew the generation first (see module docs)."""
        with self._mutex:
            if self._depth == 0:
                self._fh = self._acquire_exclusive()
            self._depth += 1
            try:
                assert self._fh is not None
                old = Generation.parse(_read(self._fh))
                keep = old.logical if (old is not None and not logical) else _token()
                self._write(self._fh, Generation(keep, _token()))
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fh, self._fh = self._fh, None
                    if fh is not None:
                        unlock_file(fh)
                        fh.close()

    def _acquire_exclusive(self) -> IO[str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        turn = open(self.turn_path, "a+", encoding="utf-8")  # noqa: SIM115
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115
        try:
            if not lock_file(turn, timeout=WRITER_PATIENCE_S) or not lock_file(
                fh, timeout=WRITER_PATIENCE_S
            ):
                fh.close()
                raise StoreUnavailableError(
                    f"store directory {str(self.directory)!r}: readers held it for more than "
                    f"{WRITER_PATIENCE_S:.0f} s while copying it; is a reader process stopped?"
                )
            return fh
        finally:
            unlock_file(turn)
            turn.close()

    # ------------------------------------------------------------------ readers
    @contextlib.contextmanager
    def shared(self, timeout: float) -> Iterator[Generation | None]:
        """Hold the commit lock shared (no file changes meanwhile); yields the generation.

        Waits up to ``timeout`` seconds for the writer's current section, then raises
        :class:`StoreLockedError` naming the writer's process.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        turn = self._open(self.turn_path)
        fh = self._open(self.path)
        try:
            if turn is not None:
                if not lock_file(turn, timeout=timeout):
                    self._busy(timeout)
                unlock_file(turn)
            if fh is not None and not lock_file(
                fh, shared=True, timeout=max(0.0, deadline - time.monotonic())
            ):
                self._busy(timeout)
            try:
                gen = Generation.parse(_read(fh)) if fh is not None else None
                if gen is None and fh is not None and fh.writable():
                    # a store no writer of this version has written yet: name its state
                    # (no writer can be inside a section now; readers racing here only
                    # cost one another a copy)
                    gen = Generation(_token(), _token())
                    self._write(fh, gen)
                yield gen
            finally:
                if fh is not None:
                    unlock_file(fh)
        finally:
            for f in (turn, fh):
                if f is not None:
                    f.close()

    def _busy(self, timeout: float) -> None:
        pid = read_pid(self.directory)
        who = f"process {pid}" if pid else "another process"
        raise StoreLockedError(
            f"store directory {str(self.directory)!r} is being written by {who} and did not "
            f"reach a committed state within {timeout:g} s; try again, or wait longer "
            "(`--wait SECONDS`, or QdrantStore(wait=...))"
        )


def _read(fh: IO[str]) -> str:
    fh.seek(0)
    return fh.read(256)
