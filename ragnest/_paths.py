"""File names that are not UTF-8: shown readably, stored as valid text, found again.

POSIX file names are bytes. Python hands a name that is not valid UTF-8 over as a
``str`` with surrogate escapes (``'caf\\udce9.pdf'`` for the Latin-1 bytes
``b'caf\\xe9.pdf'``): such a string opens the file, but it cannot be encoded as UTF-8,
so it cannot go into JSON for other programs, a Qdrant payload or a terminal.
ragnest keeps the real (surrogate-escaped) path for reading the file and uses
:func:`readable_path` wherever the path is shown or stored: every undecodable byte
becomes ``\\xNN``, the way Python's ``backslashreplace`` writes it.
:func:`local_path` turns such a stored text back into the path that opens the file::

    >>> from ragnest._paths import local_path, readable_path
    >>> real = b"/docs/caf\\xe9.pdf".decode("utf-8", "surrogateescape")
    >>> readable_path(real)
    '/docs/caf\\\\xe9.pdf'
    >>> local_path(readable_path(real)) == real
    True
    >>> readable_path("/docs/café.pdf")  # valid UTF-8 stays as it is
    '/docs/café.pdf'
"""

from __future__ import annotations

import os
import re

__all__ = ["is_readable", "local_path", "readable_path"]

# Only bytes >= 0x80 are ever escaped (ASCII always decodes), so "\x41" in a real
# file name is never mistaken for an escape.
_ESCAPE = re.compile(rb"\\x([89a-fA-F][0-9a-fA-F])")


def is_readable(text: str) -> bool:
    """True when ``text`` encodes as UTF-8 (no surrogate escapes in it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def readable_path(path: str | os.PathLike[str]) -> str:
    """``path`` as valid UTF-8 text: undecodable bytes written as ``\\xNN``."""
    text = os.fspath(path)
    if is_readable(text):
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def local_path(text: str) -> str:
    """The path a :func:`readable_path` text names: ``text`` itself when that file
    exists or it holds no ``\\xNN`` escape, else the surrogate-escaped original."""
    if "\\x" not in text or os.path.lexists(text):
        return text
    raw = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8"))
    return os.fsdecode(raw)
