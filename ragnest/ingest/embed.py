"""Embedding as a step of its own: chunks in, :class:`~ragnest.types.EmbeddedChunk`\\ s out.

Pure data in and out, so the step can run anywhere (this process, a worker on another
machine) and hand its output to a store writer::

    >>> from ragnest.embedders.bm25 import Bm25Embedder
    >>> from ragnest.ingest.embed import embed_chunks
    >>> from ragnest.types import Chunk, make_chunk_id
    >>> chunk = Chunk(id=make_chunk_id("d", 0, "descale"), document_id="d", kind="text",
    ...               text="descale the machine")
    >>> [sorted(p.vectors) for p in embed_chunks({"bm25": Bm25Embedder()}, [chunk])]
    [['bm25-sparse']]

Corpus-fitted state (a PCA rotation) is fitted by :func:`fit_embedders`, explicitly,
and stored with the collection before any vector made with it is written.

:func:`portable_embedders` packs embedders for parser worker processes (which then
embed what they parse, see :class:`~ragnest.ingest.pool.ParsePool`)::

    >>> sorted(unpack_embedders(portable_embedders({"bm25": Bm25Embedder()})))
    ['bm25']
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
from collections.abc import Collection, Mapping, Sequence

from ragnest.collection import fitted_embedders
from ragnest.errors import EmbeddingError, RagnestError
from ragnest.ladder import store_vectors
from ragnest.protocols import Embedder, Store
from ragnest.types import Chunk, EmbeddedChunk, Vector

__all__ = ["embed_chunks", "embed_missing", "fit_embedders", "needs_fit",
           "portable_embedders", "unpack_embedders"]

logger = logging.getLogger(__name__)


def embed_chunks(embedders: Mapping[str, Embedder], chunks: Sequence[Chunk]) -> list[EmbeddedChunk]:
    """Every embedder's vectors for every chunk, under the store's vector names.

    An embedder failure becomes :class:`EmbeddingError` naming the embedder (and the
    chunks' document); a chunk an embedder has nothing for simply lacks its vectors.
    """
    vectors: list[dict[str, Vector]] = [{} for _ in chunks]
    if not chunks:
        return []
    for key, emb in embedders.items():
        try:
            out = emb.embed_documents(chunks)
        except RagnestError:
            raise
        except Exception as err:
            raise EmbeddingError(
                f"embedder {key!r} failed on {chunks[0].source or chunks[0].document_id}: "
                f"{type(err).__name__}: {err}"
            ) from err
        if len(out) != len(chunks):
            raise EmbeddingError(
                f"embedder {key!r} returned {len(out)} results for {len(chunks)} chunks"
            )
        for named, levels in zip(vectors, out):
            named.update(store_vectors(key, levels))
    return [EmbeddedChunk(chunk=c, vectors=v) for c, v in zip(chunks, vectors)]


def embed_missing(embedders: Mapping[str, Embedder], chunks: Sequence[Chunk], *,
                  stored: Collection[str] = frozenset(),
                  batch_size: int = 64) -> list[EmbeddedChunk]:
    """:func:`embed_chunks` for the chunks whose ids are not in ``stored`` (those the store
    keeps), ``batch_size`` at a time in document order: what a parse worker or a Ray
    task embeds of a document (the writer's batches)."""
    new = [c for c in chunks if c.id not in stored]
    step = max(1, batch_size)
    points: list[EmbeddedChunk] = []
    for start in range(0, len(new), step):
        points.extend(embed_chunks(embedders, new[start : start + step]))
    return points


def needs_fit(embedders: Mapping[str, Embedder]) -> list[str]:
    """Names of the embedders that ask for corpus-fitted state and hold none."""
    return [k for k, e in fitted_embedders(embedders).items() if e.needs_fit]


def fit_embedders(
    store: Store,
    embedders: Mapping[str, Embedder],
    sample: Sequence[Chunk],
    *,
    only_missing: bool = True,
) -> list[str]:
    """Fit corpus state on ``sample`` and store it with the collection, once.

    ``only_missing`` fits only embedders that hold no state (neither fitted nor loaded
    from the store); otherwise every fitted embedder is fitted anew, which the store
    refuses when a different state is already stored (vectors were made with it).
    Returns the names fitted. Fitting errors (too small a sample) propagate: they are
    no document's fault.
    """
    fitted: list[str] = []
    for key, emb in fitted_embedders(embedders).items():
        if only_missing and not emb.needs_fit:
            continue
        if not sample:
            raise EmbeddingError(f"embedder {key!r} needs a sample of chunks to fit on; got none")
        logger.info("embedder %r: fitting its corpus state on %d chunks", key, len(sample))
        emb.fit(sample)
        state = emb.fitted_state()
        if state is None:
            continue
        store.save_fitted_state(key, state)
        fitted.append(key)
    return fitted


def portable_embedders(embedders: Mapping[str, Embedder]) -> bytes | None:
    """``embedders`` pickled for worker processes, or ``None`` when they cannot travel
    (an embedder that cannot be pickled, or one still waiting to be fitted: its vectors
    are made here after the fit) or should not: only embedders that say so
    (``embeds_in_workers = True``: small CPU models such as WordLlama, BM25 and the
    visual fingerprint) are copied into every worker; a GPU or remote model is not
    (one copy per worker would multiply its memory, or its requests).

    An embedder travels as it is, loaded model included, when it pickles (unpickling a
    loaded WordLlama is cheaper than loading it again); else, when it is a dataclass, as
    a fresh copy of its settings plus the fitted state it holds (each worker loads its
    model on ``warm_up``). Either way a worker makes exactly the vectors this process
    would.
    """
    if needs_fit(embedders):
        return None
    if not all(getattr(e, "embeds_in_workers", False) for e in embedders.values()):
        logger.debug("embedding stays in the main process: %s", ", ".join(
            k for k, e in embedders.items() if not getattr(e, "embeds_in_workers", False)))
        return None
    fitted = fitted_embedders(embedders)
    packed: dict[str, bytes] = {}
    try:
        for key, emb in embedders.items():
            try:
                packed[key] = pickle.dumps(emb)
                continue
            except Exception:
                if not dataclasses.is_dataclass(emb):
                    raise
            copy = dataclasses.replace(emb)  # type: ignore[type-var]
            if key in fitted:
                state = fitted[key].fitted_state()
                if state is not None:
                    copy.load_fitted_state(state)
            packed[key] = pickle.dumps(copy)
        return pickle.dumps(packed)
    except Exception as err:  # not picklable, no settings-only copy: embed here
        logger.info("embedding stays in the main process: %s: %s", type(err).__name__, err)
        return None


def unpack_embedders(blob: bytes) -> dict[str, Embedder]:
    """The embedders :func:`portable_embedders` packed."""
    return {key: pickle.loads(one) for key, one in pickle.loads(blob).items()}
