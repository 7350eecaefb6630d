"""Store vector names: the one place that joins an embedder's key and a level's name.

An embedder names its levels locally (``coarse``, ``mid``, ``fine``); a pipeline holds
several embedders under keys (``pages``, ``bm25``), and the store sees one named vector
per (key, level)::

    >>> vector_name("pages", "coarse")
    'pages-coarse'
    >>> split_vector_name("my-pages-fine", ["bm25", "my-pages"])
    ('my-pages', 'fine')
    >>> from ragnest.types import VectorSpec
    >>> [s.name for s in store_specs("bm25", [VectorSpec(name="sparse", kind="sparse")])]
    ['bm25-sparse']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

from ragnest.types import VectorSpec

__all__ = ["SEPARATOR", "split_vector_name", "store_specs", "store_vectors", "vector_name"]

#: Joins an embedder key and a level name.
SEPARATOR = "-"

V = TypeVar("V")


def vector_name(embedder_key: str, level_name: str) -> str:
    """The store's name for level ``level_name`` of the embedder held under ``embedder_key``.

    Raises :class:`ValueError` for an empty key or level name.
    """
    if not embedder_key or not level_name:
        raise ValueError(
            f"a vector name needs an embedder key and a level name, got "
            f"{embedder_key!r} and {level_name!r}"
        )
    return f"{embedder_key}{SEPARATOR}{level_name}"


def split_vector_name(name: str, keys: Iterable[str]) -> tuple[str, str]:
    """The inverse of :func:`vector_name`: ``(embedder key, level name)``.

    Keys and level names may themselves hold the separator, so the embedder keys in use
    must be given; the longest key that prefixes ``name`` wins. Raises
    :class:`ValueError` when no key matches.
    """
    best = ""
    for key in keys:
        if len(key) > len(best) and name.startswith(key + SEPARATOR) and len(name) > len(key) + 1:
            best = key
    if not best:
        raise ValueError(f"vector name {name!r} does not start with any embedder key + {SEPARATOR!r}")
    return best, name[len(best) + len(SEPARATOR) :]


def store_specs(embedder_key: str, specs: Sequence[VectorSpec]) -> list[VectorSpec]:
    """An embedder's :class:`VectorSpec` list with store names (order kept)."""
    return [replace(s, name=vector_name(embedder_key, s.name)) for s in specs]


def store_vectors(embedder_key: str, vectors: Mapping[str, V]) -> dict[str, V]:
    """An embedder's ``{level: vector}`` mapping keyed by store names instead."""
    return {vector_name(embedder_key, level): vec for level, vec in vectors.items()}
