"""Backend-neutral parsing of ragnest payload filters.

A filter maps a payload path to a scalar (exact match), a list (any of) or a
dict with ``gte``/``gt``/``lte``/``lt`` (range)::

    >>> parse_filters({"source": "a.pdf", "page": {"gte": 2}, "kind": ["page", "text"]})
    [Condition(key='source', op='match', value='a.pdf'), \
Condition(key='page', op='range', value={'gte': 2}), \
Condition(key='kind', op='any', value=['page', 'text'])]

Each backend turns the :class:`Condition` list into its own filter objects.

Known keys: the chunk payload's top-level fields a filter can use (:data:`FILTER_KEYS`:
the fields ``_backend.INDEXED_FIELDS`` indexes, plus ``pages``) and ``metadata.<key>``
for any key of the chunks' metadata (free-form: each parser writes its own, so any
name under ``metadata.`` is accepted). Any other key (``title``, ``text``, a typo) is
refused with a "did you mean": it would silently match nothing::

    >>> parse_filters({"sorce": "a.pdf"})
    Traceback (most recent call last):
    ...
    ragnest.errors.ConfigError: unknown filter key 'sorce'; did you mean 'source'? (filters name document_id, source, kind, page, pages, doc_fingerprint, or metadata.<key> for a key of the chunks' metadata)
    >>> parse_filters({"lang": "de"})
    Traceback (most recent call last):
    ...
    ragnest.errors.ConfigError: unknown filter key 'lang'; did you mean 'page' or 'metadata.lang'? (filters name document_id, source, kind, page, pages, doc_fingerprint, or metadata.<key> for a key of the chunks' metadata)
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ragnest._validate import did_you_mean
from ragnest.errors import ConfigError

__all__ = ["FILTER_KEYS", "METADATA_PREFIX", "RANGE_KEYS", "Condition", "check_key",
           "parse_filters"]

RANGE_KEYS = ("gte", "gt", "lte", "lt")
#: Top-level payload fields a filter may name (the indexed ones, and ``pages``).
FILTER_KEYS = ("document_id", "source", "kind", "page", "pages", "doc_fingerprint")
#: Prefix of filters on chunk metadata (``metadata.title``).
METADATA_PREFIX = "metadata."


@dataclass(frozen=True)
class Condition:
    """One ``must`` condition on a payload path."""

    key: str
    op: Literal["match", "any", "range"]
    value: Any


def _is_scalar(v: Any) -> bool:
    return isinstance(v, (str, int, bool)) and not isinstance(v, float)


def check_key(key: str) -> None:
    """Raise :class:`ConfigError` (with a "did you mean") unless ``key`` is a known
    payload key (see the module docs)."""
    if key in FILTER_KEYS or (key.startswith(METADATA_PREFIX) and len(key) > len(METADATA_PREFIX)):
        return
    tail = key.split(".", 1)[-1] or "title"
    hint = did_you_mean(key, difflib.get_close_matches(key, FILTER_KEYS, n=1, cutoff=0.75))
    if not hint:  # no near-typo of a payload field: perhaps a metadata key
        near = difflib.get_close_matches(key, FILTER_KEYS, n=2, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in [*near, METADATA_PREFIX + tail])}?"
    raise ConfigError(
        f"unknown filter key {key!r}{hint} (filters name {', '.join(FILTER_KEYS)}, or "
        f"{METADATA_PREFIX}<key> for a key of the chunks' metadata)"
    )


def parse_filters(filters: Mapping[str, Any] | None) -> list[Condition]:
    """Validate ``filters`` and return one condition per key (all must hold).

    Raises :class:`ConfigError` naming the key for shapes it does not understand.
    """
    if not filters:
        return []
    if not isinstance(filters, Mapping):
        raise ConfigError(f"filters must be a mapping of payload key -> value, got {filters!r}")
    out: list[Condition] = []
    for key, value in filters.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"filter key must be a non-empty string, got {key!r}")
        check_key(key)
        if isinstance(value, Mapping):
            unknown = [k for k in value if k not in RANGE_KEYS]
            if unknown or not value:
                raise ConfigError(
                    f"filter {key!r}: a dict filter is a range with keys "
                    f"{'/'.join(RANGE_KEYS)}, got {dict(value)!r}"
                )
            for k, v in value.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ConfigError(
                        f"filter {key!r}: range bound {k!r} must be a number, got {v!r}"
                    )
            out.append(Condition(key, "range", {k: value[k] for k in RANGE_KEYS if k in value}))
        elif isinstance(value, (list, tuple, set, frozenset)):
            values = list(value)
            if not values:
                raise ConfigError(f"filter {key!r}: an empty list matches nothing")
            if not all(_is_scalar(v) for v in values) or len({type(v) for v in values}) > 1:
                raise ConfigError(
                    f"filter {key!r}: a list filter needs values that are all strings or all "
                    f"integers, got {values!r}"
                )
            if isinstance(values[0], bool):
                raise ConfigError(f"filter {key!r}: a list of booleans is not supported")
            out.append(Condition(key, "any", values))
        elif _is_scalar(value):
            out.append(Condition(key, "match", value))
        else:
            raise ConfigError(
                f"filter {key!r}: unsupported value {value!r}; use a string/int/bool "
                "(exact match), a list (any of) or a dict with gte/gt/lte/lt (range)"
            )
    return out
