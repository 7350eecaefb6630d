"""Vector stores. ``QdrantStore`` is the one front door (Qdrant Edge, server, or local mode).

>>> from ragnest.stores import QdrantStore
>>> QdrantStore(path="/tmp/ragnest-db").backend
'edge'
"""

from __future__ import annotations

from ragnest.stores.qdrant import QdrantStore, QdrantWrite, WriteResult

__all__ = ["QdrantStore", "QdrantWrite", "WriteResult"]
