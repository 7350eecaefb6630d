"""Finding the files an ingest reads: files and folders, recursively, sorted.

Every path given, and every entry found in a folder, is either a regular file to read
or a :class:`~ragnest.ingest.report.SkippedFile` that says why not: a named pipe,
socket or device (never opened, so a FIFO cannot block the ingest), a symbolic link
that loops or points nowhere, a link to a folder (not followed, so links cannot
loop), a file or folder this process may not read. Hidden entries (``.name``) are
left out without a word. Non-UTF-8 file names are kept (surrogate-escaped; reported
with ``\\xNN`` escapes)::

    >>> from ragnest.ingest.discover import discover
    >>> files, skipped = discover(["examples/docs", "no/such/file.pdf"])
    >>> all(p.is_file() for p in files), [s.reason for s in skipped]
    (True, ['no such file or directory'])
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from ragnest.ingest.report import SkippedFile

__all__ = ["classify", "discover"]

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _why(err: OSError, what: str) -> str:
    if err.errno == errno.ELOOP:
        return "symbolic link loop (too many levels of symbolic links)"
    if err.errno == errno.ENOENT:
        return "no such file or directory"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied: cannot read this {what}"
    return f"cannot read this {what}: {err.strerror or err}"


def classify(path: Path) -> str | None:
    """``None`` for a regular file this process can read, else why it is skipped.

    Only ``stat`` calls and an ``access`` check: nothing is opened, so a FIFO or a
    device never blocks.
    """
    try:
        info = os.stat(path)  # follows links
    except OSError as err:
        if os.path.islink(path) and err.errno == errno.ENOENT:
            return f"broken symbolic link (its target {os.readlink(path)!r} does not exist)"
        return _why(err, "file")
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        return None if not os.path.islink(path) else (
            "symbolic link to a folder: not followed (ingest its target directly)")
    if not stat.S_ISREG(mode):
        kind = next((label for test, label in _KINDS if test(mode)), "not a regular file")
        return f"not a regular file: {kind}"
    if not os.access(path, os.R_OK):
        return "permission denied: cannot read this file"
    return None


def discover(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[SkippedFile]]:
    """Expand files and folders (recursively, sorted, hidden entries ignored).

    Paths that do not exist and entries that cannot be read as files come back as
    skipped entries with the reason, never as exceptions (see the module docs).
    """
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.absolute()
        if key not in seen:
            seen.add(key)
            files.append(p)

    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():  # a folder named by the caller is read even through a link
            _walk(p, add, skipped)
        else:
            reason = classify(p)
            if reason is None:
                add(p)
            else:
                skipped.append(SkippedFile(str(p), reason))
    return files, skipped


def _walk(root: Path, add: Callable[[Path], None], skipped: list[SkippedFile]) -> None:
    def unreadable(err: OSError) -> None:
        where = err.filename if err.filename is not None else root
        skipped.append(SkippedFile(os.fspath(where), _why(err, "folder")))

    for folder, dirs, names in os.walk(root, onerror=unreadable):
        here = Path(folder)
        linked = sorted(d for d in dirs if not _hidden(d) and (here / d).is_symlink())
        dirs[:] = sorted(d for d in dirs if not _hidden(d) and d not in linked)
        for name in sorted([*names, *linked]):
            if _hidden(name):
                continue
            f = here / name
            reason = classify(f)
            if reason is None:
                add(f)
            else:
                skipped.append(SkippedFile(str(f), reason))
