"""Drawing a sample of chunks to fit corpus state on (``Pipeline.fit``, ``ragnest fit``).

    >>> from ragnest.ingest.sample import sample_chunks
    >>> from ragnest.parsers.text import TextParser
    >>> chunks = sample_chunks(["examples/docs"], [TextParser()], max_chunks=4)
    >>> len(chunks)
    4
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence

from ragnest.config import IngestConfig
from ragnest.ingest.discover import discover
from ragnest.ingest.plan import pick_parser
from ragnest.ingest.pool import ParsePool
from ragnest.protocols import Parser
from ragnest.types import Chunk, Source

__all__ = ["sample_chunks"]


def sample_chunks(
    sample: Iterable[str | os.PathLike[str]] | Sequence[Chunk] | str | os.PathLike[str],
    parsers: Sequence[Parser],
    *,
    config: IngestConfig | None = None,
    max_chunks: int = 2000,
    seed: int = 0,
) -> list[Chunk]:
    """At most ``max_chunks`` chunks, drawn at random (``seed``) from ``sample``: chunks,
    or files and folders parsed here (``config.workers`` processes; files no parser
    reads and files that fail to parse are left out)."""
    config = config or IngestConfig()
    if isinstance(sample, (str, os.PathLike)):
        sample = [sample]
    items = list(sample)
    if items and all(isinstance(c, Chunk) for c in items):
        chunks: list[Chunk] = items  # type: ignore[assignment]
    else:
        files, _ = discover(items)  # type: ignore[arg-type]
        chunks = []
        with ParsePool(workers=config.workers, split_pages=config.split_pages,
                       files=files) as pool:
            jobs = []
            for path in files:
                source = Source.from_path(path)
                parser = pick_parser(source, parsers)
                if parser is not None:
                    jobs.append((source, parser))
            for _, parsed, error in pool.map(jobs):
                if error is None:
                    chunks.extend(parsed)
    if len(chunks) > max_chunks:
        chunks = random.Random(seed).sample(chunks, max_chunks)
    return chunks
