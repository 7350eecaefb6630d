"""Parse many documents across worker processes, in order, with bounded memory.

:class:`ParsePool` takes the ingest's list of ``(source, parser)`` jobs and yields
``(source, chunks, error)`` in the same order. Big PDFs (more than ``split_pages``
pages, when the parser offers ``page_count``/``parse_pages``) are cut into page
ranges so one long manual also keeps every worker busy. At most ``2 x workers``
tasks are in flight, so a folder of thousands of files never piles up parsed
chunks faster than the embedder consumes them::

    >>> from ragnest.ingest.pool import ParsePool
    >>> from ragnest.parsers.pdf import PdfParser
    >>> from ragnest.types import Source
    >>> jobs = [(Source.from_path("examples/docs/lab_safety_guide.pdf"), PdfParser(ocr="never"))]
    >>> with ParsePool(workers=1) as pool:
    ...     [(s.name, len(chunks), err) for s, chunks, err in pool.map(jobs)]
    [('lab_safety_guide.pdf', 4, None)]

With ``workers=1`` everything runs in the calling process (no start-up cost).
Worker processes are started with ``spawn`` (never ``fork``: the parent may hold
threads of ONNX Runtime or the Qdrant engine) and reused for the whole ingest.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from ragnest.errors import ConfigError, ParseError
from ragnest.protocols import PagedParser, Parser
from ragnest.types import Chunk, Source

__all__ = ["ParsePool", "parse_all"]

logger = logging.getLogger(__name__)

Job = tuple[Source, Parser]


def parse_all(parser: Parser, source: Source, start: int | None = None,
              stop: int | None = None) -> list[Chunk]:
    """Parse ``source`` (or pages ``start:stop``) into a list; any failure becomes a
    :class:`ParseError` naming the file (runs inside worker processes)."""
    try:
        if start is None:
            return list(parser.parse(source))
        if not isinstance(parser, PagedParser):
            raise TypeError(f"{type(parser).__name__} cannot parse page ranges")
        return list(parser.parse_pages(source, start, stop))
    except ParseError:
        raise
    except Exception as err:  # a parser bug or library error: still name the file
        raise ParseError(source.display_name, f"{type(err).__name__}: {err}") from err


class ParsePool:
    """Ordered, bounded parsing over ``workers`` processes (see the module docs)."""

    def __init__(self, *, workers: int = 1, split_pages: int = 100) -> None:
        if workers < 0:
            raise ConfigError("ParsePool workers must be >= 0 (0 = one per CPU)")
        self.workers = workers or os.cpu_count() or 1
        self.split_pages = max(1, split_pages)
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes (pending tasks are cancelled)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            ctx = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)
        return self._executor

    def _ranges(self, source: Source, parser: Parser) -> list[tuple[int | None, int | None]]:
        if not isinstance(parser, PagedParser):
            return [(None, None)]
        try:
            pages = parser.page_count(source)
        except Exception:  # let the real parse report the problem
            return [(None, None)]
        if pages <= self.split_pages:
            return [(None, None)]
        return [(a, min(a + self.split_pages, pages)) for a in range(0, pages, self.split_pages)]

    def map(self, jobs: Iterable[Job]) -> Iterator[tuple[Source, list[Chunk], ParseError | None]]:
        """Yield ``(source, chunks, error)`` per job, in job order.

        ``error`` is the :class:`ParseError` that stopped that document (its chunks are
        then ``[]``); other documents carry on.
        """
        if self.workers == 1:
            for source, parser in jobs:
                try:
                    yield source, parse_all(parser, source), None
                except ParseError as err:
                    yield source, [], err
            return
        pool = self._pool()
        window = 2 * self.workers
        pending: deque[tuple[Source, list[Future[list[Chunk]]]]] = deque()
        in_flight = 0
        it = iter(jobs)
        exhausted = False
        while True:
            while not exhausted and in_flight < window:
                try:
                    source, parser = next(it)
                except StopIteration:
                    exhausted = True
                    break
                futures = [pool.submit(parse_all, parser, source, a, b)
                           for a, b in self._ranges(source, parser)]
                pending.append((source, futures))
                in_flight += len(futures)
            if not pending:
                return
            source, futures = pending.popleft()
            in_flight -= len(futures)
            chunks: list[Chunk] = []
            error: ParseError | None = None
            for future in futures:
                if error is not None:
                    future.cancel()
                    continue
                try:
                    chunks.extend(future.result())
                except ParseError as err:
                    error = err
                except Exception as err:  # a worker died (out of memory, crash)
                    error = ParseError(source.display_name,
                                       f"parser process failed: {type(err).__name__}: {err}")
            yield source, ([] if error else chunks), error
