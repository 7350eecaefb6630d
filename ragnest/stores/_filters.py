"""Backend-neutral parsing of ragnest payload filters.

A filter maps a payload path to a scalar (exact match), a list (any of) or a
dict with ``gte``/``gt``/``lte``/``lt`` (range)::

    >>> parse_filters({"source": "a.pdf", "page": {"gte": 2}, "kind": ["page", "text"]})
    [Condition(key='source', op='match', value='a.pdf'), \
Condition(key='page', op='range', value={'gte': 2}), \
Condition(key='kind', op='any', value=['page', 'text'])]

Each backend turns the :class:`Condition` list into its own filter objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ragnest.errors import ConfigError

__all__ = ["RANGE_KEYS", "Condition", "parse_filters"]

RANGE_KEYS = ("gte", "gt", "lte", "lt")


@dataclass(frozen=True)
class Condition:
    """One ``must`` condition on a payload path."""

    key: str
    op: Literal["match", "any", "range"]
    value: Any


def _is_scalar(v: Any) -> bool:
    return isinstance(v, (str, int, bool)) and not isinstance(v, float)


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
