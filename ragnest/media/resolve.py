"""Where the bytes of an :class:`~ragnest.types.ImageRef` come from: one resolver.

An ImageRef names its pixels by location: ``ref.source`` (a document whose page is
rendered) or ``ref.blob`` (an image file, or a member of a ZIP container such as
``/abs/report.docx::word/media/image1.png``, which the Office parser makes). Every
read of those bytes goes through a :class:`Resolver`, so a worker or a server on
another host gets the same pixels once a resolver for its storage is plugged in::

    >>> from ragnest.media.resolve import LocalResolver
    >>> found = LocalResolver().resolve("examples/docs/nimbus3_handbook.pdf")
    >>> found.path.endswith("nimbus3_handbook.pdf"), found.data is None
    (True, True)
    >>> LocalResolver().resolve("s3://bucket/report.pdf")
    Traceback (most recent call last):
    ...
    ragnest.errors.ParseError: s3://bucket/report.pdf: no resolver for 's3://' locations: LocalResolver reads local files only; give the Renderer a resolver for this storage

A resolver answers :meth:`Resolver.resolve` with a :class:`Resolved`: either a local
``path`` (opened in place, nothing copied) or the ``data`` in memory, plus a
``version`` that changes whenever the content may have changed (a renderer keys its
open documents on it). Object storage plugs in here: an ``s3://`` resolver returns
the object's bytes (or a file it downloaded) and its ETag as the version.
Resolvers must be picklable (they travel with components to worker processes).
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from ragnest._paths import local_path
from ragnest.errors import ParseError

__all__ = ["Resolved", "Resolver", "LocalResolver", "MEMBER_SEPARATOR", "split_member"]

#: Separates a ZIP container from one of its members in a blob location.
MEMBER_SEPARATOR = "::"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+)://")  # 2+ letters: "C:\" is a path


@dataclass(frozen=True)
class Resolved:
    """The bytes behind one location.

    ``name`` is what errors name (the file, or the container of a member); exactly one
    of ``path`` (a local file to open in place) and ``data`` (the bytes) is set.
    ``version`` changes whenever the content may have changed.

    >>> Resolved("mem://a.png", name="a.png", data=b"...").read_bytes()
    b'...'
    """

    location: str
    name: str
    path: str | None = None
    data: bytes | None = field(default=None, repr=False)
    version: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ValueError("Resolved needs exactly one of path and data")

    def read_bytes(self) -> bytes:
        """All the bytes (reads the file when the location is a local path)."""
        if self.data is not None:
            return self.data
        try:
            return Path(str(self.path)).read_bytes()
        except OSError as err:
            raise ParseError(self.name, f"cannot read file: {err.strerror or err}") from err


@runtime_checkable
class Resolver(Protocol):
    """Turns a location (``ImageRef.source`` or ``ImageRef.blob``) into bytes.

    Raises :class:`~ragnest.errors.ParseError` naming the location when it cannot
    (missing file, unknown member, storage it does not read).
    """

    def resolve(self, location: str) -> Resolved:
        """The bytes behind ``location`` (a path, or the data) and their version."""
        ...


def split_member(location: str) -> tuple[str, str] | None:
    """``(container, member)`` for ``"container::member"`` locations, else ``None``.

    >>> split_member("/docs/report.docx::word/media/image1.png")
    ('/docs/report.docx', 'word/media/image1.png')
    >>> split_member("/docs/photo.png") is None
    True
    """
    if MEMBER_SEPARATOR not in location:
        return None
    container, member = location.split(MEMBER_SEPARATOR, 1)
    return (container, member) if container and member else None


def _missing(path: str) -> ParseError:
    return ParseError(path, "file not found (was it moved or deleted?)")


@dataclass(frozen=True)
class LocalResolver:
    """Local files: plain paths, ``file://`` URIs, and ZIP members
    (``container::member``: DOCX/PPTX/ODT/EPUB pictures), read only when asked for.

    Any other scheme (``s3://``, ``https://``) is refused with an error saying a
    resolver for that storage is needed. A file whose own name contains ``::`` is
    still read as that file.
    """

    def resolve(self, location: str) -> Resolved:
        """See :class:`Resolver`; versions are ``(path, mtime_ns, size[, member])``."""
        path = self._local_path(location)
        if not os.path.isfile(path):
            parts = split_member(path)
            if parts is not None:
                return self._member(location, *parts)
            raise _missing(path)
        return Resolved(location, name=path, path=path, version=_stamp(path))

    @staticmethod
    def _local_path(location: str) -> str:
        match = _SCHEME.match(location)
        if match is None:
            return local_path(location)  # a non-UTF-8 name is stored with \\xNN escapes
        if match.group(1).lower() == "file":
            return unquote(urlsplit(location).path)
        raise ParseError(location, f"no resolver for '{match.group(1)}://' locations: "
                                   "LocalResolver reads local files only; give the Renderer "
                                   "a resolver for this storage")

    @staticmethod
    def _member(location: str, container: str, member: str) -> Resolved:
        container = local_path(container)
        if not os.path.isfile(container):
            raise ParseError(container, f"file not found; cannot load image {member} "
                                        "(was it moved or deleted?)")
        try:
            with zipfile.ZipFile(container) as zf:
                data = zf.read(member)
        except KeyError as err:
            raise ParseError(container, f"image {member} is not in this file "
                                        "(was the file changed since it was parsed?)") from err
        except (zipfile.BadZipFile, OSError) as err:
            raise ParseError(container, f"cannot read image {member}: {err}") from err
        return Resolved(location, name=container, data=data,
                        version=(*_stamp(container), member))


def _stamp(path: str) -> tuple[Any, ...]:
    stat = os.stat(path)
    return (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
