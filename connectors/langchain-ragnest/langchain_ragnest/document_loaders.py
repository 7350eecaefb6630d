"""``RagnestLoader``: ragnest's parsers as a LangChain document loader.

PDFs (text layer, layout, OCR for scanned pages), images (OCR text), Markdown and
text, and Office/HTML/e-mail files (with ``ragnest[office]``) become Documents, one
per chunk, lazily::

    >>> loader = RagnestLoader("examples/docs/nimbus3_handbook.pdf")   # a page per Document
    >>> doc = next(loader.lazy_load())
    >>> doc.metadata["page"], doc.metadata["kind"], doc.metadata["image"]["uri"][-7:]
    (1, 'page', '#page=1')
    >>> docs = RagnestLoader("examples/docs", chunking="interleaved").load()
    >>> sorted({d.metadata["kind"] for d in docs})
    ['interleaved', 'text']

``chunking="page"`` (default) gives one Document per PDF page, with the page screenshot
as an image reference; ``"interleaved"`` gives text/figure/table chunks split at
headings, each with its region of the page as an image reference. The metadata is
described in :mod:`langchain_ragnest.documents`; images are references, their pixels
come on demand (:mod:`langchain_ragnest.images`). A file no parser reads, or one that
fails to parse, is skipped with a warning (``strict=True`` raises instead).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from ragnest import ParseError, RagnestError, Source, registry
from ragnest.ingest import discover, pick_parser
from ragnest.protocols import Component, Parser

from langchain_ragnest.documents import chunk_to_document

__all__ = ["RagnestLoader", "default_parsers"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def default_parsers(chunking: Literal["page", "interleaved"] = "page") -> list[Parser]:
    """The parsers of ragnest's ``lite`` pipeline: PDF (with ``chunking``), text and
    Markdown, images, Office/HTML/e-mail (the last two need ``ragnest[lite]`` and
    ``ragnest[office]`` when a file of theirs is read)."""
    return [
        registry.create("parser/pdf", {"chunking": chunking}),
        registry.create("parser/text"),
        registry.create("parser/image"),
        registry.create("parser/office"),
    ]


class RagnestLoader(BaseLoader):
    """Loads files and folders (recursively) through ragnest's parsers.

    Args:
        paths: a file or folder, or several.
        chunking: ``"page"`` or ``"interleaved"`` for PDFs.
        parsers: ragnest parsers to use instead of :func:`default_parsers`.
        image_format: the format image references announce (``jpeg``, ``png``, ``webp``).
        strict: raise on a file that cannot be read instead of skipping it.
    """

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike],
        *,
        chunking: Literal["page", "interleaved"] = "page",
        parsers: Sequence[Parser] | None = None,
        image_format: str = "jpeg",
        strict: bool = False,
    ) -> None:
        if chunking not in ("page", "interleaved"):
            raise ValueError(f"RagnestLoader: chunking={chunking!r}: use 'page' or 'interleaved'")
        self.paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        self.chunking = chunking
        self.parsers = list(parsers) if parsers is not None else None
        self.image_format = image_format
        self.strict = strict

    def lazy_load(self) -> Iterator[Document]:
        """One Document per chunk, file after file, in the order the files are found."""
        own = self.parsers is None
        parsers = default_parsers(self.chunking) if own else list(self.parsers or ())
        try:
            files, skipped = discover(self.paths)
            for entry in skipped:
                self._skip(entry.path, entry.reason)
            for path in files:
                yield from self._load_file(Source.from_path(path), parsers)
        finally:
            if own:
                for parser in parsers:
                    if isinstance(parser, Component):
                        parser.close()

    def _load_file(self, source: Source, parsers: Sequence[Parser]) -> Iterator[Document]:
        parser = pick_parser(source, parsers)
        if parser is None:
            self._skip(source.display_name, "no parser reads this type of file")
            return
        count = 0
        try:
            for chunk in parser.parse(source):
                count += 1
                yield chunk_to_document(chunk, image_format=self.image_format)
        except RagnestError as err:
            if self.strict:
                raise
            logger.warning("RagnestLoader: %s: stopped after %d chunks: %s",
                           source.display_name, count, err)
            return
        logger.debug("RagnestLoader: %s: %d chunks", source.display_name, count)

    def _skip(self, path: Any, reason: str) -> None:
        if self.strict:
            raise ParseError(str(path), reason)
        logger.warning("RagnestLoader: skipped %s: %s", path, reason)
