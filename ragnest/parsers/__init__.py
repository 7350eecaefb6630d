"""Parsers: turn a :class:`~ragnest.types.Source` into chunks.

Parser classes are imported on first use, so ``import ragnest.parsers`` stays cheap::

    >>> from ragnest.parsers import PdfParser, TextParser, sniff
    >>> sniff(b"%PDF-1.7")
    'pdf'
    >>> PdfParser().extensions, TextParser().extensions[:2]
    (('.pdf',), ('.txt', '.md'))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ragnest.media.sniff import extension_for, sniff

if TYPE_CHECKING:
    from ragnest.parsers.image import ImageParser
    from ragnest.parsers.office import OfficeParser
    from ragnest.parsers.pdf import PdfParser
    from ragnest.parsers.text import TextParser

__all__ = ["PdfParser", "TextParser", "ImageParser", "OfficeParser", "sniff", "extension_for"]

_LAZY = {
    "PdfParser": "ragnest.parsers.pdf",
    "TextParser": "ragnest.parsers.text",
    "ImageParser": "ragnest.parsers.image",
    "OfficeParser": "ragnest.parsers.office",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ragnest.parsers' has no attribute {name!r}")
