"""Embedders: each turns chunks and queries into named vectors, one per ladder level.

Backends are imported on first use through the registry (``embedder/wordllama``,
``embedder/bm25``, ...), so importing this package imports no optional dependency.
"""

__all__: list[str] = []
