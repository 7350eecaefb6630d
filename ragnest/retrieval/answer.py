"""A retrieval's answer: the generator run on its hits, with every step's seconds.

What ``Pipeline.query`` and ``Pipeline.stream`` do after retrieving (usable by a server
holding a :class:`~ragnest.retrieval.Retriever`)::

    >>> import tempfile
    >>> from ragnest import Pipeline
    >>> with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": tempfile.mkdtemp()}) as rag:
    ...     _ = rag.ingest(["examples/docs"], progress=False)
    ...     result = rag.retriever.run("How often should the machine be descaled?")
    ...     answer = answer_retrieval(result, rag.generator, rag.embedders)
    >>> answer.citations[0].page, "generate" in answer.timings
    (5, True)
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import replace

from ragnest.collection import bind_embedder
from ragnest.protocols import Embedder, Generator, StreamingGenerator
from ragnest.retrieval.retriever import Retrieval
from ragnest.types import Answer, AnswerDelta

__all__ = ["answer_retrieval", "stream_retrieval"]


def answer_retrieval(
    result: Retrieval, generator: Generator | None, embedders: Mapping[str, Embedder]
) -> Answer:
    """The generator's answer from ``result``'s hits (hits only when there is no
    generator); ``timings`` holds the retrieval's steps and ``generate``."""
    if generator is None:
        return Answer(text="", hits=tuple(result.hits), found=bool(result.hits),
                      timings=dict(result.timings))
    t0 = time.perf_counter()
    answer = bind_embedder(generator, embedders).generate(result.query, result.hits)
    timings = {**result.timings, "generate": time.perf_counter() - t0}
    return replace(answer, timings={**timings, **answer.timings})


def stream_retrieval(
    result: Retrieval, generator: Generator | None, embedders: Mapping[str, Embedder]
) -> Iterator[AnswerDelta]:
    """:func:`answer_retrieval` as deltas (one for a generator that does not stream); the
    last delta carries the :class:`Answer`."""
    if generator is None or not isinstance(generator, StreamingGenerator):
        answer = answer_retrieval(result, generator, embedders)
        yield AnswerDelta(text=answer.text, citations=answer.citations, done=True,
                          answer=answer)
        return
    t0 = time.perf_counter()
    for delta in bind_embedder(generator, embedders).stream(result.query, result.hits):
        if delta.done and delta.answer is not None:
            timings = {**result.timings, "generate": time.perf_counter() - t0,
                       **delta.answer.timings}  # the generator's own steps are kept
            delta = replace(delta, answer=replace(delta.answer, timings=timings))
        yield delta
