"""ragnest's parsers as a LlamaIndex reader: PDFs, Office files, images and text as one
Document per chunk, with page, region and (optionally) the page image.

    >>> from llama_index.readers.ragnest import RagnestReader
    >>> docs = RagnestReader().load_data("examples/docs/nimbus3_handbook.pdf")
    >>> len(docs), docs[4].metadata["page"], docs[4].metadata["file_name"]
    (8, 5, 'nimbus3_handbook.pdf')

It plugs into ``SimpleDirectoryReader`` too::

    reader = RagnestReader(images=True)
    SimpleDirectoryReader("manuals/", file_extractor={".pdf": reader, ".png": reader})

Document ids are ragnest's stable chunk ids (re-reading an unchanged file gives the same
ids, so an index's docstore skips them); the metadata keys are those of
:func:`llama_index.retrievers.ragnest.nodes.chunk_metadata`.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from llama_index.core.readers.base import BaseReader
from llama_index.core.schema import Document, ImageDocument
from llama_index.retrievers.ragnest.nodes import (
    DEFAULT_MAX_PIXELS,
    LLM_METADATA_KEYS,
    chunk_metadata,
    image_bytes,
)

from ragnest import Pipeline, steps
from ragnest.ingest import discover
from ragnest.media.render import Renderer
from ragnest.multimodal import chunk_image, chunk_text
from ragnest.protocols import Parser
from ragnest.types import Chunk

__all__ = ["RagnestReader"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def _default_parsers() -> list[Parser]:
    from ragnest.parsers import ImageParser, PdfParser, TextParser

    return [PdfParser(), TextParser(), ImageParser()]


class RagnestReader(BaseReader):
    """Reads files with ragnest's parsers: ``pipeline``'s, ``parsers``, or by default the
    PDF (text layer, OCR for scanned pages), text/Markdown and image parsers.

    ``images=True`` makes chunks with a page or figure image ``ImageDocument``\\ s
    carrying it as a base64 JPEG (at most ``max_pixels``). ``load_data`` takes a file, a
    folder (read recursively) or a list of them; ``extra_info`` is added to every
    document's metadata. A file no parser reads raises ``ragnest.ParseError`` naming it.
    """

    def __init__(
        self,
        pipeline: Pipeline | None = None,
        *,
        parsers: Sequence[Parser] | None = None,
        images: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        if pipeline is not None and parsers is not None:
            raise ValueError("give pipeline= or parsers=, not both")
        self.parsers = list(parsers) if parsers is not None else (
            list(pipeline.parsers) if pipeline is not None else _default_parsers())
        if not self.parsers:
            raise ValueError("RagnestReader needs at least one parser")
        self.images = images
        self.max_pixels = max_pixels

    def lazy_load_data(  # type: ignore[override]
        self,
        file: PathLike | Iterable[PathLike],
        extra_info: dict[str, Any] | None = None,
        **_: Any,
    ) -> Iterator[Document]:
        """One Document per chunk of every file, file by file, in reading order."""
        paths = [file] if isinstance(file, (str, os.PathLike)) else list(file)
        files, skipped = discover(paths)
        if skipped:
            raise FileNotFoundError(f"{skipped[0].path}: {skipped[0].reason}")
        renderer = Renderer() if self.images else None
        try:
            for path in files:
                for chunk in steps.parse(Path(path), self.parsers, progress=False):
                    yield self._document(chunk, extra_info, renderer)
        finally:
            if renderer is not None:
                renderer.close()

    def load_data(  # type: ignore[override]
        self,
        file: PathLike | Iterable[PathLike],
        extra_info: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """:meth:`lazy_load_data` as a list."""
        return list(self.lazy_load_data(file, extra_info, **kwargs))

    def _document(self, chunk: Chunk, extra_info: dict[str, Any] | None,
                  renderer: Renderer | None) -> Document:
        meta = {**chunk_metadata(chunk), **(extra_info or {})}
        hidden = [k for k in meta if k not in LLM_METADATA_KEYS]
        kwargs: dict[str, Any] = {
            "id_": chunk.id,
            "text": chunk_text(chunk),
            "metadata": meta,
            "excluded_llm_metadata_keys": hidden,
            "excluded_embed_metadata_keys": hidden,
        }
        image = chunk_image(chunk, region=True) if self.images else None
        if image is not None:
            try:
                data = image_bytes(image, max_pixels=self.max_pixels, renderer=renderer)
            except Exception as err:
                logger.warning("%s p.%s: no image for chunk %s (%s)", chunk.source, chunk.page,
                               chunk.id, err)
            else:
                return ImageDocument(image=base64.b64encode(data).decode("ascii"),
                                     image_mimetype="image/jpeg", **kwargs)
        return Document(**kwargs)
