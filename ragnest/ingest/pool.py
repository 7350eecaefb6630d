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
``workers="auto"`` (the pipelines' default) picks the count from the corpus with
:func:`auto_workers`: a spawned worker costs about a second to start (imports), a
forked one milliseconds, so a small corpus is parsed in the calling process and a
bigger one by one process per CPU.
Worker processes are forked on Linux unless the parent holds a runtime that does not
survive a fork (torch, ONNX Runtime), else spawned (see :mod:`ragnest.ingest.start`;
``RAGNEST_WORKER_START`` overrides), and reused for the whole ingest.

Workers never outlive the process that started them: on Linux each asks the kernel
for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``, so a ``kill -9`` of
``ragnest ingest`` takes its workers along), and on every platform a watchdog thread
exits the worker once its parent is gone. Workers ignore SIGINT (Ctrl-C reaches the
whole process group; the parent stops them) and write nothing on the parent's stdout
(their fd 1 is the parent's stderr, so ``--json`` output stays JSON). While the pool
runs in the main thread and nobody else handles SIGTERM, a SIGTERM raises
``SystemExit(143)`` in the parent, so the ingest unwinds and :meth:`ParsePool.close`
stops the workers: nothing is left behind (no leaked semaphores). :meth:`ParsePool.close`
terminates workers still busy with parses nobody waits for any more.

What the parsing libraries said about each document (MuPDF warnings, see
:mod:`ragnest.media.diagnostics`) is kept for :meth:`ParsePool.warnings`.

Given ``embedders`` (see :func:`~ragnest.ingest.embed.portable_embedders`), worker
processes also embed the chunks they parse (each receives its copy of the loaded models
once, at start), so parsing *and* embedding run in parallel and the calling process only
writes; :meth:`ParsePool.vectors` hands over a document's vectors by chunk id. Chunks
``stored(document_id)`` lists are not embedded (the store keeps theirs). A worker whose
embedding fails returns no vectors: the caller embeds those chunks itself and reports
the error the usual way.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack
from typing import Any

from ragnest.errors import ConfigError, ParseError
from ragnest.ingest.embed import embed_missing, portable_embedders, unpack_embedders
from ragnest.ingest.signals import sigterm_unwinds
from ragnest.ingest.start import reset_after_fork, start_method
from ragnest.media.diagnostics import Warnings, collect_warnings
from ragnest.protocols import Embedder, PagedParser, Parser
from ragnest.types import Chunk, Source, Vector

__all__ = [
    "ChunkVectors", "ParsePool", "auto_workers", "page_ranges", "parse_all", "parse_embed",
    "parse_noted", "resolve_workers",
]

logger = logging.getLogger(__name__)

Job = tuple[Source, Parser]
#: Vectors by chunk id (each chunk's named vectors, as :func:`embed_chunks` makes them).
ChunkVectors = dict[str, dict[str, Vector]]
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_WATCH_SECONDS = 0.5
_STOP_SECONDS = 5.0
#: ``workers="auto"`` parses in the calling process below this many bytes of input when
#: workers are spawned: measured on 2 CPUs, a second spawned process broke even on the R
#: manuals (3.7 MB, 677 pages) and gave 1.19x on the gnuplot/asymptote/octave manuals
#: (7.3 MB, 1,665 pages).
AUTO_MIN_BYTES = 4_000_000
#: The same when workers are forked (no start-up imports): on 2 CPUs, ``-w 2`` broke even
#: on one 113-page manual (0.6 MB), gave 1.25x on four R manuals (1.7 MB, 275 pages) and
#: 1.4x on seven (3.6 MB, 677 pages).
AUTO_MIN_BYTES_FORK = 1_500_000
_AUTO_MAX = 8


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def auto_workers(files: Sequence[str | os.PathLike[str]], cpus: int | None = None) -> int:
    """The parser processes ``workers="auto"`` uses for ``files``: 1 on a single CPU or
    when the files add up to less than :data:`AUTO_MIN_BYTES` (:data:`AUTO_MIN_BYTES_FORK`
    where workers are forked), else one per CPU (at most 8, and at most one per that many
    bytes of input, at least 2).

    >>> auto_workers([], cpus=4)
    1
    """
    cpus = cpus or _cpus()
    if cpus < 2:
        return 1
    total = 0
    for f in files:
        try:
            total += os.stat(f).st_size
        except OSError:
            continue
    least = AUTO_MIN_BYTES_FORK if start_method() == "fork" else AUTO_MIN_BYTES
    if total < least:
        return 1
    return max(2, min(cpus, _AUTO_MAX, total // least))


def resolve_workers(workers: int | str, files: Sequence[str | os.PathLike[str]]) -> int:
    """A ``workers`` setting as a process count: ``"auto"`` via :func:`auto_workers`,
    ``0`` one per CPU, else the number given."""
    if workers == "auto":
        return auto_workers(files)
    if not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"workers must be 'auto' or an integer >= 0, not {workers!r}")
    return workers or _cpus()


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


def parse_noted(parser: Parser, source: Source, start: int | None = None,
                stop: int | None = None) -> tuple[list[Chunk], tuple[str, ...]]:
    """:func:`parse_all` plus what the libraries warned about the file meanwhile."""
    with collect_warnings() as notes:
        chunks = parse_all(parser, source, start, stop)
    return chunks, notes.messages()


def page_ranges(source: Source, parser: Parser,
                split_pages: int) -> list[tuple[int | None, int | None]]:
    """The ``(start, stop)`` page ranges a document is parsed in: ``[(None, None)]`` (the
    whole document at once) unless ``parser`` reads page ranges and the document has
    more than ``split_pages`` pages (the local pool and a Ray job split alike)."""
    if not isinstance(parser, PagedParser):
        return [(None, None)]
    try:
        pages = parser.page_count(source)
    except Exception:  # let the real parse report the problem
        return [(None, None)]
    if pages <= split_pages:
        return [(None, None)]
    return [(a, min(a + split_pages, pages)) for a in range(0, pages, split_pages)]


def _die_with_parent(parent: int) -> None:
    """Worker initializer: exit when ``parent`` dies, leave Ctrl-C and stdout to it."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog below still works
            pass
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(_WATCH_SECONDS)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="ragnest-parent-watch", daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        sys.stdout.flush()
        os.dup2(2, 1)  # a library that prints writes to the parent's stderr, not stdout
        sys.stdout = sys.stderr
    except (OSError, AttributeError, ValueError):
        pass


#: The embedders of this worker process (set by :func:`_start_worker`; None: parse only).
_EMBEDDERS: dict[str, Embedder] | None = None
_EMBED_BATCH = 64


def _start_worker(parent: int, embedders: bytes | None, forked: bool = False) -> None:
    """Worker initializer: :func:`~ragnest.ingest.start.reset_after_fork` when forked,
    :func:`_die_with_parent`, then load the embedders, if any (a failure only means this
    worker parses and the caller embeds)."""
    global _EMBEDDERS
    if forked:
        reset_after_fork()
    _die_with_parent(parent)
    if embedders is None:
        return
    try:
        loaded = unpack_embedders(embedders)
        for emb in loaded.values():
            emb.warm_up()
        _EMBEDDERS = loaded
    except Exception:
        logger.warning("parser worker could not load the embedders; the main process "
                       "embeds instead", exc_info=True)


def parse_embed(parser: Parser, source: Source, start: int | None, stop: int | None,
                stored: frozenset[str] = frozenset(),
                ) -> tuple[list[Chunk], tuple[str, ...], ChunkVectors | None]:
    """:func:`parse_noted` plus, in a worker holding embedders, the vectors of the
    chunks not in ``stored`` (``None`` when this worker does not embed or failed to)."""
    chunks, notes = parse_noted(parser, source, start, stop)
    if _EMBEDDERS is None:
        return chunks, notes, None
    try:
        points = embed_missing(_EMBEDDERS, chunks, stored=stored, batch_size=_EMBED_BATCH)
    except Exception as err:  # the caller embeds again and reports the error
        logger.info("%s: embedding in the worker failed (%s); left to the main process",
                    source.display_name, err)
        return chunks, notes, None
    return chunks, notes, {p.chunk.id: p.vectors for p in points}


class ParsePool:
    """Ordered, bounded parsing over ``workers`` processes (see the module docs)."""

    def __init__(self, *, workers: int | str = 1, split_pages: int = 100,
                 files: Sequence[str | os.PathLike[str]] = (),
                 embedders: Mapping[str, Embedder] | None = None,
                 stored: Callable[[str], set[str]] | None = None,
                 embed: bool | str = "auto") -> None:
        if workers != "auto" and (not isinstance(workers, int) or workers < 0):
            raise ConfigError("ParsePool workers must be 'auto' or >= 0 (0 = one per CPU)")
        if embed not in (True, False, "auto"):
            raise ConfigError(f"ParsePool embed must be true, false or 'auto', not {embed!r}")
        self.workers = resolve_workers(workers, files)
        self.split_pages = max(1, split_pages)
        # Workers embed only when there are workers (in-process, the writer embeds) and,
        # under "auto", a CPU is left for the writer: when every CPU runs a parser, the
        # embedders' copies cost more CPU than they take off the writer (2 CPUs, -w 2:
        # figure manuals 124 -> 115 pages/s, R manuals 89 -> 75). Packed at the first worker.
        wanted = embed is True or (embed == "auto" and _cpus() > self.workers)
        self._to_pack = dict(embedders) if embedders and self.workers > 1 and wanted else None
        self._packed: bytes | None = None
        self._stored = stored
        self._vectors: dict[str, ChunkVectors] = {}
        self._executor: ProcessPoolExecutor | None = None
        self._pending: deque[Future[Any]] = deque()
        self._warnings: dict[str, tuple[str, ...]] = {}
        self._unwinds = ExitStack()  # holds sigterm_unwinds() while workers run

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def warnings(self, source: Source) -> tuple[str, ...]:
        """What the parsing libraries said about ``source`` (once: the entry is dropped)."""
        return self._warnings.pop(source.document_id, ())

    @property
    def embeds(self) -> bool:
        """Whether the worker processes embed the chunks they parse."""
        return self._portable() is not None

    def _portable(self) -> bytes | None:
        if self._to_pack is not None:
            self._packed, self._to_pack = portable_embedders(self._to_pack), None
        return self._packed

    def vectors(self, source: Source) -> ChunkVectors:
        """The vectors the workers made for ``source``'s chunks, by chunk id (once: the
        entry is dropped); chunks missing here are the caller's to embed."""
        return self._vectors.pop(source.document_id, {})

    def close(self) -> None:
        """Stop the worker processes: pending tasks are cancelled, and workers still busy
        with a parse nobody waits for are terminated instead of being waited for."""
        executor, self._executor = self._executor, None
        if executor is not None:
            if any(not f.done() for f in self._pending):
                # Nobody waits for these parses: stop the workers (the executor then fails
                # the remaining futures itself; cancelling them first races with that).
                self._terminate(executor)
                executor.shutdown(wait=True)
            else:
                executor.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()
        self._vectors.clear()
        self._unwinds.close()

    @staticmethod
    def _terminate(executor: ProcessPoolExecutor) -> None:
        processes = list((getattr(executor, "_processes", None) or {}).values())
        for p in processes:
            p.terminate()
        deadline = time.monotonic() + _STOP_SECONDS
        for p in processes:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
        logger.info("stopped %d busy parser processes", len(processes))

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            method = start_method()
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context(method),
                initializer=_start_worker,
                initargs=(os.getpid(), self._portable(), method == "fork"))
            logger.debug("parser workers: %d, started by %s", self.workers, method)
            self._unwinds.enter_context(sigterm_unwinds())
        return self._executor

    def _ranges(self, source: Source, parser: Parser) -> list[tuple[int | None, int | None]]:
        return page_ranges(source, parser, self.split_pages)

    def map(self, jobs: Iterable[Job]) -> Iterator[tuple[Source, list[Chunk], ParseError | None]]:
        """Yield ``(source, chunks, error)`` per job, in job order.

        ``error`` is the :class:`ParseError` that stopped that document (its chunks are
        then ``[]``); other documents carry on.
        """
        if self.workers == 1:
            for source, parser in jobs:
                with collect_warnings() as notes:
                    try:
                        chunks, error = parse_all(parser, source), None
                    except ParseError as err:
                        chunks, error = [], err
                self._note(source, notes.messages())
                yield source, chunks, error
            return
        pool = self._pool()
        window = 2 * self.workers
        pending: deque[tuple[Source, list[Future[Any]]]] = deque()
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
                stored = frozenset(self._stored(source.document_id)
                                   if self.embeds and self._stored else ())
                futures = [pool.submit(parse_embed, parser, source, a, b, stored)
                           for a, b in self._ranges(source, parser)]
                self._pending.extend(futures)
                pending.append((source, futures))
                in_flight += len(futures)
            if not pending:
                return
            source, futures = pending.popleft()
            in_flight -= len(futures)
            chunks: list[Chunk] = []
            vectors: ChunkVectors = {}
            notes = Warnings()
            error: ParseError | None = None
            for future in futures:
                if error is not None:
                    future.cancel()
                    continue
                try:
                    part, said, made = future.result()
                    chunks.extend(part)
                    notes.extend(said)
                    vectors.update(made or {})
                except ParseError as err:
                    error = err
                except Exception as err:  # a worker died (out of memory, crash)
                    error = ParseError(source.display_name,
                                       f"parser process failed: {type(err).__name__}: {err}")
            for future in futures:
                self._pending.remove(future)
            self._note(source, notes.messages())
            if vectors and not error:
                self._vectors[source.document_id] = vectors
            yield source, ([] if error else chunks), error

    def _note(self, source: Source, notes: tuple[str, ...]) -> None:
        if notes:
            self._warnings[source.document_id] = notes
