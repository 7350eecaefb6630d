"""Qdrant Edge backend: Qdrant's engine in-process (this package is the one importing
``qdrant_edge`` for the store).

Layout under the store ``path``::

    path/.ragnest.lock                 the writer's lock (one writer at a time), taken first
    path/.ragnest.commit, .ragnest.turn   when files may be copied (see ``_commit``)
    path/<collection>/                 the EdgeShard (segments, WAL, edge_config.json)
    path/<collection>.ragnest.json     ragnest metadata: specs, identity, version
    path/.ragnest-read/<collection>/   readers' private copies (see ``_replica``)

A backend opens the store in one of two modes. ``write``: the live shard, under the
writer's lock, every change of files inside an exclusive commit section. ``read``: a
private copy of the last committed state (any number of readers, during a write too),
refreshed when the writer has changed the data since; writing through it is refused.
Used through :class:`ragnest.stores.QdrantStore`::

    >>> from ragnest.stores import QdrantStore
    >>> store = QdrantStore(path="/tmp/ragnest-db")   # doctest: +SKIP
"""

from __future__ import annotations

from ragnest.stores._edge._backend import EdgeBackend, check_store_path, no_store
from ragnest.stores._edge._engine import DEFAULT_FULL_SCAN_THRESHOLD

__all__ = ["DEFAULT_FULL_SCAN_THRESHOLD", "EdgeBackend", "check_store_path", "no_store"]
