"""A collection: the named vectors a set of embedders writes, their identity, and the
state they fitted on the corpus, bound to a store.

Ingest, retrieval, a Ray job and a server all open a store the same way::

    >>> import tempfile
    >>> from ragnest.collection import open_collection, collection_specs
    >>> from ragnest.embedders.bm25 import Bm25Embedder
    >>> from ragnest.stores import QdrantStore
    >>> embedders = {"bm25": Bm25Embedder()}
    >>> [s.name for s in collection_specs(embedders)]
    ['bm25-sparse']
    >>> store = QdrantStore(path=tempfile.mkdtemp())
    >>> open_collection(store, embedders)
    >>> store.close()
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ragnest.errors import ConfigError
from ragnest.ladder import store_specs
from ragnest.protocols import Embedder, EmbedderAware, FittedEmbedder, Store
from ragnest.types import VectorSpec

__all__ = [
    "bind_embedder",
    "check_embedder_names",
    "collection_identity",
    "collection_specs",
    "fitted_embedders",
    "open_collection",
]

logger = logging.getLogger(__name__)


def check_embedder_names(embedders: Mapping[str, Embedder]) -> None:
    """Embedder names prefix vector names: letters, digits and ``_`` only."""
    if not embedders:
        raise ConfigError("a pipeline needs at least one embedder")
    for key in embedders:
        if not key or "-" in key or not key.replace("_", "").isalnum():
            raise ConfigError(
                f"embedder name {key!r}: use letters, digits and '_' (it prefixes vector names)"
            )


def collection_specs(embedders: Mapping[str, Embedder]) -> list[VectorSpec]:
    """The store's named vectors: ``<embedder name>-<level name>`` for every level."""
    return [s for key, emb in embedders.items() for s in store_specs(key, emb.vector_specs())]


def collection_identity(embedders: Mapping[str, Embedder]) -> dict[str, Any]:
    """What the store records to refuse a different embedder later."""
    return {key: emb.identity() for key, emb in embedders.items()}


def fitted_embedders(embedders: Mapping[str, Embedder]) -> dict[str, FittedEmbedder]:
    """The embedders that carry corpus-fitted state, by name."""
    return {k: e for k, e in embedders.items() if isinstance(e, FittedEmbedder)}


def open_collection(store: Store, embedders: Mapping[str, Embedder]) -> None:
    """Create or reopen the store's collection for ``embedders`` and load the state they
    fitted (a different ladder or model is refused by the store)."""
    check_embedder_names(embedders)
    store.open(collection_specs(embedders), collection_identity(embedders))
    for key, emb in fitted_embedders(embedders).items():
        state = store.fitted_state(key)
        emb.load_fitted_state(state)
        if state is not None:
            logger.debug("embedder %r: loaded the fitted state stored with the collection", key)


def bind_embedder(component: Any, embedders: Mapping[str, Embedder]) -> Any:
    """Hand a component that asks for one of ``embedders`` by name
    (:class:`~ragnest.protocols.EmbedderAware`, e.g. the extractive generator) that
    embedder; other components pass through. Returns ``component``.

    >>> from ragnest.embedders.bm25 import Bm25Embedder
    >>> from ragnest.generators.extractive import ExtractiveGenerator
    >>> bind_embedder(ExtractiveGenerator(embedder="dense"), {"bm25": Bm25Embedder()})
    Traceback (most recent call last):
    ...
    ragnest.errors.ConfigError: the generator asks for embedder 'dense', which is not an embedder of this pipeline (embedders: bm25)
    """
    if isinstance(component, EmbedderAware) and component.uses_embedder is not None:
        name = component.uses_embedder
        if name not in embedders:
            raise ConfigError(
                f"the generator asks for embedder {name!r}, which is not an embedder of this "
                f"pipeline (embedders: {', '.join(sorted(embedders))})"
            )
        component.bind_embedder(embedders[name])
    return component
