"""An exclusive, non-blocking lock on a store directory.

Qdrant Edge holds a lock on its write-ahead log, but a second ``EdgeShard.load`` on a
shard that is in use can still break the writer. ragnest therefore takes its own OS
lock on ``<path>/.ragnest.lock`` *before* touching any shard under ``path``::

    >>> from ragnest.stores._lock import DirectoryLock
    >>> lock = DirectoryLock("/tmp/my-store")       # doctest: +SKIP
    >>> lock.acquire()                             # doctest: +SKIP
    >>> lock.release()                             # doctest: +SKIP

The lock belongs to an open file description, so a second handle in the *same*
process conflicts too (``flock`` on POSIX, ``msvcrt.locking`` on Windows). The
holder writes its pid into the file so the error can name it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import IO

from ragnest.errors import StoreLockedError

__all__ = ["LOCK_NAME", "DirectoryLock", "lock_file", "read_pid", "unlock_file"]

log = logging.getLogger(__name__)

#: File name of the lock inside a store directory.
LOCK_NAME = ".ragnest.lock"

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fh: IO[str], shared: bool = False) -> bool:  # no shared locks: exclusive
        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fh: IO[str]) -> None:
        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
        except OSError:
            pass

else:
    import fcntl

    def _try_lock(fh: IO[str], shared: bool = False) -> bool:
        try:
            fcntl.flock(fh.fileno(), (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            return True
        except (BlockingIOError, PermissionError):
            return False

    def _unlock(fh: IO[str]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class DirectoryLock:
    """Exclusive lock on ``directory/.ragnest.lock``; raises :class:`StoreLockedError` if held.

    The directory is created if missing. ``acquire`` and ``release`` are idempotent.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._fh: IO[str] | None = None

    @property
    def held(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._fh is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`StoreLockedError` naming the directory and holder pid."""
        if self._fh is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        # "a+" never truncates: a holder's pid stays readable until we own the lock.
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - kept open while locked
        if not _try_lock(fh):
            holder = _read_pid(fh)
            fh.close()
            who = f"process {holder}" if holder else "another process"
            if holder == os.getpid():
                who = f"this process ({holder}), through another store handle"
            raise StoreLockedError(
                f"store directory {str(self.directory)!r} is locked by {who} "
                f"(lock file {str(self.path)!r}); close the other store first, "
                "or use a different path"
            )
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
        except OSError:  # pragma: no cover - a pid is a courtesy, not a requirement
            log.debug("could not write pid into %s", self.path, exc_info=True)
        self._fh = fh
        log.debug("locked %s", self.path)

    def release(self) -> None:
        """Release the lock (no-op when not held)."""
        fh, self._fh = self._fh, None
        if fh is None:
            return
        try:
            fh.seek(0)
            fh.truncate()
            fh.flush()
        except OSError:  # pragma: no cover
            pass
        finally:
            _unlock(fh)
            fh.close()
        log.debug("unlocked %s", self.path)

    def __enter__(self) -> DirectoryLock:  # noqa: PYI034
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # a forgotten store must not keep the directory locked
        with contextlib.suppress(Exception):
            self.release()


def _read_pid(fh: IO[str]) -> int | None:
    try:
        fh.seek(0)
        text = fh.read(32).strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def read_pid(directory: str | os.PathLike[str]) -> int | None:
    """The pid the writer of ``directory`` wrote into its lock file (``None``: no writer)."""
    try:
        with open(Path(directory) / LOCK_NAME, encoding="utf-8") as fh:
            return _read_pid(fh)
    except OSError:
        return None


def lock_file(fh: IO[str], *, shared: bool = False, timeout: float = 0.0) -> bool:
    """Lock an open file (``shared`` or exclusive), polling up to ``timeout`` seconds.

    Returns whether the lock was taken. Like :class:`DirectoryLock` the lock belongs to
    the open file description: two handles conflict even within one process.
    """
    deadline = time.monotonic() + max(0.0, timeout)
    delay = 0.002
    while True:
        if _try_lock(fh, shared):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 1.5, 0.05)


def unlock_file(fh: IO[str]) -> None:
    """Release a lock taken with :func:`lock_file`."""
    _unlock(fh)
