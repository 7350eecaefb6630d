"""PyMuPDF, imported once and told to keep quiet: its messages go to the log.

MuPDF reports damaged files (a broken xref, an object nested thousands of levels
deep: "exception stack overflow!") by printing, and PyMuPDF prints its errors on
**stdout** by default, which breaks every consumer of ``ragnest ingest --json``. Every
ragnest module takes PyMuPDF from here (``from ragnest.media.mupdf import pymupdf``),
so importing it always applies the same settings:

* MuPDF errors and warnings are not displayed; PyMuPDF keeps them in its store and
  :func:`drain` reads them back after each page (the store stays small), logs them on
  the ``ragnest.media.mupdf`` logger and notes them for the document being parsed
  (:mod:`ragnest.media.diagnostics`: they end up in its ingest report entry);
* PyMuPDF's other messages and its debugging log go to the same logger instead of
  stdout (unless ``PYMUPDF_MESSAGE`` / ``PYMUPDF_LOG`` say otherwise);
* the ``pymupdf_layout`` advert is off.

    >>> from ragnest.media.mupdf import drain, pymupdf
    >>> pymupdf.TOOLS.mupdf_display_errors()
    False
    >>> drain("nothing.pdf")
    []
"""

from __future__ import annotations

import logging
import mmap
import os
from typing import Any

import pymupdf

from ragnest._paths import is_readable
from ragnest.media.diagnostics import warn

__all__ = ["drain", "open_path", "pymupdf"]

logger = logging.getLogger(__name__)


def _configure() -> None:
    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    # set_messages / set_log: PyMuPDF >= 1.24 (pyproject asks for >= 1.26)
    if "PYMUPDF_MESSAGE" not in os.environ and hasattr(pymupdf, "set_messages"):
        pymupdf.set_messages(pylogging_logger=logger, pylogging_level=logging.INFO)
    if "PYMUPDF_LOG" not in os.environ and hasattr(pymupdf, "set_log"):
        pymupdf.set_log(pylogging_logger=logger, pylogging_level=logging.DEBUG)
    if hasattr(pymupdf, "no_recommend_layout"):
        pymupdf.no_recommend_layout()
    pymupdf.TOOLS.reset_mupdf_warnings()


_configure()


def drain(name: str) -> list[str]:
    """MuPDF's errors and warnings since the last call (the store is emptied), logged
    once each as being about ``name`` and noted for its report entry."""
    text = pymupdf.TOOLS.mupdf_warnings(reset=True)
    if not text:
        return []
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    for line in dict.fromkeys(lines):
        logger.info("%s: MuPDF: %s", name, line)
    for line in lines:
        warn(f"MuPDF: {line}")
    return lines


def open_path(path: str, filetype: str | None = None) -> Any:
    """``pymupdf.open(path)``, also for a file whose name is not UTF-8 (MuPDF takes
    names as UTF-8 only): such a file is mapped into memory, not copied."""
    if is_readable(path):
        return pymupdf.open(path, filetype=filetype)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        data: Any = memoryview(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)) if size else b""
    return pymupdf.open(stream=data, filetype=filetype)
